"""One fact, one place: the audit writes the names the readers read, and every reader
failure is the one :class:`RunFileError`.

A tiny audit writes a run directory; the reader reads every file of it back without
error. The source is read with :mod:`ast`: no module outside ``runfiles/`` spells a run
file's name or defines a schema version of its own.
"""

from __future__ import annotations

import ast
import importlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.audit.test_pipeline import TINY
from tests.test_floors import ROOT, _modules
from unlearn_audit import run_audit, runfiles
from unlearn_audit.attack_cmd import load_bank
from unlearn_audit.audit.config import from_dict
from unlearn_audit.cli import _user_errors
from unlearn_audit.rank_cmd import Table, check_options, load_table
from unlearn_audit.reports import render
from unlearn_audit.runfiles import (
    BASE_COLUMNS,
    CONFIG_FILE,
    DAMAGED,
    LOCK_FILE,
    MODELS_DIR,
    REPORT_FILE,
    RESULTS_FILE,
    SAMPLES_FILE,
    SCHEMA_VERSION,
    SIGNALS_FILE,
    RunFileError,
    check_run_signals,
    expected_columns,
    read_forget_images,
    read_results,
    read_sample_rows,
    read_samples,
    read_signals,
    run_directory,
)

FILE_NAMES = (RESULTS_FILE, SAMPLES_FILE, SIGNALS_FILE, CONFIG_FILE, REPORT_FILE, LOCK_FILE)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("contract") / "run"
    run_audit(from_dict(TINY), out, progress=False, log=lambda m: None)
    return out


def test_what_the_audit_writes_the_reader_reads(run):
    names = {p.name for p in run.iterdir()}
    assert {RESULTS_FILE, SAMPLES_FILE, SIGNALS_FILE, CONFIG_FILE, REPORT_FILE} <= names
    assert {MODELS_DIR, LOCK_FILE} <= names
    results = read_results(run)
    assert results["schema_version"] == SCHEMA_VERSION
    rows = read_sample_rows(run, results)
    assert tuple(rows.header[: len(BASE_COLUMNS)]) == BASE_COLUMNS
    assert set(expected_columns(results)) <= set(rows.header)
    samples, note = read_samples(run, results)
    assert note is None and samples is not None
    assert samples.n_rows == len(rows.rows) == results["data"]["n_pool"]
    data = read_signals(run / SIGNALS_FILE)
    check_run_signals(run / SIGNALS_FILE, data, int(data["signals"].shape[1]))
    images, note = read_forget_images(run)
    assert note is None and images is not None
    assert images.index.size == results["data"]["n_forget"]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("unlearn_audit.audit.serialise", "SCHEMA_VERSION"),
        ("unlearn_audit.audit.serialise", "SAMPLES_FILE"),
        ("unlearn_audit.audit.pipeline", "CONFIG_FILE"),
        ("unlearn_audit.audit.lock", "LOCK_FILE"),
        ("unlearn_audit.reports.render", "REPORT_FILE"),
    ],
)
def test_the_writers_names_are_the_readers_names(module, name):
    """The audit and the readers hold the same objects (none spells them itself)."""
    assert getattr(importlib.import_module(module), name) is getattr(runfiles, name)


def _spelled(path: Path) -> list[str]:
    """Where a module spells a run file's name as a string or defines a schema version."""
    found = []
    where = path.relative_to(ROOT)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and node.value in FILE_NAMES:
            found.append(f"{where}:{node.lineno} spells {node.value!r}")
        for target in node.targets if isinstance(node, ast.Assign) else []:
            if isinstance(target, ast.Name) and target.id.endswith(("SCHEMA_VERSION", "SCHEMAS")):
                found.append(f"{where}:{node.lineno} defines {target.id}")
    return found


def test_no_module_outside_runfiles_spells_a_run_file_name():
    found = [
        line
        for name, path in _modules().items()
        if not name.startswith("unlearn_audit.runfiles")
        for line in _spelled(path)
    ]
    assert not found, "\n".join(found)


def _results(run: Path, text: str) -> Path:
    run.mkdir()
    (run / RESULTS_FILE).write_text(text, encoding="utf-8")
    return run


def _not_an_npz(folder: Path) -> dict[str, np.ndarray]:
    (folder / "bank.npz").write_text("not a zip archive")
    return read_signals(folder / "bank.npz")


def _unreadable_samples(folder: Path) -> object:
    (folder / SAMPLES_FILE).write_bytes(b"index,split\n\xff\xfe,forget\n")
    return read_sample_rows(folder)


CASES: dict[str, Callable[[Path], object]] = {
    "no results.json": read_results,
    "invalid JSON": lambda d: read_results(_results(d / "r", "{")),
    "not an object": lambda d: read_results(_results(d / "r", "[1]")),
    "schema 3": lambda d: read_results(_results(d / "r", '{"schema_version": 3}')),
    "no run directory": lambda d: run_directory(d / "none"),
    "no samples.csv": read_sample_rows,
    "unreadable samples.csv": _unreadable_samples,
    "no signal file": lambda d: read_signals(d / SIGNALS_FILE),
    "not an npz": _not_an_npz,
    "report: no results.json": render,
    "rank: no samples.csv": load_table,
    "attack: no signal file": lambda d: load_bank(str(d / SIGNALS_FILE), None, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_reader_failure_is_the_one_error(tmp_path, case):
    with pytest.raises(RunFileError) as err:
        CASES[case](tmp_path)
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_a_damaged_run_is_the_one_error_for_every_reader(run, tmp_path):
    damaged = tmp_path / "run"
    shutil.copytree(run, damaged, ignore=shutil.ignore_patterns(MODELS_DIR))
    path = damaged / SAMPLES_FILE
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    results = read_results(damaged)
    readers: list[Callable[[], object]] = [
        lambda: read_sample_rows(damaged, results),
        lambda: read_samples(damaged),
        lambda: render(damaged),
        lambda: load_table(damaged),
    ]
    for reader in readers:
        with pytest.raises(RunFileError, match=re.escape(DAMAGED)):
            reader()
    with np.load(damaged / SIGNALS_FILE, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["n_shadows"] = np.array(int(arrays["n_shadows"]) - 1)
    np.savez(damaged / SIGNALS_FILE, **arrays)
    with pytest.raises(RunFileError, match=re.escape(DAMAGED)):
        load_bank(str(damaged / SIGNALS_FILE), None, None)


def test_an_option_that_does_not_fit_is_the_one_error_too():
    with pytest.raises(RunFileError, match="--top must be >= 1"):
        check_options(Table([], [], {}), None, None, 0)


def test_the_command_line_lists_the_one_error_once():
    errors = _user_errors()
    assert sum(e is RunFileError for e in errors) == 1
    assert not [e for e in errors if e is not RunFileError and issubclass(e, RunFileError)]
