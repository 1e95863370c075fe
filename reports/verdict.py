"""The verdict section: per-method verdicts, the controls, and what would give the audit power.

Everything is turned into display text here (the template does no arithmetic). The
control names ``noop`` (negative control: must fail), ``retrain`` (positive control:
an independently seeded retrain, must pass) and, from schema_version 2, ``planted`` (a
retrain that kept a known share of the request: must not pass) are part of the run
directory contract.
"""

from __future__ import annotations

from typing import Any

from unlearn_audit.reports.formatting import (
    as_dict,
    as_float,
    fmt_fixed,
    fmt_general,
    fmt_level,
    fmt_pp,
    fmt_share,
    fmt_value,
    text_list,
)
from unlearn_audit.reports.residual import (
    has_residual,
    margin_of,
    planted_fraction,
    power_section,
    residual_of,
    residual_short,
)

BADGES = {"pass": "pass", "fail": "fail", "inconclusive": "inconclusive"}
REFERENCE = "reference"
PLANTED = "planted"
CONTROLS = {"noop": "fail", "retrain": "pass", PLANTED: "not pass"}
CONTROL_ROLES = {
    "noop": "negative control: the original model, unchanged; it must fail",
    "retrain": "positive control: an independently seeded retrain; it must pass",
    PLANTED: "planted control: retrained with part of the request kept; it must not pass",
}
# The controls in a few words, for the first screen.
SHORT_ROLES = {
    "noop": "the original, unchanged",
    "retrain": "an independent retrain",
    PLANTED: "retrained with part of the request kept",
}
_NOT_METHODS = {"original", REFERENCE, *CONTROLS}


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
        if role == "unlearner" or (role is None and name not in _NOT_METHODS):
            names.append(name)
    return names


def _raw_status(verdict: dict[str, Any]) -> str:
    """The status before the controls' gate (``evidence.raw_status``), else the status."""
    raw = as_dict(verdict.get("evidence")).get("raw_status", verdict.get("status"))
    return str(raw) if raw is not None else "unknown"


def _evidence(verdict: dict[str, Any]) -> list[str]:
    """Key numbers of a verdict's evidence as short phrases (empty when absent)."""
    ev = as_dict(verdict.get("evidence"))
    out = []
    residual = residual_short(residual_of(verdict))
    if residual:
        out.append(residual)
    auc, ref = as_float(ev.get("auc")), as_float(ev.get("reference_auc"))
    if auc is not None:
        versus = f" vs {fmt_fixed(ref)} for the reference" if ref is not None else ""
        out.append(f"{fmt_value(ev.get('attack') or 'attack')} AUC {fmt_fixed(auc)}{versus}")
    diff = as_float(ev.get("auc_diff"))
    if diff is not None:
        level = fmt_level(ev.get("attack_level", ev.get("level")))
        pct = f"{level} " if level else ""
        out.append(f"AUC difference {diff:+.3f}{_ci_text(ev.get('ci'), pct)}")
    out.extend(_other_attacks(ev))
    records = records_text(ev)
    if records:
        out.append(records)
    fq = as_dict(ev.get("forget_quality"))
    value, ref = as_float(fq.get("value")), as_float(fq.get("retrain_control"))
    if value is not None and ref is not None:
        out.append(f"forget quality F {value:.3f} vs {ref:.3f} for the retrain control")
    gap = as_float(ev.get("test_acc_gap"))
    if gap is not None:
        out.append(f"test accuracy {fmt_pp(gap)} vs the reference")
    return out


def _other_attacks(ev: dict[str, Any]) -> list[str]:
    """AUC differences of the verdict attacks other than the headline one."""
    out = []
    for name, entry in as_dict(ev.get("per_attack")).items():
        e = as_dict(entry)
        diff, ci = as_float(e.get("auc_diff")), e.get("ci")
        if name == ev.get("attack") or diff is None:
            continue
        residual = as_float(e.get("residual"))
        tail = f", residual {fmt_share(residual)}" if residual is not None else ""
        out.append(f"{fmt_value(name)} {diff:+.3f}{_ci_text(ci)}{tail}")
    return out


