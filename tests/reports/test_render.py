"""End-to-end tests of ``reports.render`` on fabricated run directories."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.reports.conftest import MODELS, RunFactory, base_results, unseparated
from tests.reports.htmlcheck import empty_headings, parse_tags, section, section_ids
from unlearn_audit.reports import render
from unlearn_audit.runfiles import RunFileError

EVIL = "<script>alert(1)</script>"


def test_render_writes_report_and_returns_its_path(make_run: RunFactory) -> None:
    run_dir = make_run()
    path = render(str(run_dir))
    assert path == run_dir / "report.html"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_names_every_model_and_verdict_status(base_report: tuple[Path, str]) -> None:
    html = base_report[1]
    for model in MODELS:
        assert model in html
    for status in ("pass", "fail"):
        assert f'<span class="badge {status}">{status}</span>' in html
    assert "diverged: loss became NaN at step 12" in html
    assert "unlearn-audit 0.1.0" in html
    assert "2 methods judged \u2014 pass: finetune; fail: gradient_ascent." in html


def test_verdict_comes_first_then_the_contract_order(base_report: tuple[Path, str]) -> None:
    html = base_report[1]
    expected = ["summary", "verdict", "utility", "attacks", "samples", "provenance"]
    assert section_ids(html) == expected
    assert html.index('id="overall-verdict"') < html.index('id="summary"')


def test_summary_block_is_a_compliance_record(base_report: tuple[Path, str]) -> None:
    html = base_report[1]
    summary = section(html, "summary")
    assert "2026-11-30T08:00:00+00:00" in summary
    assert "Run by</th><td>not recorded" in summary
    assert (
        "89 samples: a random 10% of the 898 training members, drawn with seed 0 "
        "(request random:0.1)" in summary
    )
    assert "retrained from scratch on the 809 retained samples" in summary
    assert "Methods audited</th><td>finetune, gradient_ascent" in summary
    assert "Controls</th><td>separated" in summary


def test_plots_are_inline_svg_without_xml_prolog(base_report: tuple[Path, str]) -> None:
    html = base_report[1]
    assert "<svg" in html
    assert "<?xml" not in html
    assert "<!DOCTYPE svg" not in html
    assert "<metadata>" not in html


def _assert_self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    tags = parse_tags(html)
    names = {tag for tag, _ in tags}
    assert not names & {"script", "link", "iframe", "object", "embed", "video", "audio"}
    for tag, attrs in tags:
        for key, value in attrs:
            if tag == "img" and key == "src":
                assert (value or "").startswith("data:image/png;base64,"), value
            elif key.endswith("src") or key.endswith("href"):
                assert not re.match(r"\s*(https?:|//|data:)", value or ""), (key, value)
    assert "@import" not in html
    assert "@font-face" not in html
    assert not re.search(r"url\(\s*['\"]?(?!#)", html)  # only in-document url(#id) refs


def test_report_is_self_contained(base_report: tuple[Path, str]) -> None:
    html = base_report[1]
    _assert_self_contained(html)
    assert '<a href="samples.csv">' in html


def test_full_report_is_self_contained(full_report: tuple[Path, str]) -> None:
    _assert_self_contained(full_report[1])


def test_write_is_atomic_and_leaves_no_tmp_file(make_run: RunFactory) -> None:
    run_dir = make_run()
    (run_dir / ".report.html.tmp").write_text("stale", encoding="utf-8")
    (run_dir / "report.html").write_text("old", encoding="utf-8")
    path = render(run_dir)
    assert not (run_dir / ".report.html.tmp").exists()
    assert "<svg" in path.read_text(encoding="utf-8")
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "report.html",
        "results.json",
        "samples.csv",
    ]


def test_output_is_deterministic(full_report: tuple[Path, str]) -> None:
    run_dir, first = full_report
    assert render(run_dir).read_text(encoding="utf-8") == first


def test_user_strings_are_escaped(make_run: RunFactory) -> None:
    results = base_results()
    for block in ("models", "attacks", "verdicts"):
        results[block][EVIL] = results[block].pop("finetune")
    results["verdicts"][EVIL]["reasons"] = [f"reason {EVIL}"]
    results["data"]["classes"] = [EVIL] * 10
    results["data"]["forget_spec"] = f"file:{EVIL}.txt"
    results["run"]["name"] = EVIL
    results["run"]["user"] = EVIL
    results["run"]["command"] = f"unlearn-audit audit --out 'runs/{EVIL}'"
    results["config"]["verdict"]["attack"] = EVIL
    results["timings"][EVIL] = 1.0
    run_dir = make_run(results)
    csv_path = run_dir / "samples.csv"
    text = csv_path.read_text(encoding="utf-8")
    text = text.replace("lira_online.finetune", f"lira_online.{EVIL}")
    csv_path.write_text(text.replace(",x\n", f",{EVIL}\n"), encoding="utf-8")
    html = render(run_dir).read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "script" not in {tag for tag, _ in parse_tags(html)}


def test_empty_sections_are_omitted_with_their_headings(make_run: RunFactory) -> None:
    results = base_results()
    results["attacks"] = {}
    results["verdicts"] = {}
    results["forgetting"] = {}
    results["controls"] = {}
    html = render(make_run(results, samples=False)).read_text(encoding="utf-8")
    for heading in ("Verdict", "Membership inference", "Forgetting quality", "Hardest"):
        assert f"<h2>{heading}" not in html
    assert section_ids(html) == ["summary", "utility", "provenance"]
    assert "No verdicts were recorded" in html
    assert "samples.csv not found" in html
    assert 'href="samples.csv"' not in html
    assert empty_headings(html) == []


def test_minimal_results_render(make_run: RunFactory) -> None:
    results = {"schema_version": 1, "models": {"original": {"utility": None}}}
    html = render(make_run(results, samples=False)).read_text(encoding="utf-8")
    assert section_ids(html) == ["summary", "utility", "provenance"]
    assert "original" in html
    assert empty_headings(html) == []


def test_utility_table_formats_percentages_and_gaps(base_report: tuple[Path, str]) -> None:
    html = base_report[1]
    utility = section(html, "utility")
    row = re.search(r"<tr>\s*<td class=\"model\">finetune</td>.*?</tr>", utility, re.DOTALL)
    assert row is not None
    cells = re.findall(r'<td class="num">(.*?)</td>', row.group(0))
    assert cells == [
        '97.0%<span class="ci">+3.0 pp</span>',
        '99.0%<span class="ci">-1.0 pp</span>',
        '94.1%<span class="ci">-0.9 pp</span>',
        "0.40 s",
    ]
    assert "Failed: diverged: loss became NaN at step 12" in utility
    assert '<tr class="reference">' in utility


def test_encoder_utility_keys_get_their_own_columns(make_run: RunFactory) -> None:
    results = base_results()
    for entry in results["models"].values():
        if entry.get("utility"):
            entry["utility"] = {"probe_test_acc": 0.9, "knn_test_acc": 0.8}
    html = render(make_run(results, samples=False)).read_text(encoding="utf-8")
    assert "<th>Probe test accuracy</th><th>kNN test accuracy</th>" in html
    assert "Forget accuracy" not in html


def test_attack_table_shows_auc_and_tpr_intervals(base_report: tuple[Path, str]) -> None:
    html = base_report[1]
    attacks = section(html, "attacks")
    assert '0.710<span class="ci">[0.650, 0.770]</span>' in attacks
    # Wilson 95% interval of 2.0% over the 89 forget samples (and 9.0% over them).
    assert '2.0%<span class="ci">[0.5%, 7.5%]</span>' in attacks
    assert '9.0%<span class="ci">[4.6%, 16.8%]</span>' in attacks
    assert "<h3>loss</h3>" in attacks  # the second attack of noop gets its own table
    # The verdict attack first, then its ROC plot, then the other attacks.
    assert attacks.index("<h3>lira_online") < attacks.index('id="roc"')
    assert attacks.index('id="roc"') < attacks.index("<h3>loss</h3>")
    assert "at most 0 of the 899 non-members" in attacks
    assert "at most 8 of the 899 non-members" in attacks


def test_recorded_tpr_intervals_are_used(make_run: RunFactory) -> None:
    results = base_results()
    block = results["attacks"]["original"]["lira_online"]["forget_vs_nonmember"]
    block["tpr_ci"] = {"0.001": [0.001, 0.05]}
    html = render(make_run(results, samples=False)).read_text(encoding="utf-8")
    assert '2.0%<span class="ci">[0.1%, 5.0%]</span>' in html
    assert "TPR as recorded in results.json" in html


def test_unseparated_controls_say_what_would_give_power(make_run: RunFactory) -> None:
    html = render(make_run(unseparated(base_results()), samples=False)).read_text(encoding="utf-8")
    verdict = section(html, "verdict")
    assert 'id="controls-not-separated"' in verdict
    assert "every verdict in this report is inconclusive" in verdict
    assert "more shadow models would give power" in verdict
    assert 'class="verdict-line inconclusive"' in html
    assert "without the controls' gate: pass" in verdict
    advice = verdict[verdict.index('id="power-advice"') :]
    assert "this run used 16" in advice  # attack.shadows
    assert "this run used 5" in advice  # attack.queries
    assert "this run used 89 samples" in advice
    assert "this run used 40" in advice  # train.epochs
    assert empty_headings(html) == []


def test_separated_controls_give_no_advice(base_report: tuple[Path, str]) -> None:
    html = base_report[1]
    assert 'id="controls-separated"' in html
    assert "What would make this audit conclusive" not in html


def test_failed_positive_control_is_explained(make_run: RunFactory) -> None:
    results = base_results()
    results["verdicts"]["retrain"]["status"] = "fail"
    results["controls"] = {"separated": False, "reasons": ["retrain control did not pass"]}
    html = render(make_run(results, samples=False)).read_text(encoding="utf-8")
    verdict = section(html, "verdict")
    assert "The positive control (an independent retrain) was judged different" in verdict
    assert "Train more shadow models" not in verdict  # the noop control was caught
    assert '<td class="bad">no</td>' in verdict


def test_roc_attack_can_be_chosen_in_results(make_run: RunFactory) -> None:
    results = base_results()
    results["report"] = {"roc_attack": "loss"}
    html = render(make_run(results)).read_text(encoding="utf-8")
    assert "Log-log ROC of the loss attack" in html
    assert "noop (AUC" in html and "original (AUC" not in html


def test_missing_results_json_raises(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match="results.json: file not found") as info:
        render(tmp_path)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"schema_version": 1,', "invalid JSON at line 1"),
        ("[1, 2]", "top level must be a JSON object"),
        ('{"schema_version": 3}', "unsupported schema_version 3"),
    ],
)
def test_invalid_results_json_raises(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "results.json").write_text(text, encoding="utf-8")
    with pytest.raises(RunFileError, match=re.escape(problem)) as info:
        render(tmp_path)
    message = str(info.value)
    assert "results.json" in message and "\n" not in message


def test_reports_package_imports_no_other_project_package() -> None:
    forbidden = {"audit", "attacks", "learning", "unlearners"}
    package = Path(__file__).resolve().parents[2] / "reports"
    sources = list(package.glob("*.py"))
    assert len(sources) >= 10
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & forbidden, f"{source.name} imports {roots & forbidden}"


def test_automatic_config_values_are_not_quoted_back(make_run: RunFactory) -> None:
    results = unseparated(base_results())
    results["config"]["attack"]["queries"] = 0  # 0 = automatic
    html = render(make_run(results, samples=False)).read_text(encoding="utf-8")
    assert "Query more augmented views of each sample (attack.queries)." in html
    assert "this run used 0" not in html
