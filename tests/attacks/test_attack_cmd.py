"""Tests for the ``unlearn-audit attack`` command (audit/attack_cmd.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from unlearn_audit.attacks import available, get, make_keep_matrix, roc_metrics
from unlearn_audit.cli import main


def _bank(m: int = 9, n: int = 60, n_aug: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    keep = np.concatenate([make_keep_matrix(m - 1, n, seed=1), (rng.random(n) < 0.5)[None]])
    signals = rng.normal(size=(m, n, n_aug)) + 2.0 * keep[:, :, None]
    return {"signals": signals.astype(np.float32), "keep": keep, "target": np.array(m - 1)}


def _same(got: dict, want: dict) -> None:  # type: ignore[type-arg]
    assert got["auc"] == pytest.approx(want["auc"], abs=1e-12)
    assert got["balanced_accuracy"] == pytest.approx(want["balanced_accuracy"], abs=1e-12)
    assert got["tpr_at_fpr"] == pytest.approx(want["tpr_at_fpr"], abs=1e-12)


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["attack", *args])


def _save(tmp_path: Path, **arrays: np.ndarray) -> str:
    path = tmp_path / "bank.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return str(path)


def test_plain_bank_json_matches_library(tmp_path: Path) -> None:
    data = _bank()
    res = _run("--signals", _save(tmp_path, **data), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["target"] == "row 8" and out["n_shadows"] == 8 and out["queries"] == 2
    assert set(out["attacks"]) == set(available())
    sig = data["signals"].astype(np.float64)
    for name in ("lira_online", "rmia_offline", "loss"):
        scores = get(name).fn(sig[8], sig[:8], data["keep"][:8])
        want = roc_metrics(scores, data["keep"][8])
        _same(out["attacks"][name]["members_vs_nonmembers"], want)


def test_table_output_and_target_override(tmp_path: Path) -> None:
    data = _bank()
    del data["target"]
    path = _save(tmp_path, **data)
    res = _run("--signals", path, "--target", "0", "--attack", "loss", "--attack", "lira_online")
    assert res.exit_code == 0, res.output
    assert "target row 0: 60 samples, 8 shadow models, 2 queries" in res.output
    assert "members_vs_nonmembers" in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith(("loss", "lira_online"))]
    assert len(lines) == 2


def test_pipeline_signals_npz(tmp_path: Path) -> None:
    # the layout of audit/pipeline.py _write: shadows first, then named target models
    rng = np.random.default_rng(2)
    n, m = 40, 8
    keep_sh = make_keep_matrix(m, n, seed=0)
    split = np.array(["nonmember"] * 20 + ["retain"] * 16 + ["forget"] * 4)
    members = split != "nonmember"
    retain = split == "retain"
    keep = np.concatenate([keep_sh, members[None], retain[None], members[None]])
    signals = (rng.normal(size=(m + 3, n, 1)) + keep[:, :, None]).astype(np.float32)
    names = np.array([f"shadow{k}" for k in range(m)] + ["original", "reference", "noop"])
    path = _save(
        tmp_path,
        signals=signals,
        keep=keep,
        model_names=names,
        n_shadows=np.array(m),
        label=rng.integers(0, 3, n),
        split=split,
    )
    res = _run("--signals", path, "--json", "--attack", "lira_offline")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["target"] == "original" and out["n_shadows"] == m
    cmps = out["attacks"]["lira_offline"]
    assert set(cmps) == {"members_vs_nonmembers", "forget_vs_nonmember", "retain_vs_nonmember"}
    sig64 = signals.astype(np.float64)
    scores = get("lira_offline").fn(sig64[m], sig64[:m], keep_sh)
    sel = split != "retain"
    want = roc_metrics(scores[sel], split[sel] == "forget")
    _same(cmps["forget_vs_nonmember"], want)
    ref = json.loads(_run("--signals", path, "--json", "--target", "reference").output)
    assert ref["target"] == "reference" and ref["n_shadows"] == m


def test_members_mask_and_skipped_default_attacks(tmp_path: Path) -> None:
    data = _bank()
    data["keep"][:8, 0] = False  # sample 0 has no IN shadow: online attacks cannot run
    data["truth"] = ~data["keep"][8]
    res = _run("--signals", _save(tmp_path, **data), "--members", "truth", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)["attacks"]
    assert "no IN" in out["lira_online"]["skipped"]
    loss = out["loss"]["members_vs_nonmembers"]["auc"]
    sig8 = data["signals"][8].astype(np.float64)
    direct = roc_metrics(get("loss").fn(sig8, None, None), data["truth"])["auc"]
    assert loss == pytest.approx(direct)
    res = _run("--signals", _save(tmp_path, **data), "--attack", "lira_online")
    assert res.exit_code == 2
    assert res.output.startswith("error: attack lira_online:") and "no IN" in res.output


@pytest.mark.parametrize(
    ("change", "args", "match"),
    [
        ({"signals": None}, [], "missing array 'signals'"),
        ({"keep": np.zeros((9, 5), bool)}, [], "'keep' must have shape"),
        ({"keep": np.full((9, 60), 2)}, [], "boolean"),
        ({"target": None}, [], "no target"),
        ({}, ["--target", "99"], "out of range"),
        ({}, ["--target", "original"], "unknown target model 'original'"),
        ({}, ["--members", "nope"], "no array 'nope'"),
        ({"mask": np.zeros(3, bool)}, ["--members", "mask"], "must be a \\(n,\\) boolean"),
        ({}, ["--attack", "nope"], "unknown attack 'nope'"),
        ({"signals": np.full((9, 60), np.nan)}, [], "non-finite"),
    ],
)
def test_one_line_errors(tmp_path: Path, change: dict, args: list[str], match: str) -> None:  # type: ignore[type-arg]
    data = _bank()
    for key, value in change.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    res = _run("--signals", _save(tmp_path, **data), *args)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(match, lines[0])


def test_unreadable_files(tmp_path: Path) -> None:
    res = _run("--signals", str(tmp_path / "missing.npz"))
    assert res.exit_code == 2 and "no such file" in res.output
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    res = _run("--signals", str(bad))
    assert res.exit_code == 2 and "not a readable .npz" in res.output
