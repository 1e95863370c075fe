"""One writer per run directory: a second audit fails at once; a dead writer's lock is taken."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import unlearn_audit.audit.production as production
from tests.audit.test_pipeline import TINY
from unlearn_audit import run_audit
from unlearn_audit.audit.config import ConfigError, from_dict
from unlearn_audit.audit.lock import LOCK_FILE, RunLock, RunLockedError
from unlearn_audit.cli import main

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys; from audit.lock import RunLock; RunLock(sys.argv[1]).acquire(); "
    "print('locked', flush=True); sys.stdin.read()"
)


def _audit(run: Path, lines: list[str] | None = None, **kw):
    sink = lines.append if lines is not None else (lambda m: None)
    return run_audit(from_dict(TINY), run, progress=False, log=sink, render_report=False, **kw)


def _holder(run: Path) -> subprocess.Popen:
    """A child process that holds the lock of ``run`` until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _free(run: Path) -> bool:
    lock = RunLock(run)
    try:
        lock.acquire()
    except RunLockedError:
        return False
    lock.release()
    return True


def test_a_second_audit_fails_at_once_naming_the_directory_and_the_holder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    proc = _holder(run)
    try:
        t0 = time.perf_counter()
        with pytest.raises(RunLockedError) as err:
            _audit(run)
        assert time.perf_counter() - t0 < 1.0  # before any data is loaded
        msg = str(err.value)
        assert str(run) in msg and f"pid {proc.pid}" in msg and "in use by another audit" in msg
        assert isinstance(err.value, ConfigError)  # the CLI's "error:" + exit 2
        res = CliRunner().invoke(main, ["audit", "--out", str(run), "--quiet", "--no-report"])
        assert res.exit_code == 2, res.output
        assert res.output.strip().splitlines() == [f"error: {msg}"]
        assert not (run / "results.json").exists() and not (run / "models").exists()
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(timeout=10)
    _audit(run)  # the holder is gone: the directory is free
    assert (run / "results.json").is_file()
    assert _free(run) and (run / LOCK_FILE).read_text() == ""  # released after the audit


def test_a_thread_holding_the_lock_blocks_an_audit_in_the_same_process(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    locked, done = threading.Event(), threading.Event()

    def hold() -> None:
        with RunLock(run):
            locked.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10)
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()} on "):
            _audit(run)
    finally:
        done.set()
        thread.join()
    assert _free(run)


def test_the_lock_is_released_when_the_audit_fails(tmp_path, monkeypatch):
    run = tmp_path / "run"

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(production, "fit", boom)
    with pytest.raises(KeyboardInterrupt):
        _audit(run)
    assert (run / "config.toml").is_file()  # it had started writing
    assert _free(run)


def test_a_rejected_config_leaves_no_directory_and_no_lock(tmp_path):
    run = tmp_path / "run"
    bad = {**TINY, "forget": {"spec": "class:42"}}
    with pytest.raises(Exception, match="names no class"):
        run_audit(from_dict(bad), run, progress=False, log=lambda m: None)
    assert not run.exists()


def test_the_stale_lock_of_a_killed_audit_is_taken_over(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    proc = _holder(run)
    info = json.loads((run / LOCK_FILE).read_text())
    assert info["pid"] == proc.pid
    assert not _free(run)
    os.kill(proc.pid, signal.SIGKILL)  # no chance to release: the OS drops its flock
    proc.wait(timeout=10)
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == proc.pid  # the file stays
    (run / "models").mkdir()
    (run / "models" / ".shadow-x.pt.abc.tmp").write_bytes(b"half a checkpoint")
    lines: list[str] = []
    res = _audit(run, lines)
    takeover = [ln for ln in lines if "taking over the lock" in ln]
    assert len(takeover) == 1 and f"pid {proc.pid}" in takeover[0], lines
    assert any("removed 1 unfinished temporary file" in ln for ln in lines)
    assert not list(run.rglob("*.tmp")) and res.results["data"]["n_pool"] == 240
    assert _free(run)


def test_acquire_is_reentrant_and_release_idempotent(tmp_path):
    lock = RunLock(tmp_path / "new")
    with lock:  # the directory does not exist yet: nothing is created on entry
        assert not lock.held and not (tmp_path / "new").exists()
        lock.acquire()
        lock.acquire()
        assert lock.held and json.loads(lock.path.read_text())["pid"] == os.getpid()
        assert not _free(tmp_path / "new")
    assert not lock.held and _free(tmp_path / "new")
    lock.release()


def test_report_and_rank_refuse_a_run_an_audit_is_writing_and_read_it_after(tmp_path):
    run = tmp_path / "run"
    _audit(run)
    before = (run / "results.json").read_bytes()
    proc = _holder(run)  # an audit now writing the directory
    try:
        for args in (["report", str(run)], ["rank", str(run)]):
            res = CliRunner().invoke(main, args)
            assert res.exit_code == 2, res.output
            (line,) = res.output.strip().splitlines()
            assert line.startswith(f"error: {run} is being written by an audit (pid {proc.pid}")
            assert "wait for it to finish" in line
        assert not (run / "report.html").exists()  # nothing rendered from a run being written
        assert (run / "results.json").read_bytes() == before
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(timeout=10)
    res = CliRunner().invoke(main, ["report", str(run)])
    assert res.exit_code == 0, res.output
    assert (run / "report.html").is_file()
    after = CliRunner().invoke(main, ["rank", str(run)])  # TINY has no difficulty ranks
    assert "being written" not in after.output, after.output
    assert _free(run)  # the readers took no lock of their own
