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

Per-record evidence: for each forget record, a one-sided p-value of "a
non-member" from its LiRA-offline test against the OUT shadows, calibrated on
the model's own non-members (:func:`record_pvalues`), and the records still
recognisable at a false discovery rate by Benjamini & Hochberg (1995).

The minimum detectable residual (MDR) comes from the audit's own signals: a
model that still remembers a share ``rho`` has an expected detection
difference ``rho (Z(original) - Z(reference))``; the audit would judge it
with a bootstrap standard error interpolated between the ``retrain``
control's (a model that forgot, with its own training noise) and the
original's, plus the spread between kept and forgotten records, and such
models differ from one another by which records they keep and by their own
training noise (:func:`detection_probability`). The MDR is the smallest
``rho`` (1% grid) that the detection rule catches with probability at least
``power`` under that normal approximation. The planted partial-forgetting
control (a real model retrained on retain plus a known share of the request)
checks it in every audit, and ``benchmarks/validity.py`` checks it on planted
models.

References: Schuirmann (1987) for the two one-sided tests logic of the
equivalence verdict; Hayes et al. 2024, "Inexact unlearning needs more careful
evaluations to avoid a false sense of privacy", for why a difference test is
not evidence of forgetting; Carlini et al. 2022 (LiRA) for the scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri, ndtri_exp
from scipy.stats import rankdata

from unlearn_audit.attacks.metrics import _auc, _boot_aucs, bootstrap_weights

MDR_GRID = tuple(round(0.01 * i, 2) for i in range(1, 101))
MDR_POWER = 0.8
MDR_DRAWS = 20_000  # normal draws for the several-attack detection probability (SE <= 0.004)


