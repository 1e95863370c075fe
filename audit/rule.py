"""The verdict rule: one model judged against the retrained reference (docs/verdict.md).

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

The controls that gate every verdict of a run are :mod:`unlearn_audit.audit.verdict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unlearn_audit.attacks.epsilon import forget_quality_points
from unlearn_audit.audit.residual import ResidualEstimate, estimate_residual, finite_or_none

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
        max_residual: Equivalence margin: a pass needs every attack's residual interval
            below it (docs/verdict.md).
        seed: Bootstrap seed.
    """

    primary: str = "lira_online"
    level: float = 0.95
    n_boot: int = 1000
    utility_tolerance: float = 0.05
    correction: str = "bonferroni"
    min_forget_quality: float = 0.0
    max_residual: float = 0.3
    seed: int = 0

    @property
    def residual_level(self) -> float:
        """Two-sided level of each residual interval: its ends are one-sided ``level`` bounds."""
        return 1 - 2 * (1 - self.level)

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


def attack_evidence(
    scores: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    original: Mapping[str, np.ndarray],
    is_forget: np.ndarray,
    rule: Rule,
    weights: np.ndarray | None = None,
) -> ResidualEstimate:
    """Per attack: AUCs, the interval of their difference, the residual and its interval.

    Detection uses the AUC difference's interval at the family-wise attack level
    (Bonferroni over the attacks). The pass is an intersection-union test: it needs
    *every* attack's residual below the margin, so each attack's one-sided bound is
    taken at ``level`` with no correction (Berger 1982); the residual's two-sided
    interval is therefore at ``1 - 2 (1 - level)`` (TOST, Schuirmann 1987).
    ``weights`` are the samples' weights in ``Z``
    (:func:`audit.normal_score.record_weights`; None = equal).
    """
    return estimate_residual(
        scores,
        reference,
        original,
        is_forget,
        n_boot=rule.n_boot,
        level=rule.attack_level(len(scores)),
        seed=rule.seed,
        residual_level=rule.residual_level,
        weights=weights,
    )


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


def _pct(level: float) -> str:
    return f"{level * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _share(v: float | None) -> str:
    """A residual as a share of the request (``41%``; unbounded as ``any share``)."""
    if v is None or not np.isfinite(v):
        return "any share"
    return f"{v:.0%}"


def residual_text(est: ResidualEstimate) -> str:
    """``residual 0.12 (98.33% CI -0.05..0.31, lira_offline)``: the worst attack's estimate."""
    w = est.worst
    lo, hi = (finite_or_none(v) for v in w.residual_ci)
    value = "undefined" if w.residual is None else f"{w.residual:+.2f}"
    ci = f"{lo:+.2f}..{hi:+.2f}" if lo is not None and hi is not None else "unbounded: no signal"
    return f"residual {value} ({_pct(est.level)} CI {ci}, {w.attack})"


def _membership_reasons(est: ResidualEstimate, rule: Rule) -> tuple[str, list[str]]:
    """The membership outcome (``fail``, ``pass`` or ``inconclusive``) and its reasons."""
    per = est.per_attack
    pct = _pct(est.diff_level)

    def what(name: str) -> str:
        e = per[name]
        return (
            f"{name} AUC on forget vs non-members {e.auc:.3f} vs reference "
            f"{e.reference_auc:.3f}, difference {e.auc_diff:+.3f} "
            f"({pct} CI {e.auc_diff_ci[0]:+.3f}..{e.auc_diff_ci[1]:+.3f}); mean normal score "
            f"difference {e.score_diff:+.3f} ({pct} CI {e.score_diff_ci[0]:+.3f}.."
            f"{e.score_diff_ci[1]:+.3f})"
        )

    order = (
        [rule.primary, *(n for n in per if n != rule.primary)] if rule.primary in per else [*per]
    )
    reasons = []
    for name in order:
        if per[name].outcome == "residual membership":
            reasons.append(
                "residual membership: the forget set is more recognisable as training "
                f"data than under the retrained reference — {what(name)}"
            )
        elif per[name].outcome == "over-forgetting":
            reasons.append(
                "over-forgetting: the forget set is less recognisable than under the "
                f"retrained reference, which an attacker can also detect — {what(name)}"
            )
    if reasons:
        reasons[0] += (
            f"; {residual_text(est)}, on a scale where the reference is 0 and the original 1"
        )
        return "fail", reasons
    others = len(order) - 1
    more = f" (and under {others} other attack{'s' * (others > 1)})" if others else ""
    if est.upper < rule.max_residual:
        return "pass", [
            f"forgetting shown: at most {_share(est.upper)} of the original's membership "
            f"evidence on the forget set remains, below the margin {rule.max_residual:.0%} "
            f"under every verdict attack — {residual_text(est)}; {what(order[0])}{more}"
        ]
    w = est.worst
    need = _needed_scale(w.residual, w.residual_ci[1], rule.max_residual)
    return "inconclusive", [
        f"not shown to have forgotten: this audit cannot rule out that up to "
        f"{_share(est.upper)} of the request is still remembered (the margin is "
        f"{rule.max_residual:.0%}) — {residual_text(est)}; no residual membership was "
        f"detected either ({what(order[0])}). {need}"
    ]


