"""Likelihood Ratio Attack (LiRA).

Carlini, Chien, Nasr, Song, Terzis, Tramer, "Membership Inference Attacks From
First Principles", IEEE S&P 2022 (Algorithm 1, Sec. IV). For each sample the
signal (logit-scaled confidence, see :mod:`attacks.signals`) of shadow models
that trained on it (IN) and did not (OUT) is modelled by Gaussians
``N(mu_in, s_in^2)`` and ``N(mu_out, s_out^2)``; the audited model's signal
``t`` is then tested against them.

Online (eq. in Alg. 1, averaged over augmented queries a = 1..A):

    score = mean_a [ log N(t_a; mu_in_a, s_in_a^2) - log N(t_a; mu_out_a, s_out_a^2) ]

Offline (the paper's variant of Algorithm 1 without IN shadows): a *one-sided*
test of whether ``t`` is unusually large under the OUT distribution,

    score = mean_a log Phi( (t_a - mu_out_a) / s_out_a ),

with ``Phi`` the standard normal CDF (``scipy.special.log_ndtr``, stable far in
the tails). Some public reference code scores offline LiRA with the negative
OUT *density*, ``-log N(t; mu_out, s_out^2)``; that is two-sided and wrongly
flags samples far *below* the OUT mean (e.g. mislabelled points) as members.

Choices where the paper leaves room:

* Per-example variance uses the unbiased estimate (ddof=1) when a side has at
  least 2 values; with a single value the spread is 0. Every std is floored at
  ``eps`` so densities stay finite.
* Fixed ("global") variance is estimated separately for each side (IN / OUT)
  and each augmentation index as the *pooled within-sample* variance: the mean
  over samples (those with >= 2 values on that side) of each sample's ddof=1
  variance around its own mean. We do not use the raw variance of all values
  (it adds the between-sample spread of the means, which the per-sample means
  already remove), nor the IN std for both sides (as in some reference code).
* Augmented queries are treated as independent Gaussians (diagonal covariance)
  and their log-terms are *averaged*; the sum would rank samples identically.
* Samples with a required side empty raise ``ValueError`` instead of being
  silently scored.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr

__all__ = ["lira"]


def _prepare(
    target: np.ndarray, shadow: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate inputs and return ``t (n, A)``, ``s (m, n, A)`` float64 and ``keep (m, n)``."""
    t = np.asarray(target, dtype=np.float64)
    s = np.asarray(shadow, dtype=np.float64)
    k = np.asarray(keep)
    if t.ndim == 1:
        t = t[:, None]
    if s.ndim == 2:
        s = s[:, :, None]
    if t.ndim != 2:
        raise ValueError(f"target must have shape (n,) or (n, A), got {np.shape(target)}")
    if s.ndim != 3:
        raise ValueError(f"shadow must have shape (m, n) or (m, n, A), got {np.shape(shadow)}")
    if k.dtype != np.bool_ or k.ndim != 2:
        raise ValueError(f"keep must be a 2-D boolean array, got {k.dtype} {k.shape}")
    if s.shape != (k.shape[0], t.shape[0], t.shape[1]):
        raise ValueError(
            f"inconsistent shapes: target {t.shape} (n, A), shadow {s.shape} (m, n, A), "
            f"keep {k.shape} (m, n)"
        )
    for name, arr in (("target", t), ("shadow", s)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise ValueError(f"{name} contains {bad} non-finite values")
    return t, s, k


def _side_stats(
    s: np.ndarray, mask: np.ndarray, side: str, fixed_variance: bool, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Masked per-sample mean and std of shadow signals on one side.

    Args:
        s: Shadow signals ``(m, n, A)``.
        mask: Boolean ``(m, n)``: which models are on this side for each sample.
        side: ``"IN"`` or ``"OUT"`` (for error messages).
        fixed_variance: Use the pooled within-sample variance of this side.
        eps: Floor for the standard deviation.

    Returns:
        ``(mu, std)``, both of shape ``(n, A)``.
    """
    count = mask.sum(axis=0)
    empty = int(np.count_nonzero(count == 0))
    if empty:
        raise ValueError(
            f"{empty} of {count.size} samples have no {side} shadow model; "
            "train more shadow models (see attacks.shadows.make_keep_matrix)"
        )
    w = mask[:, :, None]
    mu = np.where(w, s, 0.0).sum(axis=0) / count[:, None]
    sq = np.where(w, (s - mu) ** 2, 0.0).sum(axis=0)
    if fixed_variance:
        ok = count >= 2
        if not ok.any():
            raise ValueError(
                f"fixed-variance LiRA needs some sample with >= 2 {side} shadow models to "
                f"estimate a variance; max per sample is {int(count.max())}. "
                "Train more shadow models"
            )
        pooled = (sq[ok] / (count[ok] - 1)[:, None]).mean(axis=0)
        var = np.broadcast_to(pooled, mu.shape)
    else:
        var = sq / np.maximum(count - 1, 1)[:, None]
    std = np.maximum(np.sqrt(var), eps)
    return mu, std


def lira(
    target: np.ndarray,
    shadow: np.ndarray,
    keep: np.ndarray,
    *,
    online: bool = True,
    fixed_variance: bool = False,
    eps: float = 1e-6,
) -> np.ndarray:
    """LiRA membership scores (Carlini et al., IEEE S&P 2022); higher = more likely member.

    See the module docstring for the equations and the estimation choices.
    All statistics are vectorised over samples and augmentations with masks, so
    any keep matrix works (not only exactly-half designs).

    Args:
        target: Audited model's signals, shape ``(n,)`` or ``(n, A)``
            (A augmented queries per sample).
        shadow: Shadow models' signals, shape ``(m, n)`` or ``(m, n, A)``.
        keep: Boolean ``(m, n)``; ``keep[k, i]`` means sample ``i`` was in
            shadow model ``k``'s training set.
        online: Online (IN vs OUT likelihood ratio) or offline (one-sided OUT test).
        fixed_variance: One pooled variance per side and augmentation instead of
            per-example variances.
        eps: Floor for every standard deviation; must be positive.

    Returns:
        float64 scores of shape ``(n,)``.

    Raises:
        ValueError: On inconsistent shapes, non-finite signals, a non-positive
            ``eps``, samples without IN (online) or OUT shadow models, or a fixed
            variance that cannot be estimated.
    """
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be positive and finite, got {eps}")
    t, s, k = _prepare(target, shadow, keep)
    mu_out, sd_out = _side_stats(s, ~k, "OUT", fixed_variance, eps)
    z_out = (t - mu_out) / sd_out
    if not online:
        return np.asarray(log_ndtr(z_out).mean(axis=1), dtype=np.float64)
    mu_in, sd_in = _side_stats(s, k, "IN", fixed_variance, eps)
    z_in = (t - mu_in) / sd_in
    # log N(t; mu_in, s_in^2) - log N(t; mu_out, s_out^2); the 2*pi terms cancel.
    llr = 0.5 * (z_out**2 - z_in**2) + np.log(sd_out) - np.log(sd_in)
    return np.asarray(llr.mean(axis=1), dtype=np.float64)
