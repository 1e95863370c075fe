"""Per-example epsilon and forget quality of the NeurIPS 2023 Machine Unlearning Challenge.

Triantafillou et al., "Are we making progress in unlearning? Findings from the
first NeurIPS unlearning competition" (arXiv 2406.09073, 2024), Sec. 3, and
the competition's evaluation code (google-deepmind/unlearning_evaluation).
An unlearning algorithm is (epsilon, delta)-unlearning for a sample when no
test tells its output distribution from retraining's beyond

    FPR + e^eps FNR >= 1 - delta   and   FNR + e^eps FPR >= 1 - delta.

For one forget sample, given the signal (logit-scaled confidence) of ``k1``
unlearned models and ``k2`` retrained models, every decision rule of a family
gives an (FPR, FNR) pair and the lower bound

    eps(rule) = max( log(1 - delta - FPR) - log FNR,  log(1 - delta - FNR) - log FPR ),

clipped below at 0; the sample's epsilon is the largest bound over the rules.

Rule families (both as in the competition):

* ``single``: ``signal >= t`` predicts the distribution with the larger median
  (the "positive" one; ties make retraining negative, as the competition does).
* ``double``: ``l <= signal <= r`` predicts the distribution with the smaller
  range (max - min), the "peakier" one; on equal ranges, the unlearned one.
* ``both`` (the competition's default): the maximum over the two families.

Estimation details, following the competition unless said otherwise:

* A rule with ``FPR = FNR = 0`` separates the two samples perfectly: epsilon is
  infinite, then capped at ``clip`` (the competition's cap is 50).
* A rule with exactly one of FPR, FNR equal to 0 is discarded (with finitely
  many models a single zero rate is taken as a lack of samples, not evidence).
  A sample with no remaining rule gets epsilon 0.
* If one distribution's range is below ``peaky_ratio`` (1%) of the other's,
  epsilon is set to ``clip`` directly (a collapsed unlearned distribution is
  a failure the threshold grid may miss). Two constant distributions are
  handled by the rules instead (equal: 0; different: ``clip``).
* Our choice: the competition scans a grid of thresholds (100 per signal unit;
  for ``double``, intervals around the peakier distribution's width); we
  enumerate *every* distinct threshold (pair) exactly. Any rule of the grid
  produces the same (FPR, FNR) as one of ours, so our epsilon is never below
  the grid's, and results do not depend on the grid's resolution.

With ``k`` models per side, finite bounds cannot exceed about ``log k``;
epsilon values near that bound mean "as separable as this many models can show".
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "EPSILON_CAP",
    "forget_quality",
    "forget_quality_points",
    "per_example_epsilon",
    "signals_by_side",
]

#: The competition's cap on epsilon (also used for perfectly separated samples).
EPSILON_CAP = 50.0
_RULES = ("single", "double", "both")


def _epsilons(fpr: np.ndarray, fnr: np.ndarray, delta: float, clip: float) -> float:
    """Largest epsilon bound over rules with the given rates (the rules above)."""
    perfect = (fpr == 0) & (fnr == 0)
    if perfect.any():
        return clip
    ok = (fpr > 0) & (fnr > 0)
    if not ok.any():
        return 0.0
    f, g = fpr[ok], fnr[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        b1 = np.log(1.0 - delta - f) - np.log(g)
        b2 = np.log(1.0 - delta - g) - np.log(f)
    best = np.nanmax(np.concatenate([b1, b2, [0.0]]))
    return float(min(max(best, 0.0), clip))


def _single_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of ``x >= t`` -> positive, for every distinct threshold (and +inf)."""
    thr = np.unique(np.concatenate([pos, neg]))
    ps, ns = np.sort(pos), np.sort(neg)
    tp = pos.size - np.searchsorted(ps, thr, side="left")
    fp = neg.size - np.searchsorted(ns, thr, side="left")
    fpr = np.append(fp / neg.size, 0.0)
    fnr = np.append(1.0 - tp / pos.size, 1.0)
    return fpr, fnr