def records_text(evidence: dict[str, Any]) -> str:
    """``7 of 90 forget records still recognisable (lira_offline, FDR 10%)``, else ``""``."""
    records = as_dict(evidence.get("records"))
    found, total = records.get("n_recognisable"), records.get("n_forget")
    if not isinstance(found, int) or not isinstance(total, int):
        return ""
    how = [fmt_value(records["attack"])] if records.get("attack") else []
    if as_float(records.get("fdr")) is not None:
        how.append(f"FDR {fmt_general(float(records['fdr']) * 100)}%")
    detail = f" ({', '.join(how)})" if how else ""
    return f"{found} of {total} forget records still recognisable{detail}"


def _ci_text(ci: Any, label: str = "") -> str:
    """`` (LABELCI lo to hi)`` for a recorded two-number interval, else ``""``."""
    if isinstance(ci, list) and len(ci) == 2 and None not in map(as_float, ci):
        return f" ({label}CI {float(ci[0]):+.3f} to {float(ci[1]):+.3f})"
    return ""


def verdict_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per judged unlearning method (controls are in :func:`control_rows`)."""
    verdicts = as_dict(results.get("verdicts"))
    methods = methods_audited(as_dict(results.get("models")))
    names = [m for m in methods if m in verdicts]
    names += [m for m in verdicts if m not in names and m not in CONTROLS]
    rows = []
    for name in names:
        entry = as_dict(verdicts[name])
        status = str(entry.get("status") or "unknown")
        raw = _raw_status(entry)
        rows.append(
            {
                "model": name,
                "status": status,
                "badge": badge_class(status),
                "reasons": text_list(entry.get("reasons")),
                "evidence": " \u00b7 ".join(_evidence(entry)),
                "ungated": raw if raw != status else "",
            }
        )
    return rows


def _planted_kept(results: dict[str, Any]) -> str:
    """``50% of the request`` (the planted control's share), else ``part of the request``."""
    fraction = planted_fraction(results)
    if fraction is None:
        return "part of the request"
    return f"{fmt_general(fraction * 100)}% of the request"


def control_role(results: dict[str, Any], name: str, short: bool = False) -> str:
    """What a control is (``short``: in a few words), with the planted share filled in."""
    role = (SHORT_ROLES if short else CONTROL_ROLES)[name]
    return role.replace("part of the request", _planted_kept(results))


def _as_expected(name: str, measured: str) -> tuple[str, str]:
    """Whether a control came out as it must: ``(text, css class)``.

    The planted control must not pass: a fail is as it must be, a pass breaks the
    audit, and an inconclusive one is allowed but shows the audit lacks power.
    """
    expected = CONTROLS[name]
    if name == PLANTED:
        if measured == "fail":
            return "yes", "ok"
        if measured == "inconclusive":
            return "yes, but not caught: no power against this partial forgetting", "warn"
        return "no", "bad"
    return ("yes", "ok") if measured == expected else ("no", "bad")


def control_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per control that has a verdict: expected and measured outcome."""
    verdicts = as_dict(results.get("verdicts"))
    rows = []
    for name, expected in CONTROLS.items():
        if name not in verdicts:
            continue
        entry = as_dict(verdicts[name])
        measured = _raw_status(entry)
        text, css = _as_expected(name, measured)
        rows.append(
            {
                "model": name,
                "role": control_role(results, name),
                "short_role": control_role(results, name, short=True),
                "expected": expected,
                "measured": measured,
                "badge": badge_class(measured),
                "as_expected": text,
                "css": css,
                "residual": residual_short(residual_of(entry)),
                "evidence": " \u00b7 ".join(_evidence(entry)),
            }
        )
    return rows


def controls_outcome(results: dict[str, Any]) -> dict[str, Any] | None:
    """``{"separated": bool, "reasons": [...]}``, or ``None`` when not recorded."""
    controls = as_dict(results.get("controls"))
    separated = controls.get("separated")
    if not isinstance(separated, bool):
        return None
    return {"separated": separated, "reasons": text_list(controls.get("reasons"))}


def _config_value(results: dict[str, Any], section: str, key: str) -> str | None:
    """``config.<section>.<key>`` as display text; ``None`` when absent, zero or empty.

    Zero means "automatic" for some keys (``attack.queries``), so it is not quoted back.
    """
    value = as_dict(as_dict(results.get("config")).get(section)).get(key)
    return None if value in (None, 0, "", False) else fmt_value(value)


def _noop_caught(results: dict[str, Any]) -> bool:
    """Whether the negative control failed on membership evidence, as it must."""
    noop = as_dict(as_dict(results.get("verdicts")).get("noop"))
    membership_ok = as_dict(noop.get("evidence")).get("membership_ok")
    return _raw_status(noop) == "fail" and membership_ok is not True


def _noop_advice(results: dict[str, Any]) -> list[str]:
    """How to give the attack power when the negative control was not caught."""
    used = "this run used"
    shadows = _config_value(results, "attack", "shadows")
    queries = _config_value(results, "attack", "queries")
    epochs = _config_value(results, "train", "epochs")
    n_forget = as_dict(results.get("data")).get("n_forget")
    return [
        "Train more shadow models (attack.shadows"
        + (f"; {used} {shadows}" if shadows else "")
        + "): LiRA estimates per-sample distributions from them, and 64 or more give it "
        "its full strength.",
        "Query more augmented views of each sample (attack.queries"
        + (f"; {used} {queries}" if queries else "")
        + ").",
        "Audit a larger forget request"
        + (f" ({used} {fmt_value(n_forget)} samples)" if n_forget is not None else "")
        + ": the interval of the AUC difference shrinks roughly as one over the square "
        "root of its size.",
        "Audit an original model that fits its training data more closely (more training "
        "epochs" + (f", {used} {epochs}" if epochs else "") + ", or a larger architecture): "
        "if it leaks no membership, no unlearning method can be told apart from retraining.",
    ]


def power_advice(results: dict[str, Any]) -> list[str]:
    """What would make an inconclusive audit conclusive, with this run's numbers.

    Returns:
        Plain sentences; empty when no verdict is inconclusive and the controls separated.
    """
    controls = controls_outcome(results)
    verdicts = as_dict(results.get("verdicts"))
    statuses = {badge_class(as_dict(v).get("status")) for v in verdicts.values()}
    if "inconclusive" not in statuses and (controls is None or controls["separated"]):
        return []
    advice = [] if _noop_caught(results) else _noop_advice(results)
    retrain = as_dict(verdicts.get("retrain"))
    if retrain and _raw_status(retrain) == "inconclusive" and has_residual(results):
        margin = margin_of(results)
        advice.append(
            "The positive control (an independent retrain) was not shown to have forgotten: "
            "even a model that never saw the request gets a residual interval reaching above "
            "the pass margin"
            + (f" of {fmt_share(margin)}" if margin is not None else "")
            + ", so no method can pass at this size. Audit a larger forget request, or train "
            "more shadow models, until the retrain control's interval fits below the margin."
        )
    elif retrain and _raw_status(retrain) != "pass":
        level = _config_value(results, "verdict", "level")
        advice.append(
            "The positive control (an independent retrain) was judged different from the "
            "reference, so the test is noisier than its interval claims: use more samples, "
            "more bootstrap replicates (verdict.n_boot), or a wider interval (verdict.level"
            + (f"; this run used {level}" if level else "")
            + ")."
        )
    if not advice and has_residual(results):
        margin = margin_of(results)
        advice.append(
            "More forget samples, non-members or shadow models narrow the interval of the "
            "residual until its upper end falls below the pass margin (verdict.max_residual"
            + (f"; this run used {fmt_share(margin)}" if margin is not None else "")
            + ") or its lower end rises above zero."
        )
    if not advice:
        advice.append(
            "More forget samples, non-members or shadow models narrow the interval of the "
            "AUC difference until it either excludes zero or rules out a meaningful gap."
        )
    return advice


def overall_verdict(results: dict[str, Any]) -> tuple[str, str]:
    """One plain-words line summarising the audit, plus its CSS class."""
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
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(row["status"], []).append(row["model"])
    parts = [f"{status}: {', '.join(names)}" for status, names in groups.items()]
    unjudged = [name for name in methods if name not in {row["model"] for row in rows}]
    if unjudged:
        parts.append(f"no verdict: {', '.join(unjudged)}")
    noun = "method" if len(rows) == 1 else "methods"
    line = f"{len(rows)} {noun} judged \u2014 " + "; ".join(parts) + "."
    statuses = {row["badge"] for row in rows}
    for css in ("fail", "inconclusive", "unknown", "pass"):
        if css in statuses:
            return line, css
    return line, "unknown"


def verdict_section(results: dict[str, Any]) -> dict[str, Any] | None:
    """Everything the verdict section shows, or ``None`` when nothing was judged."""
    rows, controls = verdict_rows(results), control_rows(results)
    outcome = controls_outcome(results)
    if not rows and not controls and outcome is None:
        return None
    return {
        "rows": rows,
        "controls": controls,
        "outcome": outcome,
        "advice": power_advice(results),
        "power": power_section(results),
    }
