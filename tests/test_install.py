"""The installed package adds one import name, ``unlearn_audit``, and nothing generic.

Builds the wheel from a copy of this source tree (so the build leaves nothing in
the checkout), unpacks it into an empty folder and imports
from there in an isolated interpreter (``-I``: no site-packages, no current folder,
no PYTHONPATH), so only what the wheel installs can be found.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    pyproject = ROOT / "pyproject.toml"
    dirs = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-dir"]
    for folder in {*dirs.values()}:
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(out), str(src)],
        check=True,
        capture_output=True,
        cwd=out,
    )
    (found,) = out.glob("unlearn_audit-*.whl")
    return found


def _isolated(site: Path, code: str) -> subprocess.CompletedProcess[str]:
    prog = f"import sys; sys.path.insert(0, {str(site)!r}); {code}"
    return subprocess.run(
        [sys.executable, "-I", "-c", prog], capture_output=True, text=True, cwd=site
    )


def test_the_wheel_installs_one_top_level_name(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        z.extractall(tmp_path)
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"unlearn_audit"}
    # every floor and the report templates are in it
    for path in (
        "audit/pipeline.py",
        "difficulty/assess.py",
        "learning/data.py",
        "runfiles/read.py",
        "unlearners/base.py",
    ):
        assert f"unlearn_audit/{path}" in names
    assert any(n.startswith("unlearn_audit/reports/templates/") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as z:
        assert "unlearn-audit = unlearn_audit.cli:main" in z.read(entry).decode()

    ok = _isolated(tmp_path, "import unlearn_audit; print(sorted(unlearn_audit.__all__))")
    assert ok.returncode == 0, ok.stderr
    assert "run_audit" in ok.stdout
    names = ("audit", "difficulty", "reports", "learning", "attacks", "unlearners", "runfiles")
    for generic in names:
        res = _isolated(tmp_path, f"import {generic}")
        assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr, generic
