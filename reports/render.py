"""Render a run directory into one self-contained ``report.html``.

Usage::

    from unlearn_audit.reports import render
    path = render("runs/demo")   # writes runs/demo/report.html

Only the on-disk contract is read (``results.json``, ``samples.csv``, ``signals.npz``),
through its one reader, :mod:`unlearn_audit.runfiles`. The output embeds its CSS, SVG
plots and PNG thumbnails, loads nothing from the network and contains no script.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jinja2

from unlearn_audit.reports import figures, tables
from unlearn_audit.reports.formatting import as_dict, fmt_value
from unlearn_audit.reports.headline import headline_section
from unlearn_audit.reports.persample import hardest_samples
from unlearn_audit.reports.provenance import provenance_section, summary_rows
from unlearn_audit.reports.records import records_section
from unlearn_audit.reports.verdict import overall_verdict, verdict_section
from unlearn_audit.runfiles import (
    REPORT_FILE,
    RunFileError,
    read_forget_images,
    read_results,
    read_samples,
)

TMP_FILE = f".{REPORT_FILE}.tmp"
DEFAULT_ATTACK = "lira_online"
TEMPLATE = "report.html.j2"
_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def _environment() -> jinja2.Environment:
    """A Jinja environment over the packaged templates with autoescaping always on."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def verdict_attack(results: dict[str, Any]) -> str:
    """The attack that decides the verdict (``report.roc_attack``, ``config.verdict.attack``)."""
    for value in (
        as_dict(results.get("report")).get("roc_attack"),
        as_dict(as_dict(results.get("config")).get("verdict")).get("attack"),
    ):
        if isinstance(value, str) and value:
            return value
    return DEFAULT_ATTACK


def _attacks(results: dict[str, Any], roc_svg: str, attack: str) -> dict[str, Any] | None:
    """The membership-inference section: one table per attack and the ROC plot."""
    attack_tables = tables.attack_tables(results, attack)
    if not attack_tables and not roc_svg:
        return None
    recorded = any(
        "tpr_ci" in as_dict(block)
        for per_attack in as_dict(results.get("attacks")).values()
        for entry in as_dict(per_attack).values()
        for block in as_dict(entry).values()
    )
    return {
        "first": attack_tables[0] if attack_tables else None,
        "others": attack_tables[1:],
        "roc_svg": roc_svg,
        "attack": attack,
        "tpr_ci_recorded": recorded,
        "low_fpr": tables.low_fpr_note(results, attack_tables),
    }


def signal_text(results: dict[str, Any]) -> str:
    """What the membership signal is, as results.json says (older runs: the supervised one)."""
    text = as_dict(results.get("paradigm")).get("signal")
    return str(text) if text else "the model's logit-scaled confidence in the true label"


def build_context(results: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Everything the template needs, already formatted as strings.

    Args:
        results: Parsed ``results.json``.
        run_dir: The run directory (for ``samples.csv`` and ``signals.npz``).

    Returns:
        The template context.
    """
    samples, samples_note = read_samples(run_dir)
    images, images_note = read_forget_images(run_dir)
    attack = verdict_attack(results)
    notes = [n for n in (samples_note, images_note) if n]
    svg = {"roc": "", "signal": "", "epsilon": "", "difficulty": ""}
    if samples is not None:
        svg["roc"] = figures.roc_figure(results, samples, attack)
        svg["signal"] = figures.signal_figure(results, samples)
        svg["epsilon"] = figures.epsilon_figure(results, samples)
        svg["difficulty"] = figures.difficulty_figure(results, samples)
    per_sample = hardest_samples(results, samples, images, attack)
    if per_sample is not None and not per_sample["thumbnails"] and images_note is None:
        notes.append("signals.npz holds no forget_images; the per-sample table has no thumbnails.")
    tool = as_dict(results.get("tool"))
    verdict_line, verdict_class = overall_verdict(results)
    run_name = fmt_value(as_dict(results.get("run")).get("name") or run_dir.name)
    tool_name = str(tool.get("name") or "unlearn-audit")
    forgetting = tables.forgetting_rows(results)
    return {
        "title": f"{tool_name} report \u2014 {run_name}",
        "summary": summary_rows(results, verdict_line),
        "verdict_line": verdict_line,
        "verdict_class": verdict_class,
        "headline": headline_section(results),
        "verdict": verdict_section(results),
        "records": records_section(results, samples, images),
        "utility": tables.utility_table(results),
        "attacks": _attacks(results, svg["roc"], attack),
        "signal_svg": svg["signal"],
        "signal_text": signal_text(results),
        "forgetting": {"rows": forgetting, "epsilon_svg": svg["epsilon"]}
        if forgetting or svg["epsilon"]
        else None,
        "retain_leakage": tables.retain_leakage_rows(results),
        "difficulty_svg": svg["difficulty"],
        "samples": per_sample,
        "provenance": provenance_section(results, run_dir, notes),
    }


def render(run_dir: str | Path) -> Path:
    """Renders ``RUN/report.html`` from the run directory's result files.

    The file is written atomically: first to ``RUN/.report.html.tmp``, then moved into
    place with :func:`os.replace`.

    Args:
        run_dir: The run directory.

    Returns:
        Path of the written report.

    Raises:
        RunFileError: If ``results.json`` is missing or invalid, or the report cannot be
            written.
    """
    root = Path(run_dir)
    results = read_results(root)
    html = _environment().get_template(TEMPLATE).render(**build_context(results, root))
    target = root / REPORT_FILE
    tmp = root / TMP_FILE
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunFileError(f"{target}: cannot write report: {exc}") from exc
    return target
