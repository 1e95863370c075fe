"""The readers trust nothing: report, rank and attack say in one line what is damaged.

A tiny audit writes a run directory once; each case copies it, damages
``samples.csv`` or ``signals.npz`` and runs the three readers on it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.audit.test_pipeline import TINY
from unlearn_audit import run_audit
from unlearn_audit.audit.config import from_dict
from unlearn_audit.cli import main
from unlearn_audit.reports import render
from unlearn_audit.runfiles import RunFileError

DAMAGED = "the run directory is damaged; rerun the audit (its cached models are reused)"


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("clean") / "run"
    run_audit(from_dict(TINY), run, progress=False, log=lambda m: None, render_report=False)
    return run


@pytest.fixture
def run(clean, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(clean, out, ignore=shutil.ignore_patterns("models"))
    return out


def _cli(*args: str) -> tuple[int, list[str]]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, [ln for ln in res.output.splitlines() if ln.strip()]


def _refused_by_all(run: Path, message: str) -> None:
    """``report`` and ``rank`` both fail with exactly ``error: <message>``."""
    with pytest.raises(RunFileError) as err:
        render(run)
    assert str(err.value) == message
    for args in (["report", str(run)], ["rank", str(run)]):
        code, lines = _cli(*args)
        assert code == 2 and lines == [f"error: {message}"], (args, lines)
    assert not (run / "report.html").exists()


def _drop_column(path: Path, name: str) -> None:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    j = rows[0].index(name)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        [c for i, c in enumerate(r) if i != j] for r in rows
    )
    path.write_text(out.getvalue())


def test_a_truncated_samples_csv(run):
    lines = (run / "samples.csv").read_text().splitlines(keepends=True)
    (run / "samples.csv").write_text("".join(lines[:3]))  # the header and two rows
    _refused_by_all(
        run,
        f"{run / 'samples.csv'} has 2 rows but results.json says the pool has 240 samples: "
        + DAMAGED,
    )


def test_a_samples_csv_cut_in_the_middle_of_a_row(run):
    text = (run / "samples.csv").read_text()
    (run / "samples.csv").write_text(text[: len(text) // 2])
    with pytest.raises(RunFileError) as err:
        render(run)
    msg = str(err.value)
    assert "says the pool has 240 samples" in msg and "row(s) without the header's" in msg
    assert msg.endswith(DAMAGED) and "\n" not in msg


def test_a_missing_column(run):
    _drop_column(run / "samples.csv", "lira_online.finetune")
    _refused_by_all(
        run,
        f"{run / 'samples.csv'} lacks the column(s) lira_online.finetune that results.json "
        f"implies: {DAMAGED}",
    )


def test_a_row_of_the_forget_set_relabelled(run):
    text = (run / "samples.csv").read_text()
    (run / "samples.csv").write_text(text.replace(",forget,", ",retain,", 1))
    results = json.loads((run / "results.json").read_text())
    n_forget, n_retain = results["data"]["n_forget"], results["data"]["n_retain"]
    path = run / "samples.csv"
    _refused_by_all(
        run,
        f"{path} has {n_forget - 1} forget rows but results.json says {n_forget}; "
        f"{path} has {n_retain + 1} retain rows but results.json says {n_retain}: {DAMAGED}",
    )


def test_an_intact_run_is_read(run):
    assert render(run).is_file()
    code, lines = _cli("rank", str(run))  # no difficulty index in this run: that is all
    assert code == 2 and "has no difficulty columns" in lines[0]
    code, lines = _cli("attack", "--signals", str(run / "signals.npz"), "--attack", "loss")
    assert code == 0, lines


def _resave(path: Path, **change) -> None:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(change)
    np.savez(path, **arrays)


def test_attack_checks_a_run_signals_npz_against_results_json(run):
    path = run / "signals.npz"
    with np.load(path, allow_pickle=False) as npz:
        sig, keep, names = npz["signals"], npz["keep"], npz["model_names"]
        n_shadows = int(npz["n_shadows"])
    # the last target model's row is lost
    _resave(path, signals=sig[:-1], keep=keep[:-1], model_names=names[:-1])
    code, lines = _cli("attack", "--signals", str(path), "--attack", "loss")
    assert code == 2 and lines == [
        f"error: {path} has no signals of {names[-1]} (results.json scored them): {DAMAGED}"
    ]
    # half the samples are lost
    n = sig.shape[1] // 2
    _resave(path, signals=sig[:, :n], keep=keep[:, :n], model_names=names)
    code, lines = _cli("attack", "--signals", str(path), "--attack", "loss")
    assert code == 2 and len(lines) == 1
    assert f"{path} has {n} samples per model but results.json says the pool has 240" in lines[0]
    # a shadow row is lost
    _resave(path, signals=sig, keep=keep, model_names=names, n_shadows=np.array(n_shadows - 1))
    code, lines = _cli("attack", "--signals", str(path), "--attack", "loss")
    assert code == 2 and f"{n_shadows - 1} shadow models but results.json says 4" in lines[0]
    # the same file elsewhere, without its results.json, is just a signal bank
    alone = run.parent / "bank.npz"
    shutil.copy(path, alone)
    code, _ = _cli("attack", "--signals", str(alone), "--attack", "loss")
    assert code == 0
