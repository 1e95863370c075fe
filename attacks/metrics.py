"""ROC metrics for membership inference and bootstrap confidence intervals (AUC, TPR at FPR).

Convention: higher score = more likely a member; ``is_member`` is the ground truth.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

__all__ = ["auc_ci", "auc_difference_ci", "roc_curve", "roc_metrics", "tpr_at_fpr_ci"]

# Bootstrap replicates are processed in chunks holding about this many int64s.
_CHUNK_ELEMS = 4_000_000


def _validate(
    scores: np.ndarray, is_member: np.ndarray, name: str = "scores"
) -> tuple[np.ndarray, np.ndarray]:
    """Return float64 scores and a boolean membership vector, or raise ValueError."""
    s = np.asarray(scores, dtype=np.float64)
    y_raw = np.asarray(is_member)
    if s.ndim != 1 or y_raw.shape != s.shape:
        raise ValueError(
            f"{name} and is_member must be 1-D of equal length, got {s.shape} and {y_raw.shape}"
        )
    if y_raw.dtype != np.bool_:
        if not np.all((y_raw == 0) | (y_raw == 1)):
            raise ValueError("is_member must be boolean or contain only 0/1")
    y = y_raw.astype(bool)
    n_nan = int(np.count_nonzero(np.isnan(s)))
    if n_nan:
        raise ValueError(f"{name} contain {n_nan} NaN values")
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        raise ValueError(
            f"need both members and non-members, got {n_pos} members and "
            f"{y.size - n_pos} non-members"
        )
    return s, y


def roc_curve(scores: np.ndarray, is_member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve of a membership score, one point per distinct threshold.

    A sample is predicted "member" when its score is ``>=`` the threshold; tied
    scores move together, so a tie between members and non-members is a single
    diagonal step.

    Args:
        scores: Scores ``(n,)``; higher = more likely a member. No NaN.
        is_member: Ground truth ``(n,)``, boolean or 0/1.

    Returns:
        ``(fpr, tpr)`` float64 arrays, non-decreasing, starting at ``(0, 0)`` and
        ending at ``(1, 1)``.

    Raises:
        ValueError: On shape mismatch, NaN scores, or an empty class.
    """
    s, y = _validate(scores, is_member)
    order = np.argsort(s, kind="stable")[::-1]
    s_sorted, y_sorted = s[order], y[order]
    # last index of each group of equal scores (comparison, not diff, so inf ties work)
    ends = np.append(np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s.size - 1)
    tps = np.cumsum(y_sorted)[ends]
    fps = ends + 1 - tps
    fpr = np.concatenate(([0.0], fps / (s.size - y.sum())))
    tpr = np.concatenate(([0.0], tps / y.sum()))
    return fpr, tpr


def _auc(s: np.ndarray, y: np.ndarray) -> float:
    """Mann-Whitney AUC from average ranks (ties count 1/2)."""
    ranks = rankdata(s)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _check_fprs(fprs: Sequence[float]) -> None:
    for f in fprs:
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"FPR levels must lie in [0, 1], got {f}")


