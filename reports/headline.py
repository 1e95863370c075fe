"""The report's first screen (schema_version 2): verdicts with their residuals, power, controls.

A reader who stops after one screen learns, per judged method, whether forgetting was
shown and how much of the deleted records' membership evidence may remain; what the
audit could have seen at all (``power.statement``); and whether the controls came out as
they must. Runs without residual or power data (schema_version 1) get no first screen:
their report starts with the summary, as before.
"""

from __future__ import annotations

from typing import Any

from unlearn_audit.reports.formatting import as_dict, fmt_share, text_list
from unlearn_audit.reports.residual import has_residual, margin_of, power_statement, residual_of
from unlearn_audit.reports.residual import residual_sentence as _sentence
from unlearn_audit.reports.verdict import control_rows, controls_outcome, verdict_rows


def _capitalised(text: str) -> str:
    """The text with its first letter in upper case."""
    return text[:1].upper() + text[1:]


def _method_row(row: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """One judged method: its status and its residual in words."""
    sentence = _sentence(residual_of(verdict))
    if sentence:
        text = _capitalised(sentence) + "."
    else:
        reasons = text_list(verdict.get("reasons"))
        text = "No residual estimate was recorded" + (f": {reasons[0]}" if reasons else "")
        text += "" if text.endswith((".", "!", "?")) else "."
    return {
        "model": row["model"],
        "status": row["status"],
        "badge": row["badge"],
        "ungated": row["ungated"],
        "residual": text,
    }


def scale_note(results: dict[str, Any]) -> str:
    """What the residual scale means and what a pass needs."""
    margin = margin_of(results)
    needs = (
        f" A method passes only when the interval's upper end is below {fmt_share(margin)}."
        if margin is not None
        else ""
    )
    return (
        "Residual: the share of the original model's membership evidence on the forget set "
        "that remains, on a scale where the retrained reference is 0% and the unchanged "
        "original 100%, under the verdict attack whose interval reaches highest." + needs
    )


def headline_section(results: dict[str, Any]) -> dict[str, Any] | None:
    """Everything the first screen shows, or ``None`` for a run without residual or power."""
    statement = power_statement(results)
    if not has_residual(results) and not statement:
        return None
    verdicts = as_dict(results.get("verdicts"))
    rows = [_method_row(row, as_dict(verdicts.get(row["model"]))) for row in verdict_rows(results)]
    outcome = controls_outcome(results)
    separated = ""
    if outcome is not None:
        separated = (
            "The controls separated: the audit tells a model that forgot nothing from a "
            "retrained one."
            if outcome["separated"]
            else "The controls did not separate, so every verdict is inconclusive."
        )
    return {
        "rows": rows,
        "statement": statement,
        "controls": control_rows(results),
        "separated": separated,
        "separated_ok": bool(outcome and outcome["separated"]),
        "scale": scale_note(results) if has_residual(results) else "",
    }
