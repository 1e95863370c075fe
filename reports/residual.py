"""The residual membership estimate and the audit's power, in words (schema_version 2).

The residual ``r`` of a judged model is recorded in ``verdicts.<model>.evidence.residual``
(``{"attack", "value", "ci": [lo, hi], "level", "max_residual", "below_margin"}``): the
share of the original model's membership evidence on the forget set that remains, on a
scale where the retrained reference is 0 and the unchanged original is 1, under the
verdict attack whose interval reaches highest. Either end of the interval may be
``null`` (unbounded). ``results.power`` holds the minimum detectable residual and a ready
sentence for compliance readers. Runs of schema_version 1 have neither; every function
here then returns empty output.
"""

from __future__ import annotations

from typing import Any

from unlearn_audit.reports.formatting import as_dict, as_float, fmt_level, fmt_share, fmt_value

REMAINS = "of the deleted records' membership evidence"


def residual_of(verdict: Any) -> dict[str, Any]:
    """The ``evidence.residual`` block of a verdict (empty when absent)."""
    return as_dict(as_dict(as_dict(verdict).get("evidence")).get("residual"))


def has_residual(results: dict[str, Any]) -> bool:
    """Whether any verdict records a residual estimate (schema_version 2)."""
    return any(residual_of(v) for v in as_dict(results.get("verdicts")).values())


def _ends(ci: Any) -> tuple[float | None, float | None]:
    """The two ends of a recorded interval; ``None`` for an unbounded (or missing) end."""
    if isinstance(ci, list | tuple) and len(ci) == 2:
        return as_float(ci[0]), as_float(ci[1])
    return None, None


def interval_text(ci: Any, level: Any = None) -> str:
    """``98.33% CI -104% to 81%``; unbounded ends are said in words."""
    lo, hi = _ends(ci)
    label = f"{fmt_level(level)} CI" if fmt_level(level) else "CI"
    if lo is not None and hi is not None:
        return f"{label} {fmt_share(lo)} to {fmt_share(hi)}"
    if lo is not None:
        return f"{label} from {fmt_share(lo)}, no upper bound"
    if hi is not None:
        return f"{label} up to {fmt_share(hi)}, no lower bound"
    return f"{label} unbounded"


def residual_sentence(residual: dict[str, Any]) -> str:
    """The residual estimate in plain words, led by what it shows.

    Below the margin: ``at most 12% of the deleted records' membership evidence remains
    (95% CI -8% to 12%, lira_online; estimate 5%)``. Interval above zero: ``an estimated
    96% ... remains``. Otherwise ``up to 81% ... may remain``, or that it cannot be bounded,
    with the margin a pass needs.

    Args:
        residual: An ``evidence.residual`` block.

    Returns:
        The sentence (no trailing full stop); empty when the block is empty.
    """
    if not residual:
        return ""
    value = as_float(residual.get("value"))
    lo, hi = _ends(residual.get("ci"))
    margin = as_float(residual.get("max_residual"))
    details = [interval_text(residual.get("ci"), residual.get("level"))]
    if residual.get("attack"):
        details[0] += f", {fmt_value(residual['attack'])}"
    below = hi is not None and (margin is None or hi < margin)
    if below and residual.get("below_margin") is not False:
        lead = f"at most {fmt_share(hi)} {REMAINS} remains"
        details.append(f"estimate {fmt_share(value)}")
    elif lo is not None and lo > 0:
        lead = (
            f"an estimated {fmt_share(value)} {REMAINS} remains"
            if value is not None
            else f"at least {fmt_share(lo)} {REMAINS} remains"
        )
    else:
        lead = (
            f"up to {fmt_share(hi)} {REMAINS} may remain"
            if hi is not None
            else f"the audit cannot bound how much {REMAINS} remains"
        )
        if value is not None:
            details.append(f"estimate {fmt_share(value)}")
        if margin is not None:
            details.append(f"a pass needs the upper end below {fmt_share(margin)}")
    return f"{lead} ({'; '.join(details)})"


def residual_short(residual: dict[str, Any]) -> str:
    """``residual 96% (98.33% CI 67% to 149%, lira_online)`` for the evidence lines."""
    if not residual:
        return ""
    text = f"residual {fmt_share(residual.get('value'))}"
    inner = interval_text(residual.get("ci"), residual.get("level"))
    if residual.get("attack"):
        inner += f", {fmt_value(residual['attack'])}"
    return f"{text} ({inner})"


