"""Unit tests of the report's helpers against hand-computed values."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from unlearn_audit.reports.figures import average_ranks, spearman
from unlearn_audit.reports.images import encode_png, png_data_uri, to_pixels
from unlearn_audit.reports.provenance import describe_forget, summary_rows
from unlearn_audit.reports.tables import utility_label, wilson_interval
from unlearn_audit.runfiles import (
    difficulty_recorded,
    has_classes,
    has_difficulty,
    read_samples,
)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF
        chunks.append((kind, payload))
        pos += 12 + length
    return chunks


def test_png_of_a_2x3_greyscale_image_by_hand() -> None:
    pixels = np.array([[0, 128, 255], [10, 20, 30]], dtype=np.uint8)
    chunks = _png_chunks(encode_png(pixels))
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert chunks[0][1] == struct.pack(">IIBBBBB", 3, 2, 8, 0, 0, 0, 0)
    assert zlib.decompress(chunks[1][1]) == bytes([0, 0, 128, 255, 0, 10, 20, 30])


def test_png_round_trips_through_an_independent_decoder() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.uniform(size=(3, 5, 7))
    decoded = mpimg.imread(io.BytesIO(encode_png(to_pixels(rgb))), format="png")
    assert decoded.shape == (5, 7, 3)
    np.testing.assert_allclose(decoded, np.rint(np.transpose(rgb, (1, 2, 0)) * 255) / 255)
    assert png_data_uri(rgb[:1]).startswith("data:image/png;base64,iVBORw0KGgo")


def test_pixels_clip_and_reject_bad_shapes() -> None:
    image = np.array([[[-0.5, 0.5, 2.0, np.nan]]])
    assert to_pixels(image).tolist() == [[0, 128, 255, 0]]
    with pytest.raises(ValueError, match=r"\(1\|3, h, w\)"):
        to_pixels(np.zeros((2, 4, 4)))


def test_wilson_interval_golden_values() -> None:
    # 50/100: centre 0.5, half-width 1.96 * sqrt(0.0025 + 1.96^2/40000) / (1 + 1.96^2/100).
    low, high = wilson_interval(0.5, 100)
    assert (low, high) == pytest.approx((0.40383, 0.59617), abs=1e-5)
    # 0/10: the lower end is 0 and the upper is z^2/n / (1 + z^2/n) = 0.27753.
    assert wilson_interval(0.0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)


def test_spearman_and_average_ranks_by_hand() -> None:
    assert average_ranks(np.array([10.0, 20.0, 20.0, 30.0])).tolist() == [1, 2.5, 2.5, 4]
    # d = (0, 1, -1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8.
    assert spearman(np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 4])) == pytest.approx(0.8)
    assert spearman(np.array([1.0, 2, 3]), np.array([5.0, 5, 5])) is None
    assert spearman(np.array([1.0, 2]), np.array([2.0, 1])) is None


def test_utility_labels() -> None:
    assert utility_label("forget_acc") == "Forget accuracy"
    assert utility_label("knn_test_acc") == "kNN test accuracy"
    assert utility_label("probe_retain_acc") == "Probe retain accuracy"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"forget_spec": "random:0.05", "n_forget": 45, "n_members": 898},
            "45 samples: a random 5% of the 898 training members, drawn with seed 3 "
            "(request random:0.05)",
        ),
        (
            {"forget_spec": "class:7", "n_forget": 88},
            "88 samples: every training member of class 7 (request class:7)",
        ),
        (
            {"forget_spec": "file:ids.txt", "n_forget": 4},
            "4 samples: the sample indices listed in ids.txt (request file:ids.txt)",
        ),
        ({"n_forget": 4}, "4 samples"),
    ],
)
def test_forget_request_in_plain_words(data: dict[str, object], expected: str) -> None:
    assert describe_forget(data, 3) == expected


def test_samples_csv_is_read_leniently(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    path.write_text(
        "index,id,label,split,lira.m,flags\n"
        "0,a,1,forget,0.5,x;y\n"
        "1,b,2,nonmember,,\n"
        "2,c,3,retain,oops\n",  # short row and a non-number
        encoding="utf-8",
    )
    samples, note = read_samples(tmp_path)
    assert note is None and samples is not None
    assert samples.split.tolist() == ["forget", "nonmember", "retain"]
    np.testing.assert_array_equal(samples.numeric["lira.m"], [0.5, np.nan, np.nan])
    assert samples.text["flags"] == ["x;y", "", ""]
    assert samples.columns_for("lira") == {"m": "lira.m"}
    assert samples.split_scores("lira.m", "forget").tolist() == [0.5]


def test_verdict_evidence_lists_every_attack_and_forget_quality():
    from unlearn_audit.reports.verdict import verdict_rows

    ev = {
        "attack": "lira_online",
        "auc": 0.61,
        "reference_auc": 0.5,
        "auc_diff": 0.11,
        "ci": [0.05, 0.17],
        "level": 0.95,
        "per_attack": {
            "lira_online": {"auc_diff": 0.11, "ci": [0.05, 0.17]},
            "rmia_online": {"auc_diff": 0.02, "ci": [-0.03, 0.07]},
        },
        "forget_quality": {"value": 0.125, "retrain_control": 0.25},
        "test_acc_gap": 0.0,
    }
    results = {
        "models": {"m": {"role": "unlearner"}},
        "verdicts": {"m": {"status": "fail", "reasons": ["r"], "evidence": ev}},
    }
    text = verdict_rows(results)[0]["evidence"]
    assert "lira_online AUC 0.610" in text and "rmia_online +0.020 (CI -0.030 to +0.070)" in text
    assert text.count("lira_online") == 1
    assert "forget quality F 0.125 vs 0.250 for the retrain control" in text


def test_verdict_evidence_quotes_the_per_attack_level_of_the_headline_interval():
    from unlearn_audit.reports.verdict import verdict_rows

    ev = {
        "attack": "lira_online",
        "auc": 0.6,
        "reference_auc": 0.5,
        "auc_diff": 0.1,
        "ci": [0.02, 0.18],
        "level": 0.95,
        "attack_level": 1 - 0.05 / 3,
    }
    results = {
        "models": {"m": {"role": "unlearner"}},
        "verdicts": {"m": {"status": "fail", "reasons": [], "evidence": ev}},
    }
    assert "(98.33% CI +0.020 to +0.180)" in verdict_rows(results)[0]["evidence"]
    del ev["attack_level"]
    assert "(95% CI +0.020 to +0.180)" in verdict_rows(results)[0]["evidence"]


def test_has_classes_reads_the_recorded_capability_and_falls_back_to_the_name():
    assert has_classes({"paradigm": {"name": "contrastive", "has_classes": True}})
    assert not has_classes({"paradigm": {"name": "supervised", "has_classes": False}})
    # runs written before the key: only the supervised paradigm has classes
    assert has_classes({"paradigm": {"name": "supervised"}, "config": {"paradigm": "x"}})
    assert not has_classes({"paradigm": {"name": "contrastive"}})
    assert not has_classes({"config": {"paradigm": "contrastive"}})
    assert has_classes({}) and has_classes({"paradigm": None, "config": 3})


def test_has_difficulty_reads_the_recorded_capability_and_falls_back_to_has_classes():
    enc = {"paradigm": {"name": "contrastive", "has_classes": False, "difficulty": True}}
    assert has_difficulty(enc) and difficulty_recorded(enc)
    toy = {"paradigm": {"name": "toy", "has_classes": True, "difficulty": False}}
    assert not has_difficulty(toy) and difficulty_recorded(toy)
    # runs written before the key: difficulty was computed for classifiers only
    old_encoder = {"paradigm": {"name": "contrastive", "has_classes": False}}
    assert not has_difficulty(old_encoder) and not difficulty_recorded(old_encoder)
    assert not has_difficulty({"config": {"paradigm": "contrastive"}})
    assert has_difficulty({"paradigm": {"name": "supervised"}}) and has_difficulty({})
    assert not difficulty_recorded({"paradigm": {"difficulty": "yes"}, "config": 3})


def test_the_summary_names_the_learning_paradigm_and_its_signal() -> None:
    """A compliance reader sees that an encoder was audited, and with which signal."""
    encoder = {
        "paradigm": {"name": "contrastive", "signal": "instance discrimination"},
        "config": {"paradigm": "contrastive", "contrastive": {"method": "simclr"}},
    }
    rows = dict(summary_rows(encoder, "v"))
    assert rows["Learning"] == "contrastive (simclr); membership signal: instance discrimination"
    classifier = {"paradigm": {"name": "supervised", "signal": "confidence"}, "config": {}}
    assert dict(summary_rows(classifier, "v"))["Learning"] == (
        "supervised; membership signal: confidence"
    )
    assert "Learning" not in dict(summary_rows({}, "v"))  # an old run that records neither
