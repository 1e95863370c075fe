"""Residual membership: how much of the original's membership evidence on the forget set remains.

The verdict (docs/verdict.md) is an equivalence test on the *residual* ``r``, a
scale on which the retrained reference is 0 and the unchanged original is 1.
Per attack, each forget sample ``i`` has a percentile ``u_m(i)`` among model
``m``'s scores on the non-members, and its *normal score* ``z_m(i) =
Phi^-1(u_m(i))`` (van der Waerden 1952). With ``Z(m)`` the mean normal score
of the forget samples, weighted by each record's visibility in the shadow
models (:func:`record_weights`; non-members weighted alike in the percentile),

    r = (Z(model) - Z(reference)) / (Z(original) - Z(reference)).

``Z`` is a *mean over forget samples* with weights fixed by the shadows: a
model that still remembers a random fraction
``rho`` of the request exactly as the original did, and forgot the rest
exactly as the reference did, has ``E[Z(model)] = rho Z(original) + (1 - rho)
Z(reference)`` and ``E[r] = rho``. The mean percentile is the AUC and would do
as well; the normal score weighs the upper tail, where membership evidence
concentrates, more, and gave intervals 10-30% narrower on the embedded default
(docs/verdict.md). Percentiles, not raw attack scores, keep heavy-tailed
likelihood ratios from dominating the mean, and each model is read against its
own non-members, so a method that shifts every confidence (fine-tuning) is not
mistaken for residual membership.

The interval is a paired, stratified percentile bootstrap (forget samples and
non-members resampled separately, the same resample for the three models):
the ratio of the replicate differences. A replicate whose denominator is not
positive (the original not more recognisable than the reference) has no ratio;
it is counted at the pessimistic end of both tails, so an audit without a
membership signal gets an unbounded interval, never a pass.

``Z``, its bootstrap and the record weights are :mod:`unlearn_audit.audit.normal_score`;
the per-record evidence is :mod:`unlearn_audit.audit.records`, the minimum detectable
residual :mod:`unlearn_audit.audit.power` (the pipeline imports them from here too).

References: Schuirmann (1987) for the two one-sided tests logic of the
equivalence verdict; Hayes et al. 2024, "Inexact unlearning needs more careful
evaluations to avoid a false sense of privacy", for why a difference test is
not evidence of forgetting; Carlini et al. 2022 (LiRA) for the scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearn_audit.attacks.metrics import _auc, _boot_aucs
from unlearn_audit.audit.normal_score import (
    boot_normal_scores,
    effective_records,
    mean_normal_score,
    record_weights,
)
from unlearn_audit.audit.power import minimum_detectable_residual
from unlearn_audit.audit.records import RECORD_ATTACK, record_evidence

# the pipeline imports these from here, with the residual estimate below
__all__ = [
    "RECORD_ATTACK",
    "AttackResidual",
    "ResidualEstimate",
    "attack_residual",
    "effective_records",
    "estimate_residual",
    "finite_or_none",
    "minimum_detectable_residual",
    "record_evidence",
    "record_weights",
]


def _interval(values: np.ndarray, undefined: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval; undefined replicates sit at the pessimistic end of each tail."""
    lo_v = np.where(undefined, -np.inf, values)
    hi_v = np.where(undefined, np.inf, values)
    a = (1.0 - level) / 2.0
    # order statistics (no interpolation between an infinite and a finite replicate),
    # each rounded outwards
    return (
        float(np.quantile(lo_v, a, method="lower")),
        float(np.quantile(hi_v, 1.0 - a, method="higher")),
    )


def finite_or_none(v: float) -> float | None:
    """JSON has no infinity: an unbounded end of an interval is written as null."""
    return float(v) if np.isfinite(v) else None


@dataclass(frozen=True)
class AttackResidual:
    """One attack's residual estimate, the detection difference and the AUC evidence.

    ``score_diff`` is ``Z(model) - Z(reference)``, the residual's numerator: its
    interval (at the family-wise attack level) decides detection. The AUCs and
    their difference are the same comparison on the percentile scale, kept as
    the evidence readers know.
    """

    attack: str
    auc: float
    reference_auc: float
    original_auc: float
    auc_diff: float
    auc_diff_ci: tuple[float, float]
    score_diff: float
    score_diff_ci: tuple[float, float]
    residual: float | None
    residual_ci: tuple[float, float]

    @property
    def outcome(self) -> str:
        """``residual membership``, ``over-forgetting`` or ``indistinguishable`` (detection)."""
        lo, hi = self.score_diff_ci
        if lo > 0:
            return "residual membership"
        if hi < 0:
            return "over-forgetting"
        return "indistinguishable"

    def to_dict(self) -> dict[str, Any]:
        return {
            "auc": self.auc,
            "reference_auc": self.reference_auc,
            "original_auc": self.original_auc,
            "auc_diff": self.auc_diff,
            "ci": list(self.auc_diff_ci),
            "score_diff": self.score_diff,
            "score_diff_ci": list(self.score_diff_ci),
            "outcome": self.outcome,
            "residual": self.residual,
            "residual_ci": [finite_or_none(v) for v in self.residual_ci],
        }