def _needed_scale(value: float | None, upper: float, margin: float) -> str:
    """What would narrow the interval enough to show the residual below the margin."""
    if value is None or not np.isfinite(upper) or value >= margin:
        return (
            "A stronger membership signal (an original that fits its members more "
            "closely, more shadow models) or a larger forget set would give the audit power"
        )
    factor = ((upper - value) / (margin - value)) ** 2
    return (
        f"About {factor:.1f}x as many forget samples (the interval narrows as 1/sqrt(n)) "
        "or a stronger membership signal would decide it"
    )


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
    original_scores: Mapping[str, np.ndarray],
    is_forget: np.ndarray,
    *,
    test_acc: float | None,
    reference_test_acc: float,
    rule: Rule,
    epsilons: ForgetEpsilons | None = None,
    error: str | None = None,
    weights: np.ndarray | None = None,
) -> Verdict:
    """Judge one model against the retrained reference and the original (docs/verdict.md).

    Args:
        scores: Per verdict attack, the model's scores on forget + non-member samples
            (None if the method failed).
        reference_scores: The reference's scores on the same samples, per attack.
        original_scores: The original's scores on the same samples, per attack (the
            residual's scale: reference 0, original 1).
        is_forget: True for forget samples, False for non-members.
        test_acc: The model's test accuracy.
        reference_test_acc: The reference's test accuracy.
        rule: The verdict settings.
        epsilons: Per-sample ε of the method's and the retrain control's U-LiRA banks
            (None: no forget-quality rule, e.g. a checkpoint the user brought).
        error: The method's error message, if it failed.
        weights: Per sample of ``scores``, its weight in the residual's ``Z``
            (:func:`audit.normal_score.record_weights`; None = equal weights).
    """
    if error is not None or scores is None or test_acc is None:
        return Verdict("fail", [f"the method failed: {error}"], {"attack": rule.primary})
    if not scores:
        raise ValueError("judge needs the scores of at least one attack")
    level = rule.attack_level(len(scores))
    est = attack_evidence(scores, reference_scores, original_scores, is_forget, rule, weights)
    per = {name: e.to_dict() for name, e in est.per_attack.items()}
    head = per.get(rule.primary, next(iter(per.values())))
    gap = test_acc - reference_test_acc
    ev: dict[str, Any] = {
        "attack": rule.primary if rule.primary in per else next(iter(per)),
        **{k: head[k] for k in ("auc", "reference_auc", "auc_diff", "ci")},
        "level": rule.level,
        "attack_level": level,
        "correction": rule.correction,
        "per_attack": per,
        "residual": est.to_dict(rule.max_residual),
        "test_acc_gap": gap,
    }
    membership, reasons = _membership_reasons(est, rule)
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
    membership_ok = membership != "fail"
    ev.update(
        membership_ok=membership_ok,
        membership=membership,
        forget_quality_ok=fq_ok,
        utility_ok=utility_ok,
    )
    if not (membership_ok and fq_ok and utility_ok):
        return Verdict("fail", reasons, ev)
    return Verdict(membership, reasons, ev)
