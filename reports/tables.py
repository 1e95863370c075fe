"""Turns the comparison sections of ``results.json`` into display-ready rows (strings only).

Every function here tolerates missing or mistyped sections by returning empty output,
so the template can simply omit a section whose rows are empty.
"""

from __future__ import annotations

import math
from typing import Any

from unlearn_audit.reports.formatting import (
    MISSING,
    as_dict,
    as_float,
    fmt_fixed,
    fmt_general,
    fmt_interval,
    fmt_pct,
    fmt_pp,
    fmt_seconds,
)
from unlearn_audit.reports.verdict import REFERENCE

_UTILITY_ORDER = ("forget_acc", "retain_acc", "test_acc")
_WORDS = {"acc": "accuracy", "knn": "kNN", "probe": "probe"}
Z95 = 1.959963984540054


def utility_label(key: str) -> str:
    """Column heading of a utility key, e.g. ``knn_test_acc`` -> ``kNN test accuracy``."""
    words = [_WORDS.get(word, word) for word in str(key).split("_") if word]
    text = " ".join(words) or str(key)
    return text[0].upper() + text[1:] if not text.startswith("kNN") else text


def _utility(entry: dict[str, Any]) -> dict[str, Any]:
    """The utility mapping of a model entry (empty when null or missing)."""
    return as_dict(entry.get("utility"))


def utility_keys(models: dict[str, Any]) -> list[str]:
    """Utility metrics present in any model: forget/retain/test first, then file order."""
    seen: list[str] = []
    for entry in models.values():
        for key, value in _utility(as_dict(entry)).items():
            if key not in seen and as_float(value) is not None:
                seen.append(key)
    return [k for k in _UTILITY_ORDER if k in seen] + [k for k in seen if k not in _UTILITY_ORDER]


def utility_table(results: dict[str, Any]) -> dict[str, Any] | None:
    """Columns and rows of the utility table (value and gap to the reference per cell)."""
    models = as_dict(results.get("models"))
    keys = utility_keys(models)
    if not models:
        return None
    ref_entry = as_dict(models.get(REFERENCE))
    ref = {} if ref_entry.get("error") else _utility(ref_entry)
    rows = []
    for name, raw in models.items():
        entry = as_dict(raw)
        utility = _utility(entry)
        cells = []
        for key in keys:
            value, base = as_float(utility.get(key)), as_float(ref.get(key))
            gap = "" if name == REFERENCE or value is None or base is None else fmt_pp(value - base)
            cells.append({"value": fmt_pct(value), "gap": gap})
        error = entry.get("error")
        rows.append(
            {
                "model": name,
                "role": str(entry.get("role") or ""),
                "is_reference": name == REFERENCE,
                "error": str(error) if error else "",
                "cells": cells,
                "seconds": fmt_seconds(entry.get("seconds")),
            }
        )
    return {"columns": [utility_label(k) for k in keys], "span": len(keys), "rows": rows}


