"""Verdicts with controls.

Rule (docs/verdict.md). A judged model *passes* when

1. its forget-set membership evidence is not distinguishable from the
   retrained reference's under **every** verdict attack: for each attack the
   paired, stratified bootstrap interval of ``AUC(model) - AUC(reference)``
   (forget samples vs non-members) contains 0. An interval wholly above 0
   means residual membership; wholly below 0 means over-forgetting, which an
   attacker can also detect (the "Streisand effect"). Both fail. With ``k``
   attacks the intervals are Bonferroni-corrected (each at level
   ``1 - (1 - level) / k``), so an exact retrain still fails by chance in at
   most ``1 - level`` of audits however many attacks are asked;
2. its forget quality F (U-LiRA bank, NeurIPS 2023 unlearning competition,
   Triantafillou et al. 2024) is not below the ``retrain`` control's F at this
   bank size (a paired bootstrap over forget samples of the difference of
   their points), and not below the absolute bar ``min_forget_quality``;
   skipped, and said so, for a model without a U-LiRA bank;
3. its test accuracy is no more than ``utility_tolerance`` below the reference's.

A method that crashed or diverged fails with its error as the reason.

The controls gate everything: the ``noop`` control (the unchanged original)
must fail on membership evidence and the ``retrain`` control (an independently
seeded retrain) must pass. If either does not, the audit cannot tell a model
that forgot nothing from one that was retrained, and every verdict of the run
becomes ``inconclusive``, with the reasons and what would give the audit power.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attacks.epsilon import forget_quality_points
from attacks.metrics import auc_difference_ci, roc_metrics

NEGATIVE_CONTROL = "noop"
POSITIVE_CONTROL = "retrain"
CORRECTIONS = ("bonferroni", "none")


@dataclass
class Verdict:
    """One model's verdict."""

    status: str
    reasons: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": self.reasons, "evidence": self.evidence}


@dataclass(frozen=True)
class Rule:
    """The settings of the verdict rule (``[verdict]`` of the config).

    Attributes:
        primary: The headline attack (first in the reasons, the report's ROC).
        level: Family-wise confidence level over all verdict attacks.
        n_boot: Bootstrap replicates.
        utility_tolerance: Largest allowed drop of test accuracy below the reference.
        correction: ``bonferroni`` (each attack's interval at ``1 - (1 - level) / k``)
            or ``none`` (each at ``level``).
        min_forget_quality: Absolute bar on F (0 = only the comparison with retrain).
        seed: Bootstrap seed.
    """

    primary: str = "lira_online"
    level: float = 0.95
    n_boot: int = 1000
    utility_tolerance: float = 0.05
    correction: str = "bonferroni"
    min_forget_quality: float = 0.0
    seed: int = 0

    def attack_level(self, k: int) -> float:
        """Confidence level of each of ``k`` attacks' intervals."""
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got '{self.correction}'")
        return 1 - (1 - self.level) / max(k, 1) if self.correction == "bonferroni" else self.level


@dataclass(frozen=True)
class ForgetEpsilons:
    """Per-forget-sample ε of a method's U-LiRA bank and of the ``retrain`` control's bank.

    Both come from banks of the same shadows on the same forget samples, in the
    same order, with ``n_models`` unlearned models per sample.
    """

    model: np.ndarray
    retrain: np.ndarray
    n_models: int


def _outcome(lo: float, hi: float) -> str:
    return "residual membership" if lo > 0 else "over-forgetting" if hi < 0 else "indistinguishable"


def attack_evidence(
    scores: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    is_forget: np.ndarray,
    rule: Rule,
) -> dict[str, dict[str, Any]]:
    """Per attack: AUCs, the paired bootstrap interval of their difference and its outcome."""
    level = rule.attack_level(len(scores))
    out: dict[str, dict[str, Any]] = {}
    for name, s in scores.items():
        ci = auc_difference_ci(
            s, reference[name], is_forget, n_boot=rule.n_boot, level=level, seed=rule.seed
        )
        out[name] = {
            "auc": roc_metrics(s, is_forget, fprs=())["auc"],
            "reference_auc": roc_metrics(reference[name], is_forget, fprs=())["auc"],
            "auc_diff": ci["diff"],
            "ci": [ci["low"], ci["high"]],
            "outcome": _outcome(ci["low"], ci["high"]),
        }
    return out


def forget_quality_evidence(eps: ForgetEpsilons, rule: Rule) -> dict[str, Any]:
    """F of the method and of the retrain control, and the bootstrap interval of the difference.

    The interval resamples forget samples (the same resample for both, so the
    comparison is paired) at the family-wise ``rule.level``, one-sided use:
    only an interval wholly below 0 fails.
    """
    pm = forget_quality_points(eps.model, n_models=eps.n_models)
    pr = forget_quality_points(eps.retrain, n_models=eps.n_models)
    if pm.shape != pr.shape:
        raise ValueError(f"epsilons of {pm.shape} and {pr.shape} forget samples")
    rng = np.random.default_rng(rule.seed)
    idx = rng.integers(0, pm.size, size=(rule.n_boot, pm.size))
    boot = (pm[idx] - pr[idx]).mean(axis=1)
    alpha = 1 - rule.level
    lo, hi = (float(v) for v in np.quantile(boot, [alpha / 2, 1 - alpha / 2]))
    value, ref = float(pm.mean()), float(pr.mean())
    below_retrain = hi < 0
    below_bar = value < rule.min_forget_quality
    return {
        "value": value,
        "retrain_control": ref,
        "diff": value - ref,
        "ci": [lo, hi],
        "bar": rule.min_forget_quality,
        "n_models": eps.n_models,
        "below_retrain": below_retrain,
        "below_bar": below_bar,
        "ok": not (below_retrain or below_bar),
    }


