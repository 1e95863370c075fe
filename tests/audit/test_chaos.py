"""Chaos: kill the audit CLI at random moments (SIGKILL, SIGINT), resume, get the clean results.

A clean run of the tiny audit fixes what the answer must be. Then, per seed, the
same command is started in a fresh directory and killed at random moments after
it has started working (the first log line), resumed and killed again, then
resumed to the end. The resumed run must write exactly the clean run's
``results.json`` (bar provenance and timings), ``samples.csv`` and
``signals.npz`` arrays; no kill may leave a damaged or a temporary file.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.audit.test_pipeline import _stable

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
[data]
limit = 240
[train]
epochs = 4
[attack]
shadows = 4
ulira = false
[verdict]
n_boot = 200
"""
KILLS = {  # seed of the kill moments: the signals sent, in order
    0: (signal.SIGKILL, signal.SIGINT),
    1: (signal.SIGINT, signal.SIGKILL),
}
START = ": pool "  # the first log line: the data is loaded, the run starts writing


def _start(cfg: Path, run: Path) -> tuple[subprocess.Popen, list[tuple[float, str]]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "unlearn_audit", "audit", "--config", str(cfg), "--out", str(run)]
        + ["--quiet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[tuple[float, str]] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append((time.perf_counter(), line.rstrip("\n")))

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def _started(proc: subprocess.Popen, lines: list[tuple[float, str]]) -> float | None:
    """When the run logged its first line (None if it ended without one)."""
    while True:
        ended = proc.poll() is not None
        hit = [t for t, ln in lines if START in ln]
        if hit:
            return hit[0]
        if ended:
            return None
        time.sleep(0.005)


def _finish(proc: subprocess.Popen, lines: list) -> tuple[int, str]:
    rc = proc.wait(timeout=120)
    time.sleep(0.05)  # the pump thread drains the pipe
    return rc, "\n".join(ln for _, ln in lines)


def _files(run: Path) -> tuple[dict, str, dict[str, np.ndarray]]:
    results = _stable(json.loads((run / "results.json").read_text()))
    with np.load(run / "signals.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return results, (run / "samples.csv").read_text(), arrays


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("chaos")
    cfg = root / "tiny.toml"
    cfg.write_text(CONFIG)
    proc, lines = _start(cfg, root / "clean")
    t0 = _started(proc, lines)
    rc, err = _finish(proc, lines)
    assert rc == 0 and t0 is not None, err
    files = _files(root / "clean")
    # kill moments: over the audit's own work (timings.total_seconds) and a little beyond,
    # into the rendering of the report
    work = json.loads((root / "clean" / "results.json").read_text())["timings"]["total_seconds"]
    return cfg, files, 1.3 * work


@pytest.mark.slow
@pytest.mark.parametrize("seed", sorted(KILLS))
def test_killed_and_resumed_runs_end_with_the_clean_results(seed, clean, tmp_path):
    cfg, (want, want_csv, want_npz), working = clean
    rng = random.Random(seed)
    run = tmp_path / "run"
    log = []
    for n, sig in enumerate(KILLS[seed]):
        proc, lines = _start(cfg, run)
        t0 = _started(proc, lines)
        delay = rng.uniform(0.0, working)
        if t0 is not None:
            time.sleep(max(0.0, t0 + delay - time.perf_counter()))
            if proc.poll() is None:
                proc.send_signal(sig)
        rc, err = _finish(proc, lines)
        log.append(f"--- {sig.name} {delay:.2f}s after the start: rc {rc}\n{err}")
        assert rc in (0, 130, -signal.SIGINT, -signal.SIGKILL), "\n".join(log)
        assert n > 0 or rc != 0, "\n".join(log)  # the first kill lands in a running audit
        if rc == 130:  # Ctrl-C: the CLI's resume hint, no traceback
            assert "run the same command again to resume" in err and "Traceback" not in err
        assert not list(run.rglob("*.corrupt-*")), "\n".join(log)
    proc, lines = _start(cfg, run)
    rc, err = _finish(proc, lines)
    log.append(f"--- resume: rc {rc}\n{err}")
    assert rc == 0, "\n".join(log)
    assert "damaged cache file" not in "\n".join(log)  # atomic writes: a kill damages nothing
    got, got_csv, got_npz = _files(run)
    assert got == want
    assert got_csv == want_csv
    assert set(got_npz) == set(want_npz)
    for key, value in want_npz.items():
        np.testing.assert_array_equal(got_npz[key], value, err_msg=key)
    assert not list(run.rglob("*.tmp")) and not list(run.rglob("*.corrupt-*"))
    assert (run / ".lock").read_text() == ""
