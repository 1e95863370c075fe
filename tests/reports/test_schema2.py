"""Schema 2 sections: the first screen, the planted control, power, and the records section.

``v2_report`` is a fully populated schema_version 2 run (``conftest.v2_results``): finetune
passes with a residual of at most 12%, the planted control fails as it must, and noop,
finetune and planted have forget records still recognisable. Old (schema 1) runs render
without any of these sections.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest

from tests.reports.conftest import (
    N_FORGET,
    PLANTED_ROWS,
    RECOGNISABLE,
    STATEMENT,
    V2_ORDER,
    RunFactory,
    base_results,
    residual,
    v2_results,
)
from tests.reports.htmlcheck import empty_headings, parse_tags, section, section_ids
from unlearn_audit.reports import render
from unlearn_audit.reports.formatting import fmt_level, fmt_share
from unlearn_audit.reports.images import png_data_uri
from unlearn_audit.reports.residual import interval_text, power_statement, residual_sentence
from unlearn_audit.runfiles import RunFileError

PASS_TEXT = (
    "At most 12% of the deleted records&#39; membership evidence remains "
    "(95% CI -8% to 12%, lira_online; estimate 5%)."
)


def test_v2_run_has_every_section_in_order(v2_report: tuple[Path, str]) -> None:
    html = v2_report[1]
    assert section_ids(html) == V2_ORDER
    assert empty_headings(html) == []


def test_first_screen_leads_with_residual_power_and_controls(
    v2_report: tuple[Path, str],
) -> None:
    html = v2_report[1]
    assert html.index('id="overall-verdict"') < html.index('id="headline"')
    assert html.index('id="headline"') < html.index('id="summary"')
    headline = section(html, "headline")
    methods = headline[: headline.index('id="mdr-statement"')]
    row = re.search(r'<td class="model">finetune</td>.*?</tr>', methods, re.DOTALL)
    assert row is not None
    assert '<span class="badge pass">pass</span>' in row.group(0)
    assert PASS_TEXT in row.group(0)
    # The failed method has no estimate: the report says so and why.
    assert "No residual estimate was recorded: the method failed: diverged" in methods
    assert f'<p class="power-statement" id="mdr-statement">{STATEMENT}</p>' in headline
    controls = headline[headline.index('id="headline-controls"') :]
    names = re.findall(r'<span class="model">(\w+)</span>', controls)
    assert names == ["noop", "retrain", "planted"]
    assert "retrained with 50% of the request kept" in controls
    assert "residual 52% (95% CI 31% to 74%, lira_online)" in controls
    assert "residual 100% (95% CI 100% to 100%, lira_online)" in controls
    assert controls.count('<td class="ok">yes</td>') == 3
    assert "A method passes only when the interval&#39;s upper end is below 30%." in headline
    assert '<a href="#records">' in headline


def test_summary_quotes_the_power_statement(v2_report: tuple[Path, str]) -> None:
    summary = section(v2_report[1], "summary")
    assert f'<th scope="row">Power</th><td>{STATEMENT}</td>' in summary


def test_planted_control_appears_with_the_other_controls(v2_report: tuple[Path, str]) -> None:
    verdict = section(v2_report[1], "verdict")
    table = verdict[verdict.index('<table class="controls">') :]
    assert re.findall(r'<td class="model">(\w+)</td>', table) == ["noop", "retrain", "planted"]
    assert (
        "<td>planted control: retrained with 50% of the request kept; it must not pass</td>"
        "<td>not pass</td>" in table
    )
    planted = table[table.index('<td class="model">planted</td>') :]
    assert '<span class="badge fail">fail</span>' in planted
    assert '<td class="ok">yes</td>' in planted
    # The planted control is not mistaken for a method under audit.
    assert "2 methods judged \u2014 pass: finetune; fail: gradient_ascent." in v2_report[1]
    assert '<td class="model">planted</td>' not in verdict[: verdict.index("<h3>Controls")]


def test_verdict_evidence_quotes_residuals_and_records(v2_report: tuple[Path, str]) -> None:
    verdict = section(v2_report[1], "verdict")
    finetune = verdict[verdict.index('<td class="model">finetune</td>') :]
    evidence = finetune[: finetune.index("</tr>")]
    assert "residual 5% (95% CI -8% to 12%, lira_online)" in evidence
    assert "rmia_online +0.010 (CI -0.030 to +0.050), residual 4%" in evidence
    assert "2 of 40 forget records still recognisable (lira_offline, FDR 10%)" in evidence


@pytest.mark.parametrize(
    ("status", "text", "css"),
    [
        ("inconclusive", "yes, but not caught: no power against this partial forgetting", "warn"),
        ("pass", "no", "bad"),
    ],
)
def test_planted_control_that_is_not_caught(
    make_run: RunFactory, status: str, text: str, css: str
) -> None:
    results = v2_results()
    results["verdicts"]["planted"]["status"] = status
    html = render(make_run(results, samples=False)).read_text(encoding="utf-8")
    for part in ("headline", "verdict"):
        block = section(html, part)
        planted = block[block.rindex("planted</") :]
        assert f'<td class="{css}">{text}</td>' in planted


def test_power_subsection_shows_the_mdr_and_the_curve(v2_report: tuple[Path, str]) -> None:
    verdict = section(v2_report[1], "verdict")
    power = verdict[verdict.index("<h3>Power of this audit</h3>") :]
    assert STATEMENT in power
    assert "Minimum detectable residual: 40%" in power
    assert "catches with probability at least 80%" in power
    assert "above the pass margin of 30%" in power
    cells = re.findall(r'<td class="num">(\d+%)</td>', power[: power.index("</table>")])
    assert cells == ["10%", "20%", "30%", "40%", "31%", "52%", "70%", "85%"]


def test_records_table_counts_every_judged_model(v2_report: tuple[Path, str]) -> None:
    records = section(v2_report[1], "records")
    rows = re.findall(
        r'<tr><td class="model">(\w+)</td><td>(\w+)</td><td class="num">([^<]+)</td>'
        r'<td class="num">([^<]+)</td></tr>',
        records,
    )
    assert rows == [
        ("finetune", "method", "2 of 40", "5.0%"),
        ("noop", "control", "30 of 40", "75.0%"),
        ("retrain", "control", "0 of 40", "0.0%"),
        ("planted", "control", "5 of 40", "12.5%"),
    ]
    assert "lira_offline test" in records and "false discovery rate of 10%" in records
    headings = re.findall(r"<h3>([^<]+)</h3>", records)
    assert headings == [
        "finetune: 2 records still recognisable",
        "noop: 30 records still recognisable",
        "planted: 5 records still recognisable",
    ]


def _listed(records: str, model: str) -> str:
    start = records.index(f"<h3>{model}:")
    end = records.find("<h3>", start + 1)
    return records[start : end if end > 0 else len(records)]


def test_record_lists_have_thumbnails_and_pvalues(v2_report: tuple[Path, str]) -> None:
    run_dir, html = v2_report
    records = section(html, "records")
    with np.load(run_dir / "signals.npz", allow_pickle=False) as npz:
        images, index = npz["forget_images"], list(npz["forget_index"])
    # finetune: most recognisable (smallest p-value) first; p-values from samples.csv.
    finetune = _listed(records, "finetune")
    assert re.findall(r'alt="forget sample (\d+)"', finetune) == ["17", "3"]
    assert re.findall(r"p = ([\d.]+)", finetune) == ["0.001", "0.002"]
    assert "class 7" in finetune and "class 3" in finetune
    for tag, attrs in parse_tags(finetune):
        if tag == "img":
            values = dict(attrs)
            pool = int((values["alt"] or "").rsplit(" ", 1)[1])
            assert values["src"] == png_data_uri(images[index.index(pool)])
    # noop: 30 recognisable, at most 24 listed, with a note of the rest.
    noop = _listed(records, "noop")
    assert noop.count("<img") == 24
    assert re.findall(r'alt="forget sample (\d+)"', noop) == [str(i) for i in range(24)]
    assert "The 24 most recognisable are shown; 6 more are in samples.csv" in noop
    assert "columns pvalue.noop and recognisable.noop" in noop


def test_planted_records_say_which_were_kept(v2_report: tuple[Path, str]) -> None:
    planted = _listed(section(v2_report[1], "records"), "planted")
    kept = [p for p in RECOGNISABLE["planted"] if p in PLANTED_ROWS]
    assert planted.count('<span class="flag">kept</span>') == len(kept) == 4
    assert f"4 of these 5 are among the {len(PLANTED_ROWS)} records it was trained on" in planted


def test_records_without_samples_or_images_still_list_indices(make_run: RunFactory) -> None:
    html = render(make_run(v2_results(), samples=False)).read_text(encoding="utf-8")
    records = section(html, "records")
    assert "<img" not in records and "p = " not in records
    # Without p-values the records are listed by pool index.
    assert re.findall(r"#(\d+)</span>", _listed(records, "finetune")) == ["3", "17"]
    assert 'href="samples.csv"' not in records
    assert empty_headings(html) == []


def test_no_recognisable_record_means_no_list(make_run: RunFactory) -> None:
    results = v2_results()
    for verdict in results["verdicts"].values():
        records = verdict["evidence"].get("records")
        if records:
            records.update(n_recognisable=0, recognisable=[])
    html = render(make_run(results)).read_text(encoding="utf-8")
    records = section(html, "records")
    assert "<h3>" not in records and "<ul" not in records
    assert records.count(f"0 of {N_FORGET}") == 4


def test_schema_1_runs_render_without_the_new_sections(full_report: tuple[Path, str]) -> None:
    html = full_report[1]
    ids = section_ids(html)
    assert "headline" not in ids and "records" not in ids
    for absent in ("Power of this audit", "mdr-statement", "planted", "Residual"):
        assert absent not in html
    assert '<th scope="row">Power</th>' not in html


def test_power_without_residual_still_leads_the_report(make_run: RunFactory) -> None:
    results = base_results()
    results["schema_version"] = 2
    results["power"] = {"mdr": None, "power": 0.8, "n_sim": 50, "curve": {}}
    html = render(make_run(results, samples=False)).read_text(encoding="utf-8")
    headline = section(html, "headline")
    assert "it has no power to show forgetting" in headline  # built without a statement
    assert "Residual:" not in headline  # no scale note without residuals
    assert "No residual estimate was recorded" in headline
    assert empty_headings(html) == []


def test_user_strings_in_new_fields_are_escaped(make_run: RunFactory) -> None:
    evil = "<script>alert(1)</script>"
    results = v2_results()
    results["power"]["statement"] = evil
    results["verdicts"]["finetune"]["evidence"]["residual"]["attack"] = evil
    results["verdicts"]["finetune"]["evidence"]["records"]["attack"] = evil
    html = render(make_run(copy.deepcopy(results))).read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;") >= 4


@pytest.mark.parametrize("version", [1, 2])
def test_both_schema_versions_are_accepted(make_run: RunFactory, version: int) -> None:
    results = base_results()
    results["schema_version"] = version
    assert render(make_run(results, samples=False)).is_file()


def test_schema_3_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text('{"schema_version": 3}', encoding="utf-8")
    with pytest.raises(RunFileError, match=r"unsupported schema_version 3 \(expected 1 or 2\)"):
        render(tmp_path)


# -- the words --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            residual(0.05, -0.08, 0.12),
            "at most 12% of the deleted records' membership evidence remains "
            "(95% CI -8% to 12%, lira_online; estimate 5%)",
        ),
        (
            residual(0.96, 0.67, 1.49),
            "an estimated 96% of the deleted records' membership evidence remains "
            "(95% CI 67% to 149%, lira_online)",
        ),
        (
            residual(None, 0.4, None),
            "at least 40% of the deleted records' membership evidence remains "
            "(95% CI from 40%, no upper bound, lira_online)",
        ),
        (
            residual(0.08, -1.04, 0.81),
            "up to 81% of the deleted records' membership evidence may remain "
            "(95% CI -104% to 81%, lira_online; estimate 8%; "
            "a pass needs the upper end below 30%)",
        ),
        (
            residual(None, None, None),
            "the audit cannot bound how much of the deleted records' membership evidence "
            "remains (95% CI unbounded, lira_online; a pass needs the upper end below 30%)",
        ),
        ({}, ""),
    ],
)
def test_residual_sentences(block: dict[str, object], expected: str) -> None:
    assert residual_sentence(block) == expected


def test_interval_and_share_formats() -> None:
    assert interval_text([None, 0.5], 0.9) == "90% CI up to 50%, no lower bound"
    assert interval_text([0.1, 0.2]) == "CI 10% to 20%"
    assert fmt_share(0.118) == "12%" and fmt_share(-0.004) == "0%" and fmt_share(None) == "\u2014"
    assert fmt_level(1 - 0.05 / 3) == "98.33%" and fmt_level(0.95) == "95%"


def test_power_statement_is_quoted_or_rebuilt() -> None:
    assert power_statement({"power": {"statement": " as recorded. "}}) == "as recorded."
    assert power_statement({"power": {"mdr": 0.35, "power": 0.8}}) == (
        "This audit would catch a model that still remembers at least 35% of the deleted "
        "records (in 80% of audits); it could not reliably see less."
    )
    assert power_statement({"power": {"curve": {}}}) == ""
    assert power_statement({}) == ""


def test_record_weights_are_stated_in_words_or_left_out() -> None:
    from unlearn_audit.reports.residual import weighting_line

    sep = {"scheme": "separation", "effective_forget_records": 137.7, "n_forget": 300}
    line = weighting_line({"power": {"weighting": sep}})
    assert "the 300 forget records count as 138 equally weighted ones" in line
    assert "visible" in line and "shadow models" in line
    uniform = {"power": {"weighting": {"scheme": "uniform", "n_forget": 300}}}
    assert weighting_line(uniform) == "every forget record weighs the same in the residual"
    assert weighting_line({"power": {"mdr": 0.2}}) == ""  # early schema 2 runs: no row
    assert weighting_line({"power": {"weighting": {"scheme": "separation"}}}) == ""
    assert weighting_line({}) == ""