def _membership_reasons(
    per: dict[str, dict[str, Any]], rule: Rule, attack_level: float
) -> list[str]:
    pct = f"{attack_level * 100:.2f}".rstrip("0").rstrip(".") + "%"

    def what(name: str) -> str:
        e = per[name]
        return (
            f"{name} AUC on forget vs non-members {e['auc']:.3f} vs reference "
            f"{e['reference_auc']:.3f}, difference {e['auc_diff']:+.3f} "
            f"({pct} CI {e['ci'][0]:+.3f}..{e['ci'][1]:+.3f})"
        )

    order = (
        [rule.primary, *(n for n in per if n != rule.primary)] if rule.primary in per else [*per]
    )
    reasons = []
    for name in order:
        if per[name]["outcome"] == "residual membership":
            reasons.append(
                "residual membership: the forget set is more recognisable as training "
                f"data than under the retrained reference — {what(name)}"
            )
        elif per[name]["outcome"] == "over-forgetting":
            reasons.append(
                "over-forgetting: the forget set is less recognisable than under the "
                f"retrained reference, which an attacker can also detect — {what(name)}"
            )
    if not reasons:
        others = len(order) - 1
        more = f" (and under {others} other attack{'s' * (others > 1)})" if others else ""
        reasons.append(
            f"membership evidence indistinguishable from the retrained reference — "
            f"{what(order[0])}{more}"
        )
    return reasons


def _forget_quality_reason(fq: dict[str, Any]) -> str | None:
    base = (
        f"forget quality F {fq['value']:.3f} vs the retrain control's {fq['retrain_control']:.3f} "
        f"(difference CI {fq['ci'][0]:+.3f}..{fq['ci'][1]:+.3f}, {fq['n_models']} unlearned "
        "shadow models per sample)"
    )
    if fq["below_retrain"]:
        return f"forget quality: below exact unlearning's at this bank size — {base}"
    if fq["below_bar"]:
        return f"forget quality: {fq['value']:.3f} is below the bar {fq['bar']:.3f} — {base}"
    return None


def judge(
    scores: Mapping[str, np.ndarray] | None,
    reference_scores: Mapping[str, np.ndarray],
    is_forget: np.ndarray,
    *,
    test_acc: float | None,
    reference_test_acc: float,
    rule: Rule,
    epsilons: ForgetEpsilons | None = None,
    error: str | None = None,
) -> Verdict:
    """Judge one model against the retrained reference.

    Args:
        scores: Per verdict attack, the model's scores on forget + non-member samples
            (None if the method failed).
        reference_scores: The reference's scores on the same samples, per attack.
        is_forget: True for forget samples, False for non-members.
        test_acc: The model's test accuracy.
        reference_test_acc: The reference's test accuracy.
        rule: The verdict settings.
        epsilons: Per-sample ε of the method's and the retrain control's U-LiRA banks
            (None: no forget-quality rule, e.g. a checkpoint the user brought).
        error: The method's error message, if it failed.
    """
    if error is not None or scores is None or test_acc is None:
        return Verdict("fail", [f"the method failed: {error}"], {"attack": rule.primary})
    if not scores:
        raise ValueError("judge needs the scores of at least one attack")
    level = rule.attack_level(len(scores))
    per = attack_evidence(scores, reference_scores, is_forget, rule)
    head = per.get(rule.primary, next(iter(per.values())))
    gap = test_acc - reference_test_acc
    ev: dict[str, Any] = {
        "attack": rule.primary if rule.primary in per else next(iter(per)),
        **{k: head[k] for k in ("auc", "reference_auc", "auc_diff", "ci")},
        "level": rule.level,
        "attack_level": level,
        "correction": rule.correction,
        "per_attack": per,
        "test_acc_gap": gap,
    }
    membership_ok = all(e["outcome"] == "indistinguishable" for e in per.values())
    reasons = _membership_reasons(per, rule, level)
    fq_ok = True
    if epsilons is not None:
        fq = forget_quality_evidence(epsilons, rule)
        ev["forget_quality"] = fq
        fq_ok = fq["ok"]
        reason = _forget_quality_reason(fq)
        if reason:
            reasons.append(reason)
    utility_ok = gap >= -rule.utility_tolerance
    if not utility_ok:
        reasons.append(
            f"utility: test accuracy {test_acc:.1%} is {-gap:.1%} below the "
            f"reference's {reference_test_acc:.1%} (tolerance {rule.utility_tolerance:.1%})"
        )
    ev.update(membership_ok=membership_ok, forget_quality_ok=fq_ok, utility_ok=utility_ok)
    ok = membership_ok and fq_ok and utility_ok
    return Verdict("pass" if ok else "fail", reasons, ev)


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
            "retrain control did not pass: an independently retrained model was judged different "
            "from the reference, so the test is too noisy at this size (use more samples or a "
            "higher verdict.level)"
        )
    power = _forget_quality_power(neg)
    if power:
        reasons.append(power)
    if not ok:
        for v in verdicts.values():
            v.evidence["raw_status"] = v.status
            v.status = "inconclusive"
            v.reasons.insert(0, "inconclusive because the controls did not separate")
    return {"separated": ok, "reasons": reasons}
