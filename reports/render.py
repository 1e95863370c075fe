"""Render a run directory into one self-contained ``report.html``.

Usage::

    from reports import render
    path = render("runs/demo")   # writes runs/demo/report.html

Only the on-disk contract is read (``results.json``, ``samples.csv``); see
:mod:`reports.loading`. The output embeds its CSS and SVG plots, loads nothing from the
network and contains no script.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jinja2

from reports import tables
from reports.formatting import (
    MISSING,
    as_dict,
    fmt_pretty_json,
    fmt_seconds,
    fmt_value,
)
from reports.loading import SAMPLES_FILE, ReportError, Samples, load_results, load_samples
from reports.plots import Curve, roc_svg
from reports.roc import roc_auc, roc_curve

REPORT_FILE = "report.html"
TMP_FILE = ".report.html.tmp"
DEFAULT_ROC_ATTACK = "lira_online"
TEMPLATE = "report.html.j2"
_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_RUN_KEYS = ("name", "command", "device", "seed", "created")


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


def _summary(results: dict[str, Any]) -> list[tuple[str, str]]:
    """Label/value rows for the summary block at the top of the report."""
    run = as_dict(results.get("run"))
    data = as_dict(results.get("data"))
    config_data = as_dict(as_dict(results.get("config")).get("data"))
    dataset = data.get("dataset") or config_data.get("dataset")
    forget = fmt_value(data.get("forget_spec"))
    if data.get("n_forget") is not None:
        forget = f"{forget} ({fmt_value(data.get('n_forget'))} samples)"
    sizes = [
        f"{label} {fmt_value(data[key])}"
        for key, label in (
            ("n_members", "members"),
            ("n_retain", "retain"),
            ("n_nonmembers", "non-members"),
        )
        if data.get(key) is not None
    ]
    rows = [
        ("Run", fmt_value(run.get("name"))),
        ("Created", fmt_value(run.get("created"))),
        ("Dataset", fmt_value(dataset)),
        ("Forget request", forget),
    ]
    if sizes:
        rows.append(("Split sizes", ", ".join(sizes)))
    classes = data.get("classes")
    if isinstance(classes, list) and classes:
        shown = ", ".join(fmt_value(c) for c in classes[:20])
        more = f", \u2026 ({len(classes)} in all)" if len(classes) > 20 else ""
        rows.append(("Classes", shown + more))
    methods = tables.methods_audited(as_dict(results.get("models")))
    rows.append(("Methods audited", ", ".join(methods) if methods else MISSING))
    return rows


def _roc(results: dict[str, Any], samples: Samples | None) -> tuple[dict[str, Any] | None, str]:
    """Builds the ROC section (or ``None``) and a note explaining an omission."""
    attack = as_dict(results.get("report")).get("roc_attack")
    if not isinstance(attack, str) or not attack:
        attack = DEFAULT_ROC_ATTACK
    if samples is None:
        return None, ""
    columns = samples.columns_for(attack)
    order = [m for m in as_dict(results.get("models")) if m in columns]
    order += [m for m in columns if m not in order]
    curves = []
    for model in order:
        positive = samples.split_scores(columns[model], "forget")
        negative = samples.split_scores(columns[model], "nonmember")
        if positive.size == 0 or negative.size == 0:
            continue
        fpr, tpr = roc_curve(positive, negative)
        curves.append(Curve(f"{model} (AUC {roc_auc(fpr, tpr):.3f})", fpr, tpr))
    if not curves:
        return None, (
            f"{SAMPLES_FILE} has no usable '{attack}.<model>' score columns with both forget "
            "and non-member rows; the ROC plot is omitted."
        )
    title = f"{attack}: forget set (positive) vs non-members (negative)"
    return {"attack": attack, "svg": roc_svg(curves, title)}, ""


def _provenance(results: dict[str, Any], run_dir: Path, notes: list[str]) -> dict[str, Any] | None:
    """Config, tool, run fields, timings and the samples link; ``None`` if all are absent."""
    tool = as_dict(results.get("tool"))
    run = as_dict(results.get("run"))
    config = results.get("config")
    run_rows = [(key, fmt_value(run[key])) for key in _RUN_KEYS if key in run]
    run_rows += [(str(key), fmt_value(v)) for key, v in run.items() if key not in _RUN_KEYS]
    timing_rows = [(str(k), fmt_seconds(v)) for k, v in as_dict(results.get("timings")).items()]
    tool_text = " ".join(str(tool[k]) for k in ("name", "version") if tool.get(k))
    section = {
        "tool": tool_text,
        "run": run_rows,
        "timings": timing_rows,
        "config": fmt_pretty_json(config) if config else "",
        "samples_href": SAMPLES_FILE if (run_dir / SAMPLES_FILE).is_file() else "",
        "notes": notes,
    }
    present = [section[k] for k in ("tool", "run", "timings", "config", "samples_href", "notes")]
    return section if any(present) else None


def build_context(results: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Everything the template needs, already formatted as strings.

    Args:
        results: Parsed ``results.json``.
        run_dir: The run directory (for ``samples.csv``).

    Returns:
        The template context.
    """
    samples, samples_note = load_samples(run_dir)
    roc, roc_note = _roc(results, samples)
    notes = [n for n in (samples_note, roc_note) if n]
    tool = as_dict(results.get("tool"))
    verdict_line, verdict_class = tables.overall_verdict(results)
    run_name = fmt_value(as_dict(results.get("run")).get("name") or run_dir.name)
    tool_name = str(tool.get("name") or "unlearn-audit")
    return {
        "title": f"{tool_name} report \u2014 {run_name}",
        "tool_name": tool_name,
        "tool_version": fmt_value(tool.get("version")),
        "summary": _summary(results),
        "verdict_line": verdict_line,
        "verdict_class": verdict_class,
        "verdicts": tables.verdict_rows(results),
        "controls": tables.controls_outcome(results),
        "utility": tables.utility_rows(results),
        "attacks": tables.attack_rows(results),
        "forgetting": tables.forgetting_rows(results),
        "roc": roc,
        "provenance": _provenance(results, run_dir, notes),
    }


def render(run_dir: str | Path) -> Path:
    """Renders ``RUN/report.html`` from ``RUN/results.json`` and ``RUN/samples.csv``.

    The file is written atomically: first to ``RUN/.report.html.tmp``, then moved into
    place with :func:`os.replace`.

    Args:
        run_dir: The run directory.

    Returns:
        Path of the written report.

    Raises:
        ReportError: If ``results.json`` is missing or invalid.
    """
    root = Path(run_dir)
    results = load_results(root)
    html = _environment().get_template(TEMPLATE).render(**build_context(results, root))
    target = root / REPORT_FILE
    tmp = root / TMP_FILE
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportError(f"{target}: cannot write report: {exc}") from exc
    return target
