"""The examples/ scripts run as a user runs them (on a tiny setting)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_python_api_example_runs(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "python_api.py"),
            "--out",
            str(out),
            "--shadows",
            "4",
            "--limit",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "relabel" in res.stdout and "controls separated:" in res.stdout
    assert (out / "results.json").exists() and (out / "report.html").exists()
