"""The report in a real browser: headless Chromium renders, screenshots and prints it.

The run is the fully populated schema_version 2 one (``v2_report``); the browser also
checks that the first screen (a 1280x800 viewport) shows each method's residual, the
power statement and the controls.

Skipped only when Chromium is absent *and* the ``CI`` environment variable is unset; in CI
a missing browser is a failure (``.ci/run`` installs Debian's ``chromium``). Set
``UNLEARN_AUDIT_CHROMIUM`` to use another Chromium-based binary.
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from tests.reports.conftest import RECOGNISABLE, STATEMENT, V2_ORDER
from tests.reports.htmlcheck import parse_tags, section_ids
from unlearn_audit.reports.records import N_LISTED

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
FIRST_SCREEN = (1280, 800)
# Appended to a copy of the report (the report itself has no script): measures where the
# first-screen elements are laid out and writes that, with their text, into the DOM.
PROBE = """<script>
const out = {viewport: window.innerHeight, width: window.innerWidth};
for (const id of ["overall-verdict", "headline-methods", "mdr-statement", "headline-controls"]) {
  const el = document.getElementById(id);
  if (el) { const r = el.getBoundingClientRect();
            out[id] = {top: r.top, bottom: r.bottom, text: el.innerText}; }
}
const pre = document.createElement("pre");
pre.id = "probe";
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""
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


def first_screen(binary: str, profile: Path, html: str, where: Path) -> dict:
    """Lays the report out in a first-screen viewport; the probe's measurements."""
    probe = where / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    width, height = FIRST_SCREEN
    dom = run_chromium(
        binary, profile, f"--window-size={width},{height}", "--dump-dom", probe.as_uri()
    ).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the probe did not run"
    return json.loads(htmllib.unescape(found.group(1)))


@pytest.mark.slow
def test_report_renders_screenshots_and_prints(
    chromium: str, v2_report: tuple[Path, str], tmp_path: Path
) -> None:
    run_dir, html = v2_report
    url = (run_dir / "report.html").as_uri()

    dom = run_chromium(chromium, tmp_path / "p1", "--dump-dom", url).stdout
    assert section_ids(dom) == V2_ORDER  # the verdict section exists after rendering
    tags = parse_tags(dom)
    assert sum(tag == "svg" for tag, _ in tags) == html.count("<svg")
    listed = sum(min(len(found), N_LISTED) for found in RECOGNISABLE.values())
    assert sum(tag == "img" for tag, _ in tags) == 20 + listed  # hardest samples + records
    assert re.search(r'<span class="badge pass">pass</span>', dom)

    screen = first_screen(chromium, tmp_path / "p0", html, tmp_path)
    # --dump-dom keeps the window's frame, so the viewport is shorter than the window:
    # like a browser window of that size, and a stricter test of the first screen.
    assert 600 <= screen["viewport"] <= FIRST_SCREEN[1], screen
    for key in ("overall-verdict", "headline-methods", "mdr-statement", "headline-controls"):
        assert key in screen, f"#{key} is missing"
        assert 0 <= screen[key]["top"] < screen[key]["bottom"] <= screen["viewport"], (key, screen)
    methods = " ".join(screen["headline-methods"]["text"].split())
    assert (
        "finetune PASS At most 12% of the deleted records' membership evidence remains" in methods
    )
    assert "(95% CI -8% to 12%, lira_online; estimate 5%)" in methods
    assert screen["mdr-statement"]["text"].strip() == STATEMENT
    controls = " ".join(screen["headline-controls"]["text"].split())
    for name in ("noop", "retrain", "planted"):
        assert name in controls
    assert "residual 52% (95% CI 31% to 74%, lira_online)" in controls

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
