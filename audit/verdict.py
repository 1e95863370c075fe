"""Verdicts with controls.

Each model is judged by the rule of :mod:`unlearn_audit.audit.rule` (membership,
forget quality, utility; docs/verdict.md); this module holds the controls.

The controls gate everything: the ``noop`` control (the unchanged original)
must fail on membership evidence and the ``retrain`` control (an independently
seeded retrain) must pass. If either does not, the audit cannot tell a model
that forgot nothing from one that was retrained, and every verdict of the run
becomes ``inconclusive``, with the reasons and what would give the audit power.
"""

from __future__ import annotations

from typing import Any

from unlearn_audit.audit.rule import (
    ForgetEpsilons,
    Rule,
    Verdict,
    forget_quality_evidence,
    judge,
)

# the rule's names that callers import from here, with the controls below
__all__ = [
    "NEGATIVE_CONTROL",
    "PLANTED_CONTROL",
    "POSITIVE_CONTROL",
    "ForgetEpsilons",
    "Rule",
    "Verdict",
    "apply_controls",
    "forget_quality_evidence",
    "judge",
]

NEGATIVE_CONTROL = "noop"
POSITIVE_CONTROL = "retrain"
PLANTED_CONTROL = "planted"


def _forget_quality_power(neg: Verdict) -> str | None:
    """Whether the forget-quality rule could see the noop control (informational)."""
    fq = neg.evidence.get("forget_quality")
    if not fq:
        return None
    if fq["below_retrain"]:
        return (
            f"forget quality separates the controls (noop F {fq['value']:.3f} vs retrain "
            f"{fq['retrain_control']:.3f})"
        )
    return (
        f"note: forget quality F cannot tell the controls apart at this bank size (noop "
        f"{fq['value']:.3f} vs retrain {fq['retrain_control']:.3f}, difference CI "
        f"{fq['ci'][0]:+.3f}..{fq['ci'][1]:+.3f}); the F rule has no power here: more shadow "
        "models would give it power"
    )


def _planted_reason(planted: Verdict, reasons: list[str]) -> bool:
    """Record how the planted partial-forgetting control came out; False if it passed."""
    share = planted.evidence.get("planted_fraction")
    what = f"{share:.0%} of the request" if isinstance(share, float) else "part of the request"
    if planted.status == "fail" and not planted.evidence.get("membership_ok", True):
        reasons.append(f"planted control (retrained with {what} kept) was caught, as it must")
        return True
    if planted.status == "pass":
        reasons.append(
            f"planted control (retrained with {what} kept) PASSED: the residual estimate "
            "certified a model that still holds part of the request, so no pass of this "
            "audit can be trusted"
        )
        return False
    reasons.append(
        f"note: the planted control (retrained with {what} kept) was not caught "
        f"({planted.status}): this audit lacks power against partial forgetting of that size"
    )
    return True


def apply_controls(verdicts: dict[str, Verdict]) -> dict[str, Any]:
    """Check the controls; make every verdict inconclusive if they do not separate.

    Returns the ``controls`` block of results.json.
    """
    reasons: list[str] = []
    neg, pos = verdicts.get(NEGATIVE_CONTROL), verdicts.get(POSITIVE_CONTROL)
    ok = True
    if neg is None or pos is None:
        return {"separated": False, "reasons": ["the noop and retrain controls did not both run"]}
    if neg.status == "fail" and not neg.evidence.get("membership_ok", True):
        reasons.append("noop control failed on residual membership, as it must")
    else:
        ok = False
        reasons.append(
            "noop control was not caught: the original model leaks too little membership on the "
            "forget set for the attacks to see. More shadow models, more augmented queries, a "
            "larger forget set, or an original trained to fit its members more closely would "
            "give the audit power"
        )
    if pos.status == "pass":
        reasons.append("retrain control passed, as it must")
    else:
        ok = False
        reasons.append(
            f"retrain control did not pass ({pos.status}): an independently retrained model "
            "was not shown to be equivalent to the reference, so the audit cannot show "
            "forgetting at this size: " + "; ".join(pos.reasons)
        )
    planted = verdicts.get(PLANTED_CONTROL)
    if planted is not None:
        ok = _planted_reason(planted, reasons) and ok
    power = _forget_quality_power(neg)
    if power:
        reasons.append(power)
    if not ok:
        for v in verdicts.values():
            v.evidence["raw_status"] = v.status
            v.status = "inconclusive"
            v.reasons.insert(0, "inconclusive because the controls did not separate")
    return {"separated": ok, "reasons": reasons}
