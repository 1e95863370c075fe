"""Turns the ``results.json`` sections into display-ready rows (strings only).

Every function here tolerates missing or mistyped sections by returning empty output,
so the template can simply omit a section whose rows are empty.
"""

from __future__ import annotations

import math
from typing import Any

from reports.formatting import (
    MISSING,
    as_dict,
    as_float,
    fmt_fixed,
    fmt_general,
    fmt_interval,
    fmt_pct,
    fmt_pp,
    fmt_seconds,
    text_list,
)

REFERENCE = "reference"
BADGES = {"pass": "pass", "fail": "fail", "inconclusive": "inconclusive"}
_CONTROL_NAMES = {"original", "reference", "noop", "retrain"}


def badge_class(status: Any) -> str:
    """Maps a verdict status to a CSS class from a fixed whitelist (``unknown`` otherwise)."""
    return BADGES.get(str(status).strip().lower(), "unknown")


def methods_audited(models: dict[str, Any]) -> list[str]:
    """Names of the unlearning methods under audit.

    A model counts as a method when its role is ``unlearner``, or when it has no role and
    is not one of the conventional baseline/control names.

    Args:
        models: The ``results["models"]`` mapping.

    Returns:
        Method names in file order.
    """
    names = []
    for name, entry in models.items():
        role = as_dict(entry).get("role")
        if role == "unlearner" or (role is None and name not in _CONTROL_NAMES):
            names.append(name)
    return names


def verdict_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per judged model: name, role, status text, badge class, reasons."""
    models = as_dict(results.get("models"))
    rows = []
    for name, verdict in as_dict(results.get("verdicts")).items():
        entry = as_dict(verdict)
        status = entry.get("status")
        rows.append(
            {
                "model": name,
                "role": str(as_dict(models.get(name)).get("role") or ""),
                "status": str(status) if status is not None else "unknown",
                "badge": badge_class(status),
                "reasons": text_list(entry.get("reasons")),
            }
        )
    return rows


def controls_outcome(results: dict[str, Any]) -> dict[str, Any] | None:
    """The controls' outcome, or ``None`` when not recorded.

    Returns:
        ``{"separated": bool, "reasons": [...]}`` when ``results["controls"]["separated"]``
        is a boolean, else ``None``.
    """
    controls = as_dict(results.get("controls"))
    separated = controls.get("separated")
    if not isinstance(separated, bool):
        return None
    return {"separated": separated, "reasons": text_list(controls.get("reasons"))}


def overall_verdict(results: dict[str, Any]) -> tuple[str, str]:
    """One plain-words line summarising the audit, plus its CSS class.

    Returns:
        ``(line, css_class)`` where the class is one of the badge classes or ``unknown``.
    """
    controls = controls_outcome(results)
    if controls is not None and not controls["separated"]:
        return (
            "Inconclusive: the controls were not separated, so every verdict is inconclusive.",
            "inconclusive",
        )
    rows = verdict_rows(results)
    if not rows:
        return "No verdicts were recorded for this run.", "unknown"
    methods = methods_audited(as_dict(results.get("models")))
    judged = [row for row in rows if row["model"] in methods] or rows
    groups: dict[str, list[str]] = {}
    for row in judged:
        groups.setdefault(row["status"], []).append(row["model"])
    parts = [f"{status}: {', '.join(names)}" for status, names in groups.items()]
    unjudged = [name for name in methods if name not in {row["model"] for row in rows}]
    if unjudged:
        parts.append(f"no verdict: {', '.join(unjudged)}")
    noun = "method" if len(judged) == 1 else "methods"
    line = f"{len(judged)} {noun} judged \u2014 " + "; ".join(parts) + "."
    statuses = {row["badge"] for row in judged}
    for css in ("fail", "inconclusive", "unknown", "pass"):
        if css in statuses:
            return line, css
    return line, "unknown"


def _utility(entry: dict[str, Any]) -> dict[str, Any]:
    """The utility mapping of a model entry (empty when null or missing)."""
    return as_dict(entry.get("utility"))


def _gap(value: Any, reference: Any) -> str:
    """Signed difference ``value - reference`` in percentage points, or a dash."""
    a, b = as_float(value), as_float(reference)
    return MISSING if a is None or b is None else fmt_pp(a - b)


def utility_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model: accuracies, gaps to ``reference``, seconds, or the error text."""
    models = as_dict(results.get("models"))
    ref_entry = as_dict(models.get(REFERENCE))
    ref = {} if ref_entry.get("error") else _utility(ref_entry)
    rows = []
    for name, raw in models.items():
        entry = as_dict(raw)
        utility = _utility(entry)
        error = entry.get("error")
        is_ref = name == REFERENCE
        rows.append(
            {
                "model": name,
                "role": str(entry.get("role") or ""),
                "error": str(error) if error else None,
                "forget_acc": fmt_pct(utility.get("forget_acc")),
                "retain_acc": fmt_pct(utility.get("retain_acc")),
                "test_acc": fmt_pct(utility.get("test_acc")),
                "test_gap": MISSING
                if is_ref
                else _gap(utility.get("test_acc"), ref.get("test_acc")),
                "forget_gap": MISSING
                if is_ref
                else _gap(utility.get("forget_acc"), ref.get("forget_acc")),
                "seconds": fmt_seconds(entry.get("seconds")),
            }
        )
    return rows


def _tpr(block: dict[str, Any], fpr: float) -> str:
    """TPR at the given FPR from a ``tpr_at_fpr`` mapping with string keys like ``"0.001"``."""
    for key, value in as_dict(block.get("tpr_at_fpr")).items():
        try:
            if math.isclose(float(key), fpr, rel_tol=1e-6):
                return fmt_pct(value, 2)
        except (TypeError, ValueError):
            continue
    return MISSING


def _auc(block: dict[str, Any]) -> str:
    """AUC with its confidence interval appended when ``auc_ci`` is present."""
    auc = fmt_fixed(block.get("auc"))
    interval = fmt_interval(block.get("auc_ci"))
    return f"{auc} {interval}" if interval and auc != MISSING else auc


def attack_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per (model, attack) with forget/retain-vs-nonmember metrics."""
    rows = []
    for model, per_attack in as_dict(results.get("attacks")).items():
        for attack, raw in as_dict(per_attack).items():
            entry = as_dict(raw)
            forget = as_dict(entry.get("forget_vs_nonmember"))
            retain = as_dict(entry.get("retain_vs_nonmember"))
            rows.append(
                {
                    "model": model,
                    "attack": attack,
                    "forget_auc": _auc(forget),
                    "tpr_01pct": _tpr(forget, 0.001),
                    "tpr_1pct": _tpr(forget, 0.01),
                    "retain_auc": _auc(retain),
                }
            )
    return rows


def forgetting_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per model with ``forget_quality`` and ``epsilon_median``."""
    rows = []
    for model, raw in as_dict(results.get("forgetting")).items():
        entry = as_dict(raw)
        rows.append(
            {
                "model": model,
                "forget_quality": fmt_general(entry.get("forget_quality")),
                "epsilon_median": fmt_fixed(entry.get("epsilon_median"), 2),
            }
        )
    return rows