def wilson_interval(rate: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    ``(p + z^2/2n ± z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` (Wilson, JASA 1927).

    Args:
        rate: Observed proportion in ``[0, 1]``.
        n: Number of trials (> 0).
        z: Normal quantile (1.96 for 95%).

    Returns:
        ``(low, high)`` within ``[0, 1]``.
    """
    p = min(max(rate, 0.0), 1.0)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _fpr_keys(blocks: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """The ``tpr_at_fpr`` keys present in any block, as ``(key, fpr)`` sorted by FPR."""
    found: dict[float, str] = {}
    for block in blocks:
        for key in as_dict(block.get("tpr_at_fpr")):
            try:
                found.setdefault(float(key), str(key))
            except (TypeError, ValueError):
                continue
    return [(found[f], f) for f in sorted(found)]


def _lookup(mapping: dict[str, Any], fpr: float) -> Any:
    """The value of a mapping keyed by FPR strings (``"0.001"``) at ``fpr``."""
    for key, value in mapping.items():
        try:
            if math.isclose(float(key), fpr, rel_tol=1e-6):
                return value
        except (TypeError, ValueError):
            continue
    return None


def _tpr_cell(block: dict[str, Any], fpr: float, n: int | None) -> dict[str, str]:
    """TPR at one FPR with its interval (recorded ``tpr_ci``, else Wilson over ``n``)."""
    value = as_float(_lookup(as_dict(block.get("tpr_at_fpr")), fpr))
    if value is None:
        return {"value": MISSING, "ci": ""}
    recorded = _lookup(as_dict(block.get("tpr_ci")), fpr)
    if isinstance(recorded, list) and fmt_interval(recorded):
        low, high = float(recorded[0]), float(recorded[1])
    elif n:
        low, high = wilson_interval(value, n)
    else:
        return {"value": fmt_pct(value, 1), "ci": ""}
    return {"value": fmt_pct(value, 1), "ci": f"[{fmt_pct(low, 1)}, {fmt_pct(high, 1)}]"}


def _auc_cell(block: dict[str, Any]) -> dict[str, str]:
    """AUC with its recorded confidence interval (``auc_ci``)."""
    return {"value": fmt_fixed(block.get("auc")), "ci": fmt_interval(block.get("auc_ci"))}


def _count(data: dict[str, Any], key: str) -> int | None:
    """A positive integer count from the ``data`` block, else ``None``."""
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def attack_tables(results: dict[str, Any], first: str | None) -> list[dict[str, Any]]:
    """One table per attack (``first`` leading): per model, forget and retain vs non-members."""
    per_model = as_dict(results.get("attacks"))
    data = as_dict(results.get("data"))
    n_forget, n_retain = _count(data, "n_forget"), _count(data, "n_retain")
    names: list[str] = []
    for attacks in per_model.values():
        names += [a for a in as_dict(attacks) if a not in names]
    if first in names:
        names.remove(first)
        names.insert(0, first)
    tables = []
    for attack in names:
        entries = {m: as_dict(as_dict(a).get(attack)) for m, a in per_model.items()}
        entries = {m: e for m, e in entries.items() if e}
        blocks = [
            as_dict(e.get(side))
            for e in entries.values()
            for side in ("forget_vs_nonmember", "retain_vs_nonmember")
        ]
        fprs = _fpr_keys(blocks)
        rows = []
        for model, entry in entries.items():
            forget = as_dict(entry.get("forget_vs_nonmember"))
            retain = as_dict(entry.get("retain_vs_nonmember"))
            rows.append(
                {
                    "model": model,
                    "is_reference": model == REFERENCE,
                    "forget": [_auc_cell(forget)]
                    + [_tpr_cell(forget, f, n_forget) for _, f in fprs],
                    "retain": [_auc_cell(retain)]
                    + [_tpr_cell(retain, f, n_retain) for _, f in fprs],
                }
            )
        columns = ["AUC"] + [f"TPR at {fmt_general(f * 100)}% FPR" for _, f in fprs]
        tables.append(
            {
                "attack": attack,
                "verdict": attack == first,
                "columns": columns,
                "span": len(columns),
                "fprs": [f for _, f in fprs],
                "rows": rows,
            }
        )
    return tables


def low_fpr_note(results: dict[str, Any], tables: list[dict[str, Any]]) -> str:
    """How many non-members each low-FPR threshold may flag (its resolution), in words."""
    n_non = _count(as_dict(results.get("data")), "n_nonmembers")
    if not n_non or not tables:
        return ""
    parts = []
    for fpr in tables[0]["fprs"]:
        allowed = math.floor(fpr * n_non + 1e-9)
        parts.append(
            f"at {fmt_general(fpr * 100)}% FPR the threshold may flag at most {allowed} of the "
            f"{n_non:,} non-members"
        )
    return "; ".join(parts)


def forgetting_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per model: forget quality, median epsilon, U-LiRA AUC (or the bank's error)."""
    rows = []
    for model, raw in as_dict(results.get("forgetting")).items():
        entry = as_dict(raw)
        rows.append(
            {
                "model": model,
                "forget_quality": fmt_general(entry.get("forget_quality")),
                "epsilon_median": fmt_fixed(entry.get("epsilon_median"), 2),
                "ulira_auc": fmt_fixed(entry.get("ulira_auc"), 3),
                "ulira_ci": fmt_interval(entry.get("ulira_auc_ci"), 3),
                "error": str(entry.get("error") or ""),
            }
        )
    return rows


def retain_leakage_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model: retain-vs-non-member AUC before and after unlearning, and the change."""
    rows = []
    for model, raw in as_dict(results.get("retain_leakage")).items():
        entry = as_dict(raw)
        increased = entry.get("increased")
        rows.append(
            {
                "model": model,
                "before": fmt_fixed(entry.get("auc_before")),
                "after": fmt_fixed(entry.get("auc_after")),
                "diff": MISSING
                if as_float(entry.get("diff")) is None
                else f"{float(entry['diff']):+.3f}",
                "ci": fmt_interval(entry.get("ci")),
                "increased": "yes"
                if increased is True
                else "no"
                if increased is False
                else MISSING,
                "warn": increased is True,
            }
        )
    return rows
