"""The optional sections of the contract, on a fully populated fabricated run.

The full run is rendered once per module (``full_report``); partial runs check that a
section whose data is absent disappears together with its heading.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
from pathlib import Path

import numpy as np
from matplotlib import image as mpimg

from tests.reports.conftest import N_FORGET, RunFactory, base_results, write_images
from tests.reports.htmlcheck import empty_headings, parse_tags, section, section_ids
from unlearn_audit.reports import render

FULL_ORDER = [
    "summary",
    "verdict",
    "utility",
    "attacks",
    "signal",
    "forgetting",
    "retain-leakage",
    "difficulty",
    "samples",
    "provenance",
]


def test_full_run_has_every_section_in_order(full_report: tuple[Path, str]) -> None:
    html = full_report[1]
    assert section_ids(html) == FULL_ORDER
    assert empty_headings(html) == []


def test_forgetting_and_epsilon(full_report: tuple[Path, str]) -> None:
    forgetting = section(full_report[1], "forgetting")
    assert '<td class="num">0.0123</td><td class="num">1.50</td>' in forgetting
    assert "per-sample \u03b5 of the forget set" in forgetting  # the histogram's title
    assert forgetting.count("<svg") == 1


def test_retain_leakage_flags_an_increase(full_report: tuple[Path, str]) -> None:
    leakage = section(full_report[1], "retain-leakage")
    assert '<td class="num">0.610</td><td class="num">0.660</td>' in leakage
    assert '+0.050<span class="ci">[0.020, 0.080]</span>' in leakage
    assert '<td class="bad">yes</td>' in leakage


def test_signal_and_difficulty_plots(full_report: tuple[Path, str]) -> None:
    html = full_report[1]
    signal = section(html, "signal")
    assert "finetune: forget set" in signal
    for label in ("original", "finetune", "retrained"):
        assert f">{label}<" in signal or f"> {label}<" in signal or label in signal
    difficulty = section(html, "difficulty")
    assert re.search(r"finetune: Spearman \u03c1 = 0\.\d\d", difficulty)


def _samples_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "samples.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_hardest_samples_follow_the_difficulty_rank(full_report: tuple[Path, str]) -> None:
    run_dir, html = full_report
    table = section(html, "samples")
    ranks = re.findall(r'<tr>\s*<td class="num">([^<]+)</td>', table)
    assert ranks == [str(r) for r in range(1, 21)]
    rows = sorted(
        (r for r in _samples_rows(run_dir) if r["split"] == "forget"),
        key=lambda r: float(r["difficulty_rank"]),
    )
    shown = re.findall(r'alt="forget sample (\d+)"', table)
    assert shown == [r["index"] for r in rows[:20]]
    assert "Ordered by the combined difficulty rank" in table
    assert "The 20 hardest of the 89 forget samples" in table  # full_results: n_forget 89
    assert "<th>loss</th><th>margin</th>" in table  # feature.* columns
    assert '<span class="flag">infeasible at budget</span>' in table
    assert '<span class="flag">rare class</span>' in table
    assert "U-LiRA" in table and "residual" in table and "\u03b5" in table
    assert '<a href="samples.csv">samples.csv</a>' in table


def test_thumbnails_are_the_stored_images(full_report: tuple[Path, str]) -> None:
    run_dir, html = full_report
    with np.load(run_dir / "signals.npz", allow_pickle=False) as npz:
        images, index = npz["forget_images"], npz["forget_index"]
    for tag, attrs in parse_tags(section(html, "samples")):
        if tag != "img":
            continue
        values = dict(attrs)
        pool = int((values["alt"] or "").rsplit(" ", 1)[1])
        payload = (values["src"] or "").removeprefix("data:image/png;base64,")
        decoded = mpimg.imread(io.BytesIO(base64.b64decode(payload)), format="png")
        expected = images[list(index).index(pool), 0]
        assert decoded.shape == (8, 8)
        np.testing.assert_allclose(decoded, np.rint(expected * 255) / 255, atol=1e-6)


def test_provenance_lists_hashes_and_the_command(full_report: tuple[Path, str]) -> None:
    run_dir, html = full_report
    provenance = section(html, "provenance")
    assert '<pre id="command"><code>unlearn-audit audit --out runs/demo</code></pre>' in provenance
    assert "<code>0123456789abcdef0123</code>" in provenance  # from the checkpoint name
    assert "models/original-0123456789abcdef0123.pt" in provenance
    for name in ("results.json", "samples.csv", "signals.npz"):
        digest = hashlib.sha256((run_dir / name).read_bytes()).hexdigest()
        assert digest in provenance
    assert '<th scope="row">torch</th><td>2.5.1</td>' in provenance
    assert "{&#34;epochs&#34;: 3, &#34;lr&#34;: 0.01}" in provenance  # method parameters
    assert "&#34;shadows&#34;: 16" in provenance  # the resolved config


def test_run_without_optional_data_has_no_empty_headings(base_report: tuple[Path, str]) -> None:
    # Today's pipeline output: no forgetting data, no U-LiRA, no difficulty, no images.
    html = base_report[1]
    ids = section_ids(html)
    for absent in ("signal", "forgetting", "retain-leakage", "difficulty"):
        assert absent not in ids
    assert "U-LiRA" not in html and "\u03b5" not in section(html, "samples")
    assert "<th>Image</th>" not in html
    assert "signals.npz holds no forget_images" in html
    assert empty_headings(html) == []


def test_without_rank_the_table_is_ordered_by_the_verdict_score(
    base_report: tuple[Path, str],
) -> None:
    run_dir, html = base_report
    table = section(html, "samples")
    assert "ordered by the lira_online membership score under finetune, highest first" in table
    forget = [r for r in _samples_rows(run_dir) if r["split"] == "forget"]
    expected = sorted(forget, key=lambda r: -float(r["lira_online.finetune"]))[:20]
    shown = re.findall(r"<td>(\d+)</td>\s*<td>\d+</td>", table)
    assert shown == [r["index"] for r in expected]
    # One value per model (the score): the cells hold bare numbers, the lead says what.
    assert re.search(r'<td class="num"><div>-?\d', table)
    assert "Under each model: the verdict attack&#39;s membership score" in table


def test_images_alone_give_thumbnails(make_run: RunFactory) -> None:
    run_dir = make_run()
    write_images(run_dir)
    html = render(run_dir).read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == min(20, N_FORGET)


def test_malformed_images_are_a_note_not_an_error(make_run: RunFactory) -> None:
    run_dir = make_run()
    np.savez(run_dir / "signals.npz", forget_images=np.zeros((3, 8, 8)), forget_index=np.arange(3))
    html = render(run_dir).read_text(encoding="utf-8")
    assert "<img" not in html
    assert "do not have the shapes (k, c, h, w) / (k,)" in html


def test_partial_forgetting_sections(make_run: RunFactory) -> None:
    results = base_results()
    results["retain_leakage"] = {
        "finetune": {"auc_before": 0.6, "auc_after": 0.58, "diff": -0.02, "increased": False}
    }
    html = render(make_run(results, samples=False)).read_text(encoding="utf-8")
    assert "retain-leakage" in section_ids(html) and "forgetting" not in section_ids(html)
    assert '<td class="ok">no</td>' in section(html, "retain-leakage")
    assert empty_headings(html) == []


def test_recorded_checkpoint_sha256_gets_a_column(make_run: RunFactory) -> None:
    results = base_results()
    results["models"]["original"]["sha256"] = "ab" * 32
    provenance = section(render(make_run(results, samples=False)).read_text("utf-8"), "provenance")
    assert "<th>File SHA-256</th>" in provenance
    assert f'<code class="hash">{"ab" * 32}</code>' in provenance


def test_forgetting_shows_ulira_auc_and_bank_errors(make_run: RunFactory) -> None:
    results = base_results()
    results["forgetting"] = {
        "finetune": {
            "forget_quality": 0.2,
            "epsilon_median": 1.6,
            "ulira_auc": 0.6123,
            "ulira_auc_ci": [0.5432, 0.6789],
        },
        "gradient_ascent": {"error": "ValueError: shadow 3 diverged"},
    }
    html = render(make_run(results=results)).read_text(encoding="utf-8")
    part = section(html, "forgetting")
    assert "0.612" in part and "0.543" in part and "0.679" in part
    assert "U-LiRA bank failed: ValueError: shadow 3 diverged" in part
