"""The report in a real browser: headless Chromium renders, screenshots and prints it.

Skipped only when Chromium is absent *and* the ``CI`` environment variable is unset; in CI
a missing browser is a failure (``.ci/run`` installs Debian's ``chromium``). Set
``UNLEARN_AUDIT_CHROMIUM`` to use another Chromium-based binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from tests.reports.htmlcheck import parse_tags, section_ids
from tests.reports.test_sections import FULL_ORDER

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
WIDTH, HEIGHT = 1280, 2400
PASS_GREEN = np.array([0x1A, 0x7F, 0x37]) / 255  # --pass in style.css.j2


def find_chromium() -> str | None:
    """The browser to use: ``$UNLEARN_AUDIT_CHROMIUM``, else the first one on PATH."""
    override = os.environ.get("UNLEARN_AUDIT_CHROMIUM")
    if override:
        return override
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI: apt-get install chromium")
        pytest.skip("Chromium is not installed (and CI is unset)")
    return path


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs one headless Chromium command with a fresh profile; fails the test on error."""
    done = subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.slow
def test_report_renders_screenshots_and_prints(
    chromium: str, full_report: tuple[Path, str], tmp_path: Path
) -> None:
    run_dir, html = full_report
    url = (run_dir / "report.html").as_uri()

    dom = run_chromium(chromium, tmp_path / "p1", "--dump-dom", url).stdout
    assert section_ids(dom) == FULL_ORDER  # the verdict section exists after rendering
    tags = parse_tags(dom)
    assert sum(tag == "svg" for tag, _ in tags) == html.count("<svg")
    assert sum(tag == "img" for tag, _ in tags) == 20
    assert re.search(r'<span class="badge pass">pass</span>', dom)

    shot = tmp_path / "report.png"
    run_chromium(
        chromium, tmp_path / "p2", f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", url
    )
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    grey = pixels.mean(axis=2)
    assert grey.std() > 0.1, "the screenshot is (nearly) blank"
    assert (grey < 0.3).mean() > 0.005, "no dark text in the screenshot"
    green = np.all(np.abs(pixels - PASS_GREEN) < 0.04, axis=2)
    assert green.sum() > 100, "the pass badge's colour is missing: CSS not applied?"

    pdf = tmp_path / "report.pdf"
    run_chromium(chromium, tmp_path / "p3", f"--print-to-pdf={pdf}", "--no-pdf-header-footer", url)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert 2 <= pages <= 30, pages
