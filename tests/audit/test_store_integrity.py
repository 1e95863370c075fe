"""A damaged model cache is found, named, moved aside and recomputed; results do not change.

Each case runs the tiny audit of test_pipeline once (a shared clean run), copies
its run directory, damages one file of ``RUN/models`` the way a crash, a full
disk or a careless copy would, and audits again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from tests.audit.test_pipeline import TINY, _count_fits, _stable
from tests.audit.test_rundir import _model
from unlearn_audit import run_audit
from unlearn_audit.audit.config import from_dict
from unlearn_audit.audit.rundir import INTEGRITY, CorruptArtifact, ModelStore, cached


def _audit(run: Path, lines: list[str] | None = None):
    sink = lines.append if lines is not None else (lambda m: None)
    return run_audit(from_dict(TINY), run, progress=False, log=sink, render_report=False)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    run = tmp_path_factory.mktemp("clean") / "run"
    res = _audit(run)
    return run, _stable(res.results)


def _copy(clean_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(clean_run, run)
    return run


def _entry(run: Path, label: str, nth: int = 0) -> Path:
    """The stem (no suffix) of the ``nth`` cached ``label`` model, in name order."""
    return sorted((run / "models").glob(f"{label}-*.json"))[nth].with_suffix("")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _zero_npy(path: Path) -> None:
    arr = np.load(path)
    np.save(path, np.zeros_like(arr))  # same shape and dtype, other content


def _damaged_lines(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.startswith("damaged cache file")]


def _check_healed(run: Path, bad: Path, lines: list[str], why: str) -> None:
    damaged = _damaged_lines(lines)
    assert len(damaged) == 1, lines
    assert str(bad) in damaged[0] and why in damaged[0], damaged[0]
    aside = list(bad.parent.glob(f"{bad.name}.corrupt-*"))
    assert len(aside) == 1 and f"moved aside to {aside[0].name}" in damaged[0]
    assert bad.is_file()  # recomputed under its real name


CASES = {
    # kind: (label of the damaged model, suffix, damage, fits it costs)
    "truncated-pt": ("shadow", ".pt", _truncate, ["shadow"]),
    "truncated-npy": ("shadow", ".npy", _truncate, []),
    "broken-json": ("shadow", ".json", lambda p: p.write_text('{"key": "'), ["shadow"]),
    "zeroed-npy": ("shadow", ".npy", _zero_npy, []),
    "truncated-original-pt": ("original", ".pt", _truncate, ["original"]),
    "broken-reference-json": ("reference", ".json", lambda p: p.write_text(""), ["reference"]),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_a_damaged_file_is_named_moved_aside_and_recomputed(kind, clean, tmp_path, monkeypatch):
    clean_run, want = clean
    label, suffix, damage, fits = CASES[kind]
    run = _copy(clean_run, tmp_path)
    bad = _entry(run, label, 1 if label == "shadow" else 0).with_suffix(suffix)
    damage(bad)
    calls = _count_fits(monkeypatch)
    lines: list[str] = []
    res = _audit(run, lines)
    why = "not valid JSON" if suffix == ".json" else "sha256 does not match"
    _check_healed(run, bad, lines, why)
    assert calls == fits  # weights are retrained only when they (or their record) are lost
    assert _stable(res.results) == want
    assert _stable(json.loads((run / "results.json").read_text())) == want
    assert (run / "samples.csv").read_text() == (clean_run / "samples.csv").read_text()
    # healed for good: a third audit finds nothing to say and trains nothing
    lines.clear()
    _audit(run, lines)
    assert not _damaged_lines(lines) and calls == fits


def test_another_shadows_weights_copied_over_a_shadows_are_caught(clean, tmp_path, monkeypatch):
    clean_run, want = clean
    run = _copy(clean_run, tmp_path)
    donor, victim = _entry(run, "shadow", 0), _entry(run, "shadow", 2)
    shutil.copy(donor.with_suffix(".pt"), victim.with_suffix(".pt"))  # loads fine, wrong model
    calls = _count_fits(monkeypatch)
    lines: list[str] = []
    res = _audit(run, lines)
    _check_healed(run, victim.with_suffix(".pt"), lines, "sha256 does not match")
    assert calls == ["shadow"] and _stable(res.results) == want


def test_a_sidecar_edited_by_hand_is_caught(clean, tmp_path, monkeypatch):
    clean_run, want = clean
    run = _copy(clean_run, tmp_path)
    meta = _entry(run, "shadow", 3).with_suffix(".json")
    doc = json.loads(meta.read_text())
    doc["signal_key"] = "0" * 20  # valid JSON, consistent digests of the other files
    meta.write_text(json.dumps(doc))
    calls = _count_fits(monkeypatch)
    lines: list[str] = []
    res = _audit(run, lines)
    _check_healed(run, meta, lines, "sha256 of its content")
    assert calls == ["shadow"] and _stable(res.results) == want


def _strip_digests(run: Path) -> None:
    for meta in (run / "models").glob("*.json"):
        doc = json.loads(meta.read_text())
        doc.pop(INTEGRITY)
        meta.write_text(json.dumps(doc, indent=2))


def test_a_store_without_digests_is_trusted_with_a_note_and_upgraded(clean, tmp_path, monkeypatch):
    clean_run, want = clean
    run = _copy(clean_run, tmp_path)
    _strip_digests(run)  # what a store written before digests existed looks like
    calls = _count_fits(monkeypatch)
    lines: list[str] = []
    res = _audit(run, lines)
    notes = [ln for ln in lines if "before integrity digests existed" in ln]
    assert len(notes) == 1 and str(run / "models") in notes[0]
    assert calls == [] and not _damaged_lines(lines) and _stable(res.results) == want
    for meta in (run / "models").glob("*.json"):
        assert INTEGRITY in json.loads(meta.read_text()), meta
    lines.clear()
    _audit(run, lines)
    assert not [ln for ln in lines if "digests" in ln]


def test_an_unparsable_file_without_digests_is_still_caught(clean, tmp_path, monkeypatch):
    clean_run, want = clean
    run = _copy(clean_run, tmp_path)
    _strip_digests(run)
    bad = _entry(run, "shadow", 0).with_suffix(".pt")
    _truncate(bad)
    calls = _count_fits(monkeypatch)
    lines: list[str] = []
    res = _audit(run, lines)
    _check_healed(run, bad, lines, "PytorchStreamReader failed")
    assert calls == ["shadow"] and _stable(res.results) == want


# -- the store on its own -------------------------------------------------------------


def test_load_refuses_a_damaged_entry_and_cached_heals_it(tmp_path):
    lines: list[str] = []
    store = ModelStore(tmp_path, log=lines.append)
    store.save("m", "k", _model(2.0), {"seconds": 1.0}, np.arange(4.0).reshape(4, 1))
    _, sig = store.load("m", "k", _model(0.0))
    assert sig.sum() == 6.0
    npy = tmp_path / "m-k.npy"
    np.save(npy, np.zeros((4, 1)))
    with pytest.raises(CorruptArtifact, match="m-k.npy: sha256 does not match"):
        store.load("m", "k", _model(0.0))
    assert npy.is_file() and not lines  # load only reports; cached() moves aside

    def signals_of(model: nn.Module) -> np.ndarray:
        return np.full((4, 1), float(model.weight[0, 0].detach()))

    model, meta, sig, hit = cached(
        store, "m", "k", _model(0.0), lambda: (_model(9.0), {}), signals_of
    )
    assert hit and float(model.weight[0, 0].detach()) == 2.0 and sig.sum() == 8.0
    assert meta["seconds"] == 1.0 and len(lines) == 1 and "m-k.npy" in lines[0]
    store.load("m", "k", _model(0.0))  # intact again


def test_a_sidecar_of_another_entry_is_not_taken_for_this_one(tmp_path):
    lines: list[str] = []
    store = ModelStore(tmp_path, log=lines.append)
    for key, value in (("a", 1.0), ("b", 5.0)):
        store.save("m", key, _model(value), {}, np.full((4, 1), value))
    shutil.copy(tmp_path / "m-a.json", tmp_path / "m-b.json")
    assert not store.has("m", "b")
    assert len(lines) == 1 and "it describes m-a, not m-b" in lines[0]
    assert store.has("m", "a")


def test_the_default_log_is_a_warning(tmp_path, caplog):
    store = ModelStore(tmp_path)
    store.save("m", "k", _model(1.0), {}, np.zeros((4, 1)))
    (tmp_path / "m-k.json").write_text("{")
    with caplog.at_level("WARNING", logger="unlearn_audit.audit.rundir"):
        assert not store.has("m", "k")
    assert "damaged cache file" in caplog.text and "m-k.json" in caplog.text


def test_every_artifact_in_a_run_has_its_digests(clean):
    run, _ = clean
    metas = list((run / "models").glob("*.json"))
    assert metas
    for meta in metas:
        digests = json.loads(meta.read_text())[INTEGRITY]["sha256"]
        assert set(digests) == {"pt", "npy", "json"}
