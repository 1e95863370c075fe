"""The examples/ scripts run as a user runs them (on a tiny setting)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_here(*args: str) -> subprocess.CompletedProcess:
    """``python ARGS`` from the repository root, as a user runs it; it must succeed."""
    res = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def test_python_api_example_runs(tmp_path):
    out = tmp_path / "run"
    example = str(ROOT / "examples" / "python_api.py")
    res = run_here(example, "--out", str(out), "--shadows", "4", "--limit", "300")
    assert "relabel" in res.stdout and "controls separated:" in res.stdout
    assert (out / "results.json").exists() and (out / "report.html").exists()


def test_finetune_method_example_is_the_one_in_the_docs_and_audits(tmp_path):
    """docs/python-api.md shows examples/finetune_method.py verbatim; a user audits it by name."""
    source = (ROOT / "examples" / "finetune_method.py").read_text()
    doc = (ROOT / "docs" / "python-api.md").read_text()
    assert f"```python\n{source}```" in doc
    assert len(source.splitlines()) <= 40
    out = tmp_path / "run"
    tiny = ["--limit", "200", "--epochs", "1", "--shadows", "4", "--quiet", "--no-report"]
    method = "examples.finetune_method:RetainConfuse"
    run_here("-m", "unlearn_audit", "audit", "--out", str(out), *tiny, "--unlearner", method)
    r = json.loads((out / "results.json").read_text())
    model = r["models"]["retain_confuse"]
    assert model["params"] == {"epochs": 2.0, "lr_scale": 0.5, "weight": 1.0}
    assert "error" not in model
    assert r["verdicts"]["retain_confuse"]["status"] in {"pass", "fail", "inconclusive"}