def _double_rates(inside: np.ndarray, outside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of ``l <= x <= r`` -> ``inside`` class, over all value pairs ``l <= r``."""
    u = np.unique(np.concatenate([inside, outside]))
    ins, outs = np.sort(inside), np.sort(outside)
    lt_in, le_in = np.searchsorted(ins, u, "left"), np.searchsorted(ins, u, "right")
    lt_out, le_out = np.searchsorted(outs, u, "left"), np.searchsorted(outs, u, "right")
    upper = np.triu(np.ones((u.size, u.size), dtype=bool))
    tp = (le_in[None, :] - lt_in[:, None])[upper]
    fp = (le_out[None, :] - lt_out[:, None])[upper]
    return fp / outside.size, 1.0 - tp / inside.size


def _one_sample(
    unl: np.ndarray, ret: np.ndarray, delta: float, rule: str, clip: float, peaky_ratio: float
) -> float:
    r_u, r_r = np.ptp(unl), np.ptp(ret)
    largest, smallest = max(r_u, r_r), min(r_u, r_r)
    if largest > 0 and smallest / largest < peaky_ratio:
        return clip
    fprs, fnrs = [], []
    if rule in ("single", "both"):
        ret_pos = np.median(ret) > np.median(unl)
        pos, neg = (ret, unl) if ret_pos else (unl, ret)
        f, g = _single_rates(pos, neg)
        fprs.append(f)
        fnrs.append(g)
    if rule in ("double", "both"):
        inside, outside = (ret, unl) if r_r < r_u else (unl, ret)
        f, g = _double_rates(inside, outside)
        fprs.append(f)
        fnrs.append(g)
    return _epsilons(np.concatenate(fprs), np.concatenate(fnrs), delta, clip)


def per_example_epsilon(
    unlearned: np.ndarray,
    retrained: np.ndarray,
    *,
    delta: float = 1e-5,
    rule: str = "both",
    clip: float = EPSILON_CAP,
    peaky_ratio: float = 0.01,
) -> np.ndarray:
    """Per-sample epsilon lower bounds of unlearned vs retrained models (Triantafillou et al.).

    See the module docstring for the rules, the clipping and our choices.

    Args:
        unlearned: Signals ``(k1, n)`` of ``k1`` unlearned models on ``n`` forget samples.
        retrained: Signals ``(k2, n)`` of ``k2`` retrained-from-scratch models.
        delta: The delta of (epsilon, delta)-unlearning; the competition uses 1e-5.
        rule: ``"single"``, ``"double"`` or ``"both"``.
        clip: Cap on epsilon, also given to perfectly separated samples.
        peaky_ratio: Range ratio below which epsilon is set to ``clip`` (0 disables).

    Returns:
        float64 ``(n,)`` in ``[0, clip]``.

    Raises:
        ValueError: On shapes other than 2-D with matching ``n``, fewer than 2
            models on a side, non-finite signals, or invalid parameters.
    """
    u = np.asarray(unlearned, dtype=np.float64)
    r = np.asarray(retrained, dtype=np.float64)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise ValueError(
            f"unlearned and retrained must be (k1, n) and (k2, n) (select one augmented "
            f"query for 3-D signals), got {u.shape} and {r.shape}"
        )
    if min(u.shape[0], r.shape[0]) < 2:
        raise ValueError(f"need >= 2 models per side, got {u.shape[0]} and {r.shape[0]}")
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise ValueError("signals contain non-finite values")
    if rule not in _RULES:
        raise ValueError(f"rule must be one of {', '.join(_RULES)}, got {rule!r}")
    if not 0.0 <= delta < 1.0 or not clip > 0 or not 0.0 <= peaky_ratio < 1.0:
        raise ValueError("need 0 <= delta < 1, clip > 0 and 0 <= peaky_ratio < 1")
    return np.array(
        [
            _one_sample(u[:, i], r[:, i], delta, rule, float(clip), peaky_ratio)
            for i in range(u.shape[1])
        ],
        dtype=np.float64,
    )


def signals_by_side(
    signals: np.ndarray, unlearned: np.ndarray, retrained: np.ndarray, *, query: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stack a shadow bank into the ``(k1, n)`` / ``(k2, n)`` inputs of per_example_epsilon.

    In a bank where every shadow model either trained on a sample and
    unlearned it (``unlearned[k, i]``) or never trained on it
    (``retrained[k, i]``), sample ``i``'s unlearned and retrained signals come
    from different models for different samples. This stacks them per sample,
    in increasing model order, which needs the same number of models on each
    side for every sample (true for :func:`attacks.shadows.make_keep_matrix`
    designs, where each side has ``m / 2`` models).

    Args:
        signals: Shadow signals ``(m, n)`` or ``(m, n, A)``.
        unlearned: Boolean ``(m, n)``.
        retrained: Boolean ``(m, n)``, disjoint from ``unlearned``.
        query: Augmented query to use for 3-D signals.

    Returns:
        ``(U, R)`` of shapes ``(k1, n)`` and ``(k2, n)``.

    Raises:
        ValueError: On shape or dtype mismatch, overlapping masks, or side
            sizes that vary across samples.
    """
    s = np.asarray(signals, dtype=np.float64)
    if s.ndim == 3:
        s = s[:, :, query]
    u, r = np.asarray(unlearned), np.asarray(retrained)
    if s.ndim != 2 or u.shape != s.shape or r.shape != s.shape:
        raise ValueError(f"signals {s.shape} and masks {u.shape}, {r.shape} must be (m, n)")
    if u.dtype != np.bool_ or r.dtype != np.bool_ or (u & r).any():
        raise ValueError("unlearned and retrained must be disjoint boolean masks")
    out = []
    for mask, side in ((u, "unlearned"), (r, "retrained")):
        counts = mask.sum(axis=0)
        if counts.min() != counts.max():
            raise ValueError(
                f"{side} models per sample vary from {counts.min()} to {counts.max()}; "
                "use a balanced design or call per_example_epsilon per sample"
            )
        order = np.argsort(~mask, axis=0, kind="stable")[: counts[0]]
        out.append(np.take_along_axis(s, order, axis=0))
    return out[0], out[1]


def forget_quality_points(
    eps: np.ndarray, *, n_models: int | None = None, bucket_width: float = 0.5
) -> np.ndarray:
    """Each sample's points of the competition's forgetting score (F is their mean).

    A sample earns ``2^-j`` points when its epsilon lies in bucket ``j``,
    ``[j w, (j + 1) w)`` with ``w = bucket_width`` (0.5 in the competition).
    The competition stops the buckets at ``ceil(log(n_models - 1))`` (where
    ``n_models`` is the number of unlearned models, its rough bound on
    estimable epsilon): a sample beyond the last full bucket earns 0. Pass
    ``n_models`` to apply that cut-off; without it the buckets never end
    (points ``2^-floor(eps / w)``, 0 for infinite eps).

    Args:
        eps: Per-example epsilons ``(n,)``, non-negative (NaN not allowed).
        n_models: Number of unlearned models behind ``eps`` (>= 2), or None.
        bucket_width: Width of the buckets, positive.

    Returns:
        Points ``(n,)`` in ``[0, 1]``.

    Raises:
        ValueError: On empty, NaN or negative epsilons or invalid parameters.
    """
    e = np.asarray(eps, dtype=np.float64)
    if e.ndim != 1 or e.size == 0 or np.isnan(e).any() or (e < 0).any():
        raise ValueError("eps must be a non-empty 1-D array of non-negative values")
    if not bucket_width > 0:
        raise ValueError(f"bucket_width must be positive, got {bucket_width}")
    with np.errstate(invalid="ignore"):
        bucket = np.floor(e / bucket_width)
    points = np.where(np.isfinite(bucket), np.exp2(-np.where(np.isfinite(bucket), bucket, 0)), 0.0)
    if n_models is not None:
        if n_models < 2:
            raise ValueError(f"n_models must be >= 2, got {n_models}")
        max_eps = math.ceil(math.log(n_models - 1)) if n_models > 2 else 0
        n_buckets = int(math.floor(max_eps / bucket_width + 1e-9))
        points = np.where(bucket < n_buckets, points, 0.0)
    return points


def forget_quality(
    eps: np.ndarray, *, n_models: int | None = None, bucket_width: float = 0.5
) -> float:
    """The competition's forgetting score F: the mean of :func:`forget_quality_points`.

    1 = every sample indistinguishable from retraining; see
    :func:`forget_quality_points` for the buckets and the ``n_models`` cut-off.

    Raises:
        ValueError: On empty, NaN or negative epsilons or invalid parameters.
    """
    points = forget_quality_points(eps, n_models=n_models, bucket_width=bucket_width)
    return float(points.mean())
