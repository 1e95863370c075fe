"""Verdicts with controls.

Rule (docs/verdict.md). A judged model *passes* when

1. its forget-set membership evidence is not distinguishable from the
   retrained reference's: the paired, stratified bootstrap interval of
   ``AUC(model) - AUC(reference)`` (forget samples vs non-members, under the
   verdict attack) contains 0. An interval wholly above 0 means residual
   membership; wholly below 0 means over-forgetting, which an attacker can also
   detect (the "Streisand effect"). Both fail.
2. its test accuracy is no more than ``utility_tolerance`` below the reference's.

A method that crashed or diverged fails with its error as the reason.

The controls gate everything: the ``noop`` control (the unchanged original)
must fail on membership evidence and the ``retrain`` control (an independently
seeded retrain) must pass. If either does not, the audit cannot tell a model
that forgot nothing from one that was retrained, and every verdict of the run
becomes ``inconclusive``, with the reasons and what would give the audit power.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attacks.metrics import auc_difference_ci, roc_metrics

NEGATIVE_CONTROL = "noop"
POSITIVE_CONTROL = "retrain"


@dataclass
class Verdict:
    """One model's verdict."""

    status: str
    reasons: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": self.reasons, "evidence": self.evidence}


def judge(
    scores: np.ndarray | None,
    reference_scores: np.ndarray,
    is_forget: np.ndarray,
    *,
    test_acc: float | None,
    reference_test_acc: float,
    attack: str,
    level: float,
    n_boot: int,
    utility_tolerance: float,
    seed: int,
    error: str | None = None,
) -> Verdict:
    """Judge one model against the retrained reference.

    Args:
        scores: The model's attack scores on forget + non-member samples (None if it failed).
        reference_scores: The reference's scores on the same samples.
        is_forget: True for forget samples, False for non-members.
        test_acc: The model's test accuracy.
        reference_test_acc: The reference's test accuracy.
        attack: Name of the attack (for the reasons).
        level: Confidence level of the bootstrap interval.
        n_boot: Bootstrap replicates.
        utility_tolerance: Largest allowed drop of test accuracy below the reference.
        seed: Bootstrap seed.
        error: The method's error message, if it failed.
    """
    if error is not None or scores is None or test_acc is None:
        return Verdict("fail", [f"the method failed: {error}"], {"attack": attack})
    ci = auc_difference_ci(
        scores, reference_scores, is_forget, n_boot=n_boot, level=level, seed=seed
    )
    d, lo, hi = ci["diff"], ci["low"], ci["high"]
    gap = test_acc - reference_test_acc
    pct = f"{round(level * 100)}%"
    auc = roc_metrics(scores, is_forget)["auc"]
    ref_auc = roc_metrics(reference_scores, is_forget)["auc"]
    ev = {
        "attack": attack,
        "auc": auc,
        "reference_auc": ref_auc,
        "auc_diff": d,
        "ci": [lo, hi],
        "level": level,
        "test_acc_gap": gap,
    }
    what = (
        f"{attack} AUC on forget vs non-members {auc:.3f} vs reference "
        f"{ref_auc:.3f}, difference {d:+.3f} ({pct} CI {lo:+.3f}..{hi:+.3f})"
    )
    reasons: list[str] = []
    membership_ok = lo <= 0.0 <= hi
    if lo > 0:
        reasons.append(
            "residual membership: the forget set is more recognisable as training "
            f"data than under the retrained reference — {what}"
        )
    elif hi < 0:
        reasons.append(
            "over-forgetting: the forget set is less recognisable than under the "
            "retrained reference, which an attacker can also detect — " + what
        )
    else:
        reasons.append(
            f"membership evidence indistinguishable from the retrained reference — {what}"
        )
    utility_ok = gap >= -utility_tolerance
    if not utility_ok:
        reasons.append(
            f"utility: test accuracy {test_acc:.1%} is {-gap:.1%} below the "
            f"reference's {reference_test_acc:.1%} (tolerance {utility_tolerance:.1%})"
        )
    ev["membership_ok"] = membership_ok
    ev["utility_ok"] = utility_ok
    return Verdict("pass" if membership_ok and utility_ok else "fail", reasons, ev)


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
            "forget set for the attack to see. More shadow models, more augmented queries, a "
            "larger forget set, or an original trained to fit its members more closely would "
            "give the audit power"
        )
    if pos.status == "pass":
        reasons.append("retrain control passed, as it must")
    else:
        ok = False
        reasons.append(
            "retrain control did not pass: an independently retrained model was judged different "
            "from the reference, so the test is too noisy at this size (use more samples or a "
            "higher verdict.level)"
        )
    if not ok:
        for v in verdicts.values():
            v.evidence["raw_status"] = v.status
            v.status = "inconclusive"
            v.reasons.insert(0, "inconclusive because the controls did not separate")
    return {"separated": ok, "reasons": reasons}
