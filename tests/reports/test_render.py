"""End-to-end tests of ``reports.render`` on fabricated run directories."""

from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reports import ReportError, render
from tests.reports.conftest import MODELS, RunFactory, base_results

EVIL = "<script>alert(1)</script>"


class _Tags(HTMLParser):
    """Collects start tags and their attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def parse_tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def section_ids(html: str) -> list[str]:
    return [dict(attrs).get("id") or "" for tag, attrs in parse_tags(html) if tag == "section"]


def test_render_writes_report_and_returns_its_path(make_run: RunFactory) -> None:
    run_dir = make_run()
    path = render(str(run_dir))
    assert path == run_dir / "report.html"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_names_every_model_and_verdict_status(make_run: RunFactory) -> None:
    html = render(make_run()).read_text(encoding="utf-8")
    for model in MODELS:
        assert model in html
    for status in ("pass", "fail", "inconclusive"):
        assert f'<span class="badge {status}">{status}</span>' in html
    assert "diverged: loss became NaN at step 12" in html
    assert "unlearn-audit 0.1.0" in html
    assert "random:0.1 (89 samples)" in html
    assert "1 method judged \u2014 inconclusive: finetune; no verdict: gradient_ascent." in html


def test_sections_appear_in_contract_order(make_run: RunFactory) -> None:
    html = render(make_run()).read_text(encoding="utf-8")
    expected = ["verdicts", "utility", "attacks", "forgetting", "roc", "provenance"]
    assert section_ids(html) == expected
    assert html.index('id="overall-verdict"') < html.index('id="verdicts"')


def test_plot_is_inline_svg_without_xml_prolog(make_run: RunFactory) -> None:
    html = render(make_run()).read_text(encoding="utf-8")
    assert "<svg" in html
    assert "<?xml" not in html
    assert "<!DOCTYPE svg" not in html
    assert "<metadata>" not in html


def test_report_is_self_contained(make_run: RunFactory) -> None:
    html = render(make_run()).read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    tags = parse_tags(html)
    names = {tag for tag, _ in tags}
    assert not names & {"script", "link", "img", "iframe", "object", "embed"}
    for _, attrs in tags:
        for key, value in attrs:
            if key.endswith("src") or key.endswith("href"):
                assert not re.match(r"\s*(https?:|//)", value or ""), (key, value)
    assert "@import" not in html
    assert not re.search(r"url\(\s*['\"]?(?!#)", html)  # only in-document url(#id) refs
    assert '<a href="samples.csv">' in html


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


def test_output_is_deterministic(make_run: RunFactory) -> None:
    run_dir = make_run()
    first = render(run_dir).read_text(encoding="utf-8")
    assert render(run_dir).read_text(encoding="utf-8") == first


def test_user_strings_are_escaped(make_run: RunFactory) -> None:
    results = base_results()
    results["models"][EVIL] = results["models"].pop("finetune")
    results["attacks"][EVIL] = results["attacks"].pop("finetune")
    results["verdicts"][EVIL] = results["verdicts"].pop("finetune")
    results["verdicts"][EVIL]["reasons"] = [f"reason {EVIL}"]
    results["data"]["classes"] = [EVIL, "cat"]
    results["run"]["name"] = EVIL
    results["run"]["command"] = f"unlearn-audit audit --out 'runs/{EVIL}'"
    html = render(make_run(results)).read_text(encoding="utf-8")
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
    for heading in ("Verdicts", "Membership inference attacks", "Forgetting quality", "ROC"):
        assert f"<h2>{heading}" not in html
    assert section_ids(html) == ["utility", "provenance"]
    assert "No verdicts were recorded" in html
    assert "samples.csv not found" in html
    assert 'href="samples.csv"' not in html


def test_minimal_results_render(make_run: RunFactory) -> None:
    results = {"schema_version": 1, "models": {"original": {"utility": None}}}
    html = render(make_run(results, samples=False)).read_text(encoding="utf-8")
    assert section_ids(html) == ["utility", "provenance"]
    assert "original" in html


def test_utility_table_formats_percentages_and_gaps(make_run: RunFactory) -> None:
    html = render(make_run()).read_text(encoding="utf-8")
    utility = html[html.index('<section id="utility">') : html.index('<section id="attacks">')]
    row = re.search(r"<tr>\s*<td>finetune</td>.*?</tr>", utility, re.DOTALL)
    assert row is not None
    cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(0))
    assert cells == ["97.0%", "99.0%", "94.1%", "-0.9 pp", "+3.0 pp", "0.40 s"]
    assert "Failed: diverged: loss became NaN at step 12" in utility


def test_attack_table_shows_auc_ci_and_tprs(make_run: RunFactory) -> None:
    html = render(make_run()).read_text(encoding="utf-8")
    assert "0.710 [0.650, 0.770]" in html
    assert "2.00%" in html and "9.00%" in html
    assert "<td>loss</td>" in html  # second attack of noop
    assert "0.0123" in html and "1.50" in html  # forgetting table


def test_unseparated_controls_get_a_callout(make_run: RunFactory) -> None:
    results = base_results()
    results["controls"] = {
        "separated": False,
        "reasons": ["noop control passed; more shadow models would give power"],
    }
    html = render(make_run(results)).read_text(encoding="utf-8")
    assert 'id="controls-not-separated"' in html
    assert "every verdict in this report is inconclusive" in html
    assert "more shadow models would give power" in html
    assert 'class="verdict-line inconclusive"' in html


def test_roc_attack_can_be_chosen_in_results(make_run: RunFactory) -> None:
    results = base_results()
    results["report"] = {"roc_attack": "loss"}
    html = render(make_run(results)).read_text(encoding="utf-8")
    assert "Log-log ROC of the loss attack" in html
    assert "noop (AUC" in html and "original (AUC" not in html


def test_missing_results_json_raises(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="results.json: file not found") as info:
        render(tmp_path)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"schema_version": 1,', "invalid JSON at line 1"),
        ("[1, 2]", "top level must be a JSON object"),
        ('{"schema_version": 2}', "unsupported schema_version 2"),
    ],
)
def test_invalid_results_json_raises(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "results.json").write_text(text, encoding="utf-8")
    with pytest.raises(ReportError, match=re.escape(problem)) as info:
        render(tmp_path)
    message = str(info.value)
    assert "results.json" in message and "\n" not in message


def test_reports_package_imports_no_other_project_package() -> None:
    forbidden = {"audit", "attacks", "learning", "unlearners"}
    package = Path(__file__).resolve().parents[2] / "reports"
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & forbidden, f"{source.name} imports {roots & forbidden}"