def roc_metrics(
    scores: np.ndarray,
    is_member: np.ndarray,
    fprs: Sequence[float] = (0.001, 0.01, 0.05),
    *,
    ci: bool = False,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """AUC, TPR at fixed low FPRs and the best balanced accuracy.

    * AUC is the Mann-Whitney probability ``P(s_member > s_nonmember) +
      0.5 P(s_member == s_nonmember)``, equal to the area under :func:`roc_curve`.
    * TPR at FPR ``f`` is the largest TPR among ROC points with ``FPR <= f``
      (Carlini et al., IEEE S&P 2022, who report TPR at low FPR without
      interpolation). With fewer than ``1/f`` non-members it may be 0.
    * Balanced accuracy is ``max_t (TPR(t) + TNR(t)) / 2`` over the ROC points,
      i.e. the accuracy of the best single threshold on a balanced
      member/non-member prior (never below 0.5: the all-member and
      all-non-member rules are ROC points).

    Args:
        scores: Scores ``(n,)``; higher = more likely a member.
        is_member: Ground truth ``(n,)``, boolean or 0/1.
        fprs: FPR levels in ``[0, 1]``.
        ci: Also return stratified percentile-bootstrap intervals of each
            TPR at FPR (see :func:`tpr_at_fpr_ci`) under ``"tpr_at_fpr_ci"``.
        n_boot: Bootstrap replicates (only with ``ci``).
        level: Confidence level (only with ``ci``).
        seed: Bootstrap seed (only with ``ci``).

    Returns:
        ``{"auc": float, "tpr_at_fpr": {format(f, "g"): float, ...},
        "balanced_accuracy": float}`` and, with ``ci``,
        ``"tpr_at_fpr_ci": {format(f, "g"): [low, high], ...}``.

    Raises:
        ValueError: On invalid inputs (see :func:`roc_curve`), an FPR outside
            ``[0, 1]`` or invalid bootstrap arguments.
    """
    _check_fprs(fprs)
    s, y = _validate(scores, is_member)
    fpr, tpr = roc_curve(s, y)
    tpr_at = {format(f, "g"): float(tpr[fpr <= f].max()) for f in fprs}
    out: dict[str, Any] = {
        "auc": _auc(s, y),
        "tpr_at_fpr": tpr_at,
        "balanced_accuracy": float(((tpr + 1.0 - fpr) / 2.0).max()),
    }
    if ci:
        boot = tpr_at_fpr_ci(s, y, fprs, n_boot=n_boot, level=level, seed=seed)
        out["tpr_at_fpr_ci"] = {k: [v["low"], v["high"]] for k, v in boot.items()}
    return out


def _allowed_false_positives(f: float, n_neg: int) -> int:
    """Largest integer ``k`` with ``k / n_neg <= f`` (the float test used by roc_metrics)."""
    k = int(np.floor(f * n_neg))
    while k < n_neg and (k + 1) / n_neg <= f:
        k += 1
    while k > 0 and k / n_neg > f:
        k -= 1
    return k


def _tpr_at(pos: np.ndarray, neg: np.ndarray, k: int) -> float:
    """TPR at ``<= k`` false positives: members strictly above the (k+1)-th largest non-member.

    A threshold keeping at most ``k`` false positives must lie strictly above
    the ``(k+1)``-th largest non-member score ``v`` (ties move together), and
    the best such threshold accepts exactly the members with score ``> v``.
    """
    if k >= neg.size:
        return 1.0
    v = np.partition(neg, neg.size - 1 - k)[neg.size - 1 - k]
    return float(np.count_nonzero(pos > v) / pos.size)


def tpr_at_fpr_ci(
    scores: np.ndarray,
    is_member: np.ndarray,
    fprs: Sequence[float] = (0.001, 0.01, 0.05),
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """TPR at fixed FPRs with stratified percentile-bootstrap intervals.

    Each replicate resamples members and non-members separately with
    replacement (as :func:`auc_ci`) and recomputes the TPR at each FPR level
    with the definition of :func:`roc_metrics`. At very low FPR the interval
    is wide and often includes 0: with ``N`` non-members the threshold is set
    by about ``f N`` non-member scores, which is the reason to report it.

    Args:
        scores: Scores ``(n,)``; higher = more likely a member.
        is_member: Ground truth ``(n,)``, boolean or 0/1.
        fprs: FPR levels in ``[0, 1]``.
        n_boot: Number of bootstrap replicates.
        level: Confidence level in ``(0, 1)``.
        seed: Seed of the ``numpy.random.Generator`` driving the resampling.

    Returns:
        ``{format(f, "g"): {"tpr": point estimate, "low": float, "high": float}}``.

    Raises:
        ValueError: On invalid inputs, FPR levels or bootstrap arguments.
    """
    _check_boot_args(n_boot, level)
    _check_fprs(fprs)
    s, y = _validate(scores, is_member)
    pos, neg = s[y], s[~y]
    ks = [_allowed_false_positives(f, neg.size) for f in fprs]
    rng = np.random.default_rng(seed)
    boot = np.empty((int(n_boot), len(ks)))
    for r in range(int(n_boot)):
        p = pos[rng.integers(0, pos.size, size=pos.size)]
        q = neg[rng.integers(0, neg.size, size=neg.size)]
        boot[r] = [_tpr_at(p, q, k) for k in ks]
    out: dict[str, dict[str, float]] = {}
    for j, (f, k) in enumerate(zip(fprs, ks, strict=True)):
        low, high = _percentiles(boot[:, j], level)
        out[format(f, "g")] = {"tpr": _tpr_at(pos, neg, k), "low": low, "high": high}
    return out


def bootstrap_weights(
    n_pos: int, n_neg: int, n_boot: int, seed: int, per_replicate: int = 0
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Stratified bootstrap resamples as multiplicity counts, in chunks of replicates.

    Yields ``(start, w_pos, w_neg)``: replicates ``start .. start + b`` as counts
    ``(b, n_pos)`` and ``(b, n_neg)`` of how often each member / non-member is
    drawn (members and non-members resampled separately with replacement). The
    draws depend only on the sizes, ``n_boot`` and ``seed``, so every statistic
    bootstrapped from the same arguments uses the same resamples (paired).
    ``per_replicate`` is the caller's memory per replicate, in int64s, for the
    chunk size.
    """
    rng = np.random.default_rng(seed)
    need = per_replicate or (n_pos + 2 * n_neg + 1)
    chunk = max(1, min(n_boot, _CHUNK_ELEMS // need))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        offs = np.arange(b)[:, None]
        draw_pos = rng.integers(0, n_pos, size=(b, n_pos)) + offs * n_pos
        draw_neg = rng.integers(0, n_neg, size=(b, n_neg)) + offs * n_neg
        w_pos = np.bincount(draw_pos.ravel(), minlength=b * n_pos).reshape(b, n_pos)
        w_neg = np.bincount(draw_neg.ravel(), minlength=b * n_neg).reshape(b, n_neg)
        yield start, w_pos, w_neg


def _boot_aucs(
    score_sets: Sequence[np.ndarray], y: np.ndarray, n_boot: int, seed: int
) -> list[np.ndarray]:
    """Stratified bootstrap AUCs, the same resamples for every score vector.

    Members and non-members are resampled separately with replacement and
    represented by multiplicity counts ``w`` (:func:`bootstrap_weights`). For
    one replicate, with non-member scores sorted, ``AUC = sum_i w_i (below_i +
    ties_i / 2) / (P N)`` where ``below_i`` / ``ties_i`` are the resampled
    non-member counts below / equal to member ``i``'s score, read from a
    cumulative sum at positions found by ``searchsorted``. Everything is
    vectorised over a chunk of replicates and computed in integers, so equal
    inputs give equal outputs.
    """
    pos_idx, neg_idx = np.flatnonzero(y), np.flatnonzero(~y)
    n_pos, n_neg = pos_idx.size, neg_idx.size
    prepared = []
    for s in score_sets:
        neg = s[neg_idx]
        order = np.argsort(neg, kind="stable")
        lo = np.searchsorted(neg[order], s[pos_idx], side="left")
        hi = np.searchsorted(neg[order], s[pos_idx], side="right")
        prepared.append((order, lo, hi))
    out = [np.empty(n_boot) for _ in score_sets]
    for start, w_pos, w_neg in bootstrap_weights(n_pos, n_neg, n_boot, seed):
        b = w_pos.shape[0]
        for k, (order, lo, hi) in enumerate(prepared):
            cum = np.zeros((b, n_neg + 1), dtype=np.int64)
            np.cumsum(w_neg[:, order], axis=1, out=cum[:, 1:])
            below = cum[:, lo]
            twice = (w_pos * (below + cum[:, hi])).sum(axis=1)  # 2*below + ties
            out[k][start : start + b] = twice / (2.0 * n_pos * n_neg)
    return out


def _check_boot_args(n_boot: int, level: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def auc_ci(
    scores: np.ndarray,
    is_member: np.ndarray,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """AUC with a stratified percentile-bootstrap confidence interval.

    Members and non-members are resampled separately with replacement (keeping
    the class sizes fixed), AUC is recomputed per replicate, and the interval is
    the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles (Efron's
    percentile bootstrap; the stratification is our choice so every replicate
    has both classes).

    Args:
        scores: Scores ``(n,)``; higher = more likely a member.
        is_member: Ground truth ``(n,)``, boolean or 0/1.
        n_boot: Number of bootstrap replicates.
        level: Confidence level in ``(0, 1)``.
        seed: Seed of the ``numpy.random.Generator`` driving the resampling.

    Returns:
        ``{"auc": point estimate, "low": float, "high": float}``.

    Raises:
        ValueError: On invalid inputs or bootstrap arguments.
    """
    _check_boot_args(n_boot, level)
    s, y = _validate(scores, is_member)
    (boot,) = _boot_aucs([s], y, int(n_boot), seed)
    low, high = _percentiles(boot, level)
    return {"auc": _auc(s, y), "low": low, "high": high}


def auc_difference_ci(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    is_member: np.ndarray,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired stratified bootstrap CI for ``d = AUC(a) - AUC(b)``.

    ``scores_a`` and ``scores_b`` are two models' scores on the same samples.
    Each replicate resamples members and non-members separately with
    replacement and applies the *same* resample to both score vectors, so the
    correlation between the two AUCs is kept (a paired comparison). The
    interval is the percentile interval of the replicate differences.

    Args:
        scores_a: Scores ``(n,)`` of model A.
        scores_b: Scores ``(n,)`` of model B on the same samples.
        is_member: Ground truth ``(n,)``, boolean or 0/1.
        n_boot: Number of bootstrap replicates.
        level: Confidence level in ``(0, 1)``.
        seed: Seed of the ``numpy.random.Generator`` driving the resampling.

    Returns:
        ``{"diff": float, "low": float, "high": float, "n_boot": int, "level": float}``.

    Raises:
        ValueError: On invalid inputs or bootstrap arguments.
    """
    _check_boot_args(n_boot, level)
    a, y = _validate(scores_a, is_member, "scores_a")
    b, _ = _validate(scores_b, is_member, "scores_b")
    boot_a, boot_b = _boot_aucs([a, b], y, int(n_boot), seed)
    low, high = _percentiles(boot_a - boot_b, level)
    return {
        "diff": _auc(a, y) - _auc(b, y),
        "low": low,
        "high": high,
        "n_boot": int(n_boot),
        "level": float(level),
    }