def attack_residual(
    attack: str,
    model: np.ndarray,
    reference: np.ndarray,
    original: np.ndarray,
    is_forget: np.ndarray,
    *,
    n_boot: int,
    level: float,
    seed: int,
    residual_level: float | None = None,
    weights: np.ndarray | None = None,
) -> AttackResidual:
    """Residual ``r`` of one attack with its paired bootstrap interval (module docstring).

    Args:
        attack: The attack's name (recorded).
        model, reference, original: Scores of the three models on the same
            forget + non-member samples.
        is_forget: True for forget samples, False for non-members.
        n_boot: Bootstrap replicates.
        level: Two-sided level of the detection intervals (normal-score and AUC
            differences).
        seed: Bootstrap seed (the same seed gives the same resamples for every model).
        residual_level: Two-sided level of the residual's interval (default ``level``);
            the verdict uses ``1 - 2 (1 - verdict.level)``, whose ends are one-sided
            ``verdict.level`` bounds (the two one-sided tests of an equivalence test).
        weights: Per sample (forget and non-member, ``is_forget`` order), its weight
            in ``Z`` (:func:`record_weights`; None = equal weights). The AUCs stay
            unweighted.
    """
    y = np.asarray(is_forget, dtype=bool)
    sets = [np.asarray(s, dtype=np.float64) for s in (model, reference, original)]
    a_m, a_r, a_o = (_auc(s, y) for s in sets)
    b_m, b_r = _boot_aucs(sets[:2], y, int(n_boot), seed)
    diff = b_m - b_r
    z_m, z_r, z_o = (mean_normal_score(s, y, weights) for s in sets)
    bz_m, bz_r, bz_o = boot_normal_scores(sets, y, int(n_boot), seed, weights)
    num, den = bz_m - bz_r, bz_o - bz_r
    undefined = den <= 0
    ratio = np.divide(num, den, out=np.zeros_like(num), where=~undefined)
    point = (z_m - z_r) / (z_o - z_r) if z_o > z_r else None
    always = np.zeros_like(diff, dtype=bool)
    return AttackResidual(
        attack=attack,
        auc=a_m,
        reference_auc=a_r,
        original_auc=a_o,
        auc_diff=a_m - a_r,
        auc_diff_ci=_interval(diff, always, level),
        score_diff=z_m - z_r,
        score_diff_ci=_interval(num, always, level),
        residual=point,
        residual_ci=_interval(
            ratio, undefined, level if residual_level is None else residual_level
        ),
    )


@dataclass(frozen=True)
class ResidualEstimate:
    """The residual of one model under every verdict attack; the headline is the worst.

    The headline attack is the one whose interval reaches highest (the most
    pessimistic reading): a pass needs every attack's upper end below the margin.
    """

    per_attack: dict[str, AttackResidual]
    level: float  # two-sided level of each residual interval
    diff_level: float  # two-sided level of each AUC difference's interval

    @property
    def worst(self) -> AttackResidual:
        return max(self.per_attack.values(), key=lambda e: e.residual_ci[1])

    @property
    def upper(self) -> float:
        return self.worst.residual_ci[1]

    def to_dict(self, margin: float) -> dict[str, Any]:
        w = self.worst
        return {
            "attack": w.attack,
            "value": w.residual,
            "ci": [finite_or_none(v) for v in w.residual_ci],
            "level": self.level,
            "max_residual": margin,
            "below_margin": bool(self.upper < margin),
        }


def estimate_residual(
    scores: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    original: Mapping[str, np.ndarray],
    is_forget: np.ndarray,
    *,
    n_boot: int,
    level: float,
    seed: int,
    residual_level: float | None = None,
    weights: np.ndarray | None = None,
) -> ResidualEstimate:
    """:func:`attack_residual` for every attack in ``scores`` (same seed: paired across attacks)."""
    per = {
        a: attack_residual(
            a,
            s,
            reference[a],
            original[a],
            is_forget,
            n_boot=n_boot,
            level=level,
            seed=seed,
            residual_level=residual_level,
            weights=weights,
        )
        for a, s in scores.items()
    }
    return ResidualEstimate(per, residual_level or level, level)