def _percentile_counts(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort order of the non-members and each forget sample's left/right insertion point."""
    neg = scores[~y]
    order = np.argsort(neg, kind="stable")
    lo = np.searchsorted(neg[order], scores[y], side="left")
    hi = np.searchsorted(neg[order], scores[y], side="right")
    return order, lo, hi


def _normal_scores(twice_below: np.ndarray, total: Any, mean_w: float) -> np.ndarray:
    """``Phi^-1((W_below + W_ties / 2 + c) / (W + 2c))``, ``c`` half a mean weight.

    ``W`` are sums of the non-members' weights; with unit weights, ``c = 1/2`` and
    this is the mid-rank percentile ``(below + ties / 2 + 1/2) / (N + 1)``.
    """
    c = mean_w / 2.0
    return ndtri((twice_below / 2.0 + c) / (np.asarray(total)[..., None] + 2.0 * c))


def _split_weights(weights: np.ndarray | None, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The forget samples' and the non-members' weights, checked (None: all 1)."""
    if weights is None:
        return np.ones(int(y.sum())), np.ones(int((~y).sum()))
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != y.shape or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"record weights must be {y.size} finite, non-negative values")
    w_f, w_n = w[y], w[~y]
    if not (w_f.sum() > 0 and w_n.sum() > 0):
        raise ValueError(
            "record weights must have a positive sum on both forget samples and non-members"
        )
    return w_f, w_n


def mean_normal_score(
    scores: np.ndarray, is_forget: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """``Z``: the mean normal score of the forget samples among the non-members.

    With record ``weights`` (:func:`record_weights`, one per sample of ``scores``;
    None = all 1), ``Z`` is the weighted mean over the forget samples of ``Phi^-1``
    of each one's mid-rank percentile in the *weighted* distribution of the
    non-members' scores.
    """
    y = np.asarray(is_forget, dtype=bool)
    order, lo, hi = _percentile_counts(np.asarray(scores, dtype=np.float64), y)
    w_f, w_n = _split_weights(weights, y)
    cum = np.concatenate([[0.0], np.cumsum(w_n[order])])
    z = _normal_scores(cum[lo] + cum[hi], cum[-1], float(w_n.mean()))
    return float((w_f * z).sum() / w_f.sum())


def boot_normal_scores(
    score_sets: Sequence[np.ndarray],
    is_forget: np.ndarray,
    n_boot: int,
    seed: int,
    weights: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Stratified bootstrap replicates of ``Z`` for each score vector, the same resamples.

    The resamples are :func:`attacks.metrics.bootstrap_weights`', as for the AUC
    bootstrap, so replicate ``b`` here and there use the same resample and the
    AUC difference and the residual of one audit are paired. With record
    ``weights`` (one per sample), each draw of a record carries its weight, in the
    non-members' distribution and in the forget samples' mean alike.
    """
    y = np.asarray(is_forget, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    w_f, w_n = _split_weights(weights, y)
    mean_w = float(w_n.mean())
    prepared = [_percentile_counts(np.asarray(s, dtype=np.float64), y) for s in score_sets]
    out = [np.empty(n_boot) for _ in score_sets]
    for start, w_pos, w_neg in bootstrap_weights(n_pos, n_neg, n_boot, seed):
        b = w_pos.shape[0]
        num_w = w_pos * w_f
        total = num_w.sum(axis=1)
        # a resample that drew only zero-weight forget records has no weighted mean:
        # it falls back to the plain mean of its draws (never a division by zero)
        empty = total <= 0
        num_w = np.where(empty[:, None], w_pos, num_w)
        total = np.where(empty, n_pos, total)
        drawn_n = w_neg * w_n  # each non-member draw carries its record's weight
        for k, (order, lo, hi) in enumerate(prepared):
            cum = np.zeros((b, n_neg + 1), dtype=np.float64)
            np.cumsum(drawn_n[:, order], axis=1, out=cum[:, 1:])
            z = _normal_scores(cum[:, lo] + cum[:, hi], cum[:, -1], mean_w)
            out[k][start : start + b] = (num_w * z).sum(axis=1) / total
    return out


def record_weights(shadow_signals: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Each record's *separation* in the shadow models: how visible its membership is.

    ``w_i = max(0, 2 AUC_i - 1)``, where ``AUC_i`` is the Mann-Whitney AUC of the
    shadows' signal on record ``i`` (averaged over query views) between the
    shadows that trained on it (IN) and those that did not (OUT): LiRA's
    per-example IN and OUT distributions (Carlini et al. 2022) summarised as one
    bounded, rank-based effect size. A record whose membership no shadow can see
    (a near-duplicate of many others) weighs nothing; one the shadows always
    tell apart weighs 1. Bounded weights keep a few extreme records from
    dominating (an unbounded ``(mean IN - mean OUT) / SD`` made the weighted mean
    erratic on the embedded default; docs/verdict.md).

    Forget samples and non-members are weighted alike (:func:`mean_normal_score`):
    a forget record is read against non-members as visible as itself, so a
    model-wide change on atypical records (one training run more confident on
    them than another) moves both and does not pass for membership; weighting
    the forget samples alone did, and made independent retrains differ by more
    than their bootstrap intervals allowed (docs/verdict.md).

    The weights come from the shadows only, never from the judged models, so for
    a model that kept a *random* share ``rho`` of the request the weighted ``Z``
    still has ``E[Z] = rho Z(original) + (1 - rho) Z(reference)``: the residual
    stays unbiased and the weighting only removes noise. When the kept records
    are not random, the residual is the share of the *visible* membership that
    remains.

    Args:
        shadow_signals: ``(S, n)`` or ``(S, n, A)`` signals of the shadow models.
        keep: ``(S, n)`` True where record ``i`` was in shadow ``k``'s training set.

    Returns:
        ``(n,)`` weights in ``[0, 1]``; 0 where a record has no IN or no OUT shadow.
    """
    sig = np.asarray(shadow_signals, dtype=np.float64)
    if sig.ndim == 3:
        sig = sig.mean(axis=2)
    k = np.asarray(keep, dtype=bool)
    if sig.shape != k.shape:
        raise ValueError(f"signals {sig.shape} and keep {k.shape} disagree")
    ranks = rankdata(sig, axis=0)  # mid-ranks over the shadows, per record
    n_in, n_out = k.sum(axis=0), (~k).sum(axis=0)
    ok = (n_in > 0) & (n_out > 0) & np.isfinite(sig).all(axis=0)
    u = np.where(k, ranks, 0.0).sum(axis=0) - n_in * (n_in + 1) / 2.0
    auc = np.divide(u, n_in * n_out, out=np.full(u.shape, 0.5), where=ok)
    return np.where(ok, np.clip(2.0 * auc - 1.0, 0.0, None), 0.0).astype(np.float64)


def effective_records(weights: np.ndarray | None, n: int) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (``n`` when unweighted)."""
    if weights is None:
        return float(n)
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / (w**2).sum()) if (w**2).sum() > 0 else 0.0


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


# -- per-record evidence ------------------------------------------------------------------


RECORD_ATTACK = "lira_offline"  # its score is mean_a log Phi(z_a): a one-sided OUT test


def record_pvalues(forget_scores: np.ndarray, nonmember_scores: np.ndarray) -> np.ndarray:
    """One-sided p-values of "this record is a non-member", calibrated on the model's non-members.

    The inputs are LiRA-offline scores ``log Phi(z)`` (Carlini et al. 2022: ``z``
    standardises the model's signal on a record by the OUT shadows' mean and
    spread on it). ``z`` is recovered as ``scipy.special.ndtri_exp(score)``
    (stable in both tails), then re-standardised by the median and a spread of the *model's own*
    non-members' ``z``, so a model whose signals all moved (trained on fewer
    samples than the shadows, fine-tuned) is read against itself:
    ``p_i = Phi(-(z_i - median) / s)``, where the spread ``s`` is the largest of
    ``1.4826 MAD``, the SD and the spread that puts the non-members' own 99th
    percentile at the normal's: conservative where their tail is heavier than
    normal (it was, on Fashion-MNIST, with the MAD alone). It is exact when a forgotten
    record's ``z`` is exchangeable with the non-members' and near normal; the
    share of non-members below 1% is recorded by the tests as the check.
    Continuous p-values, unlike ranks among a few hundred non-members, can reach
    the Benjamini-Hochberg thresholds of a large request.
    """
    z_f = ndtri_exp(np.asarray(forget_scores, dtype=np.float64))
    z_n = ndtri_exp(np.asarray(nonmember_scores, dtype=np.float64))
    z_n = z_n[np.isfinite(z_n)]
    if z_n.size < 2:  # no usable non-member: no record can be told from one
        return np.ones(z_f.shape, dtype=np.float64)
    centre = float(np.median(z_n))
    spread = max(
        1.4826 * float(np.median(np.abs(z_n - centre))),  # the bulk
        float(np.std(z_n)),  # heavier tails than normal widen it
        (float(np.quantile(z_n, 0.99)) - centre) / float(ndtri(0.99)),  # the upper tail itself
    )
    spread = spread if np.isfinite(spread) and spread > 0 else 1.0
    return np.asarray(ndtr(-(z_f - centre) / spread), dtype=np.float64)


def benjamini_hochberg(pvalues: np.ndarray, fdr: float) -> np.ndarray:
    """Boolean mask of the discoveries of the Benjamini-Hochberg step-up procedure at ``fdr``."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    below = p[order] <= fdr * np.arange(1, m + 1) / m
    out = np.zeros(m, dtype=bool)
    if below.any():
        k = int(np.flatnonzero(below)[-1])
        out[order[: k + 1]] = True
    return out


@dataclass(frozen=True)
class RecordEvidence:
    """Per forget record: the p-value of "forgotten" and whether it is still recognisable."""

    attack: str
    fdr: float
    pvalues: np.ndarray
    recognisable: np.ndarray

    def to_dict(self, forget_index: np.ndarray) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "fdr": self.fdr,
            "n_forget": int(self.pvalues.size),
            "n_recognisable": int(self.recognisable.sum()),
            "recognisable": [int(i) for i in np.asarray(forget_index)[self.recognisable]],
        }


def record_evidence(
    attack: str, scores: np.ndarray, is_forget: np.ndarray, fdr: float
) -> RecordEvidence:
    """p-values and BH discoveries of one model's forget records under ``attack``."""
    y = np.asarray(is_forget, dtype=bool)
    p = record_pvalues(scores[y], scores[~y])
    return RecordEvidence(attack, fdr, p, benjamini_hochberg(p, fdr))


# -- power ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Power:
    """The minimum detectable residual and the detection probability on the grid."""

    mdr: float | None
    power: float
    curve: dict[float, float]

    @property
    def statement(self) -> str:
        """The power in words a compliance reader understands (CLI and report quote it)."""
        if self.mdr is None:
            return (
                "This audit could not reliably catch even a model that forgot nothing of the "
                "deleted records: it has no power to show forgetting."
            )
        return (
            f"This audit would catch a model that still remembers at least {self.mdr:.0%} of "
            f"the deleted records (in {self.power:.0%} of audits); it could not reliably see less."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mdr": self.mdr,
            "statement": self.statement,
            "power": self.power,
            "curve": {format(k, "g"): v for k, v in self.curve.items() if round(k * 100) % 5 == 0},
        }


def detection_probability(
    rho: float,
    gap: np.ndarray,
    cov_out: np.ndarray,
    cov_in: np.ndarray,
    z: float,
    draws: np.ndarray | None = None,
    n_eff: float | None = None,
) -> float:
    """``P(detect)`` of a model keeping ``rho`` of *this* audit's request, under some attack.

    Two covariances of the attacks' detection differences ``Z(model) - Z(reference)``
    enter, for a model that keeps a random ``rho`` of these forget records:

    - what the audit's bootstrap would report as its standard error, ``V = (1 -
      rho) cov_out + rho cov_in + rho (1 - rho) M``: the bootstrap covariances of a
      model that forgot everything (the retrain control) and of one that kept
      everything (the original), plus the spread of the records themselves between
      kept and forgotten ones, ``M = gap gap^T / n_eff`` (``n_eff``: Kish's
      effective number of forget records; None = no such term);
    - how much the difference varies between such models on these records, ``S =
      rho (1 - rho) M + cov_out / 2``: which records are kept, plus the model's
      own training noise (half of the retrain-vs-reference covariance, to which
      both models' noise contributes alike). The records are this audit's and do
      not vary.

    An attack detects when its difference, ``N(rho gap, S)``, exceeds ``z`` of its
    standard errors ``sqrt(diag V)``. With one attack the probability is exact;
    with several it is the share of ``draws`` (standard normal rows, one column per
    attack, drawn once from a fixed seed) in which some attack detects, so the
    result is deterministic. On simulated banks (tests/audit/test_residual.py) the
    rate of models keeping the MDR that are caught is at or above the stated
    power; leaving out ``M``, or taking ``V`` as the spread, was too optimistic in
    one setting and too pessimistic in others (docs/verdict.md).
    """
    mix = np.outer(gap, gap) / n_eff if n_eff else np.zeros((gap.size, gap.size))
    mix = rho * (1.0 - rho) * mix
    se = np.sqrt(np.clip(np.diag((1.0 - rho) * cov_out + rho * cov_in + mix), 0.0, None))
    spread = mix + cov_out / 2.0
    sd = np.sqrt(np.clip(np.diag(spread), 0.0, None))
    mean = rho * gap
    if (sd <= 0).any():
        return float((mean > z * se).any())
    if gap.size == 1 or draws is None:
        return max(float(ndtr((m - z * e) / d)) for m, e, d in zip(mean, se, sd, strict=True))
    corr = spread / np.outer(sd, sd)
    w, v = np.linalg.eigh(corr)  # a square root that also takes a singular matrix
    root = v * np.sqrt(np.clip(w, 0.0, None))
    x = draws @ root.T + mean / sd
    return float(np.mean((x > z * se / sd).any(axis=1)))


def minimum_detectable_residual(
    original: Mapping[str, np.ndarray],
    out_model: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    is_forget: np.ndarray,
    *,
    level: float,
    seed: int,
    power: float = MDR_POWER,
    n_boot: int = 1000,
    grid: Sequence[float] = MDR_GRID,
    weights: np.ndarray | None = None,
) -> Power:
    """Smallest ``rho`` of ``grid`` that the detection rule catches with probability ``power``.

    Under the mixture model of the module docstring, a model keeping ``rho``
    has ``E[Z(model) - Z(reference)] = rho (Z(original) - Z(reference))`` under
    every attack. :func:`detection_probability` gives the chance that the
    detection rule catches it: some attack's difference above ``z = Phi^-1(1 -
    (1 - level) / 2)`` of the standard error the audit's bootstrap would give
    it, interpolated between that of ``Z(out_model) - Z(reference)``
    (``out_model``: the independently retrained ``retrain`` control, whose own
    training noise a real model also has) and that of ``Z(original) -
    Z(reference)``, with the spread between kept and forgotten records added.
    The expected difference is centred on the reference, so a retrain control
    that happens to sit above or below it does not move the MDR. ``weights`` are
    the verdict's record weights (:func:`record_weights`), so the MDR is that of
    the verdict's ``Z``; their effective number of forget records
    (:func:`effective_records`) sizes the spread of which records a partial
    model keeps.
    """
    y = np.asarray(is_forget, dtype=bool)
    z = float(ndtri(1.0 - (1.0 - level) / 2.0))
    gaps, d_out, d_in = [], [], []
    for name in reference:
        sets = [np.asarray(d[name], dtype=np.float64) for d in (original, reference, out_model)]
        gaps.append(mean_normal_score(sets[0], y, weights) - mean_normal_score(sets[1], y, weights))
        b_o, b_r, b_x = boot_normal_scores(sets, y, n_boot, seed, weights)
        d_out.append(b_x - b_r)
        d_in.append(b_o - b_r)
    gap = np.array(gaps)
    cov_out = np.atleast_2d(np.cov(np.array(d_out)))
    cov_in = np.atleast_2d(np.cov(np.array(d_in)))
    draws = np.random.default_rng(seed).standard_normal((MDR_DRAWS, gap.size))
    n_eff = effective_records(None if weights is None else np.asarray(weights)[y], int(y.sum()))
    curve: dict[float, float] = {}
    mdr = None
    for rho in grid:
        rate = detection_probability(float(rho), gap, cov_out, cov_in, z, draws, n_eff)
        curve[float(rho)] = rate
        if mdr is None and rate >= power:
            mdr = float(rho)
    return Power(mdr, power, curve)
