"""Display formatting and lenient input handling."""

from __future__ import annotations

import math

import pytest

from tests.reports.conftest import RunFactory, base_results
from tests.reports.htmlcheck import empty_headings
from unlearn_audit.reports import render
from unlearn_audit.reports.formatting import (
    MISSING,
    fmt_fixed,
    fmt_interval,
    fmt_pct,
    fmt_pp,
    fmt_seconds,
    text_list,
)


@pytest.mark.parametrize("bad", [None, "0.5", True, math.nan, math.inf, [0.5]])
def test_non_numbers_render_as_a_dash(bad: object) -> None:
    assert fmt_pct(bad) == MISSING
    assert fmt_pp(bad) == MISSING
    assert fmt_fixed(bad) == MISSING
    assert fmt_seconds(bad) == MISSING


def test_number_formats() -> None:
    assert fmt_pct(0.9534) == "95.3%"
    assert fmt_pct(1) == "100.0%"
    assert fmt_pct(0.0002, 2) == "0.02%"
    assert fmt_pp(0.015) == "+1.5 pp"
    assert fmt_pp(-0.0302) == "-3.0 pp"
    assert fmt_pp(-0.0004) == "+0.0 pp"  # never "-0.0"
    assert fmt_fixed(0.70951) == "0.710"
    assert fmt_interval([0.65, 0.77]) == "[0.650, 0.770]"
    assert fmt_interval([0.65]) == ""
    assert fmt_interval(None) == ""
    assert fmt_seconds(3.14159) == "3.14 s"
    assert fmt_seconds(61.25) == "61.2 s"


def test_text_list_normalises_reasons() -> None:
    assert text_list("one") == ["one"]
    assert text_list(["a", 2]) == ["a", "2"]
    assert text_list(None) == []
    assert text_list("  ") == []


def test_mistyped_sections_are_treated_as_absent(make_run: RunFactory) -> None:
    results = base_results()
    results["attacks"] = ["not", "a", "mapping"]
    results["verdicts"] = None
    results["forgetting"] = "n/a"
    results["timings"] = []
    results["models"]["finetune"]["utility"] = None
    html = render(make_run(results)).read_text(encoding="utf-8")
    assert '<table class="attack">' not in html  # no attack tables...
    assert 'id="roc"' in html  # ...but the ROC plot still comes from samples.csv
    assert 'id="forgetting"' not in html and "<h3>Timings</h3>" not in html
    assert 'id="utility"' in html
    assert '<table class="verdicts">' not in html
    assert "<h3>Controls</h3>" in html  # controls were still recorded
    assert empty_headings(html) == []


def test_blank_scores_and_empty_splits_are_skipped(make_run: RunFactory) -> None:
    run_dir = make_run()
    lines = (run_dir / "samples.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    col = header.index("lira_online.finetune")
    blanked = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        cells[col] = ""  # finetune has no usable scores at all
        blanked.append(",".join(cells))
    (run_dir / "samples.csv").write_text("\n".join(blanked) + "\n", encoding="utf-8")
    html = render(run_dir).read_text(encoding="utf-8")
    assert "original (AUC" in html
    assert "finetune (AUC" not in html


def test_samples_without_split_column_omit_the_plot(make_run: RunFactory) -> None:
    run_dir = make_run(samples=False)
    (run_dir / "samples.csv").write_text("index,lira_online.original\n0,0.5\n", encoding="utf-8")
    html = render(run_dir).read_text(encoding="utf-8")
    assert 'id="roc"' not in html
    assert "no &#39;split&#39; column" in html
    assert 'id="samples"' not in html