def margin_of(results: dict[str, Any]) -> float | None:
    """The pass margin on the residual (``max_residual`` of a verdict, else the config's)."""
    for verdict in as_dict(results.get("verdicts")).values():
        margin = as_float(residual_of(verdict).get("max_residual"))
        if margin is not None:
            return margin
    return as_float(as_dict(as_dict(results.get("config")).get("verdict")).get("max_residual"))


def weighting_line(results: dict[str, Any]) -> str:
    """``results.power.weighting`` in words (empty when absent): how the residual weighs records."""
    w = as_dict(as_dict(results.get("power")).get("weighting"))
    n_eff, n = as_float(w.get("effective_forget_records")), as_float(w.get("n_forget"))
    if w.get("scheme") == "uniform":
        return "every forget record weighs the same in the residual"
    if w.get("scheme") != "separation" or n_eff is None or n is None:
        return ""
    return (
        "each record weighs by how visible its membership is in the shadow models; the "
        f"{n:.0f} forget records count as {n_eff:.0f} equally weighted ones (docs/verdict.md)"
    )


def power_statement(results: dict[str, Any]) -> str:
    """``results.power.statement``: what the audit can and cannot see (empty when absent).

    A power block without the sentence (early schema_version 2 runs) gets the same
    sentence built from its ``mdr`` and ``power``.
    """
    power = as_dict(results.get("power"))
    statement = power.get("statement")
    if isinstance(statement, str) and statement.strip():
        return statement.strip()
    if "mdr" not in power:
        return ""
    mdr, target = as_float(power.get("mdr")), as_float(power.get("power"))
    if mdr is None:
        return (
            "This audit could not reliably catch even a model that forgot nothing of the "
            "deleted records: it has no power to show forgetting."
        )
    return (
        f"This audit would catch a model that still remembers at least {fmt_share(mdr)} of "
        f"the deleted records (in {fmt_share(target if target is not None else 0.8)} of "
        "audits); it could not reliably see less."
    )


def planted_fraction(results: dict[str, Any]) -> float | None:
    """The share of the request the planted control kept (power, evidence, else config)."""
    for value in (
        as_dict(as_dict(results.get("power")).get("planted")).get("fraction"),
        as_dict(as_dict(as_dict(results.get("verdicts")).get("planted")).get("evidence")).get(
            "planted_fraction"
        ),
        as_dict(as_dict(results.get("config")).get("verdict")).get("planted_fraction"),
    ):
        number = as_float(value)
        if number is not None:
            return number
    return None


def _curve(power: dict[str, Any]) -> list[tuple[str, str]]:
    """``(share, detection probability)`` pairs of the power curve, by share."""
    points = []
    for key, rate in as_dict(power.get("curve")).items():
        try:
            share = float(key)
        except (TypeError, ValueError):
            continue
        if as_float(rate) is not None:
            points.append((share, float(rate)))
    tenths = [(share, rate) for share, rate in sorted(points) if round(share * 100) % 10 == 0]
    return [(fmt_share(share), fmt_share(rate)) for share, rate in tenths or sorted(points)]


def power_section(results: dict[str, Any]) -> dict[str, Any] | None:
    """The power subsection: the statement, the MDR against the margin, the curve."""
    power = as_dict(results.get("power"))
    statement = power_statement(results)
    if not power or not statement:
        return None
    mdr, margin = as_float(power.get("mdr")), margin_of(results)
    target = as_float(power.get("power"))
    notes = []
    if mdr is not None:
        notes.append(
            f"Minimum detectable residual: {fmt_share(mdr)}, the smallest share still "
            f"remembered that the verdict rule catches with probability at least "
            f"{fmt_share(target) if target is not None else '80%'}, computed from this "
            "audit's own signals (docs/verdict.md)."
        )
    if mdr is not None and margin is not None and mdr > margin:
        notes.append(
            f"It is above the pass margin of {fmt_share(margin)}: a model still holding "
            f"between {fmt_share(margin)} and {fmt_share(mdr)} of the request would usually "
            "come out inconclusive, neither caught nor passed."
        )
    return {"statement": statement, "notes": notes, "curve": _curve(power)}
