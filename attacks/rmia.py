"""Robust Membership Inference Attack (RMIA).

Zarifzadeh, Liu, Shokri, "Low-Cost High-Power Membership Inference Attacks",
ICML 2024. The signal is the true-class probability ``Pr(x | theta) = p_y``
(not LiRA's logit-scaled confidence). For a sample ``x`` and a population
sample ``z`` the pairwise likelihood ratio is

    LR_theta(x, z) = [Pr(x | theta) / Pr(x)] / [Pr(z | theta) / Pr(z)],

and the score is the share of population samples that ``x`` dominates by at
least ``gamma``:

    Score(x; theta) = Pr_{z ~ Z}( LR_theta(x, z) >= gamma ).

``Pr(x)`` marginalises the model: the mean of ``Pr(x | theta')`` over
reference models ``theta'``.

* Online (reference models both IN and OUT for ``x``): we use
  ``Pr(x) = (Pr_IN(x) + Pr_OUT(x)) / 2``, the mean over IN models and the mean
  over OUT models weighted equally. For an exactly balanced design (e.g.
  :func:`attacks.shadows.make_keep_matrix`) this equals the mean over all
  reference models, as in the paper; for unbalanced keep matrices it keeps the
  paper's "IN with probability 1/2" prior (our choice).
* Offline (OUT models only): the paper approximates ``Pr_IN`` linearly from
  ``Pr_OUT``, ``Pr_IN(x) ~= a Pr_OUT(x) + (1 - a)``, which gives

      Pr(x) = ((1 + a) Pr_OUT(x) + (1 - a)) / 2,   0 <= a <= 1.

  ``a`` is chosen by :func:`tune_rmia_a` (the paper's procedure: attack one
  reference model with the others and keep the ``a`` with the best AUC) or given.

``Pr(z)`` is computed exactly like ``Pr(x)`` (the same reference models and
the same online/offline rule), so both ratios are calibrated alike.

Choices where the paper leaves room:

* The comparison is ``>=`` (the paper's equation); the authors' Privacy Meter
  code uses ``>``. Only ties differ.
* Probabilities are floored at the smallest positive float64 and ratios are
  compared in the log domain, so a probability that underflowed to 0 gives a
  finite, very small ratio instead of ``0/0``.
* Augmented queries: the score is computed per query ``a`` (each with its own
  ``Pr(x)``) and the per-query shares are averaged (a soft vote).
* ``gamma`` defaults to 1, the default of the authors' Privacy Meter; the
  paper treats it as a parameter of the test.
* For a fixed population ``Z`` the score is a non-decreasing function of
  ``Pr(x | theta) / Pr(x)`` alone, so ``Z`` only sets the resolution (ties) of
  the ranking of one target model's samples; it matters when scores of
  several target models are pooled.

The computation is vectorised: per query, sorting the ``k`` population log-ratios
once and counting with ``searchsorted`` costs ``O((n + k) log k)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unlearn_audit.attacks.metrics import roc_metrics

__all__ = ["DEFAULT_OFFLINE_A", "rmia", "tune_rmia_a"]

#: The offline ``a`` of the authors' Privacy Meter when it is not tuned.
DEFAULT_OFFLINE_A = 0.3
_TINY = np.finfo(np.float64).tiny
_A_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _prepare(
    target: np.ndarray, shadow: np.ndarray, keep: np.ndarray, z_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t = np.asarray(target, dtype=np.float64)
    s = np.asarray(shadow, dtype=np.float64)
    k = np.asarray(keep)
    z = np.asarray(z_index)
    if t.ndim == 1:
        t = t[:, None]
    if s.ndim == 2:
        s = s[:, :, None]
    if t.ndim != 2 or s.ndim != 3:
        raise ValueError(
            f"target_probs must be (n,) or (n, A) and shadow_probs (m, n) or (m, n, A), "
            f"got {np.shape(target)} and {np.shape(shadow)}"
        )
    if k.dtype != np.bool_ or k.ndim != 2:
        raise ValueError(f"keep must be a 2-D boolean array, got {k.dtype} {k.shape}")
    if s.shape != (k.shape[0], *t.shape):
        raise ValueError(
            f"inconsistent shapes: target {t.shape} (n, A), shadow {s.shape} (m, n, A), "
            f"keep {k.shape} (m, n)"
        )
    for name, arr in (("target_probs", t), ("shadow_probs", s)):
        if not np.isfinite(arr).all() or arr.min(initial=0.0) < 0.0 or arr.max(initial=0.0) > 1.0:
            raise ValueError(f"{name} must be probabilities in [0, 1]")
    if not np.issubdtype(z.dtype, np.integer) or z.ndim != 1 or z.size == 0:
        raise ValueError(f"z_index must be a non-empty 1-D integer array, got {z.dtype} {z.shape}")
    if z.min() < 0 or z.max() >= t.shape[0]:
        raise ValueError(f"z_index must lie in [0, {t.shape[0]}), got [{z.min()}, {z.max()}]")
    return t, s, k, z.astype(np.intp)


def _side_mean(s: np.ndarray, mask: np.ndarray, side: str) -> np.ndarray:
    count = mask.sum(axis=0)
    empty = int(np.count_nonzero(count == 0))
    if empty:
        raise ValueError(
            f"{empty} of {count.size} samples have no {side} reference model; "
            "train more shadow models (see attacks.shadows.make_keep_matrix)"
        )
    return np.where(mask[:, :, None], s, 0.0).sum(axis=0) / count[:, None]


def _log_pr_x(s: np.ndarray, keep: np.ndarray, online: bool, a: float) -> np.ndarray:
    """``log Pr(x)`` of shape ``(n, A)`` from the reference models."""
    p_out = _side_mean(s, ~keep, "OUT")
    if online:
        pr = 0.5 * (_side_mean(s, keep, "IN") + p_out)
    else:
        pr = 0.5 * ((1.0 + a) * p_out + (1.0 - a))
    return np.log(np.maximum(pr, _TINY))


def rmia(
    target_probs: np.ndarray,
    shadow_probs: np.ndarray,
    keep: np.ndarray,
    z_index: np.ndarray,
    *,
    online: bool = True,
    a: float = DEFAULT_OFFLINE_A,
    gamma: float = 1.0,
) -> np.ndarray:
    """RMIA scores (Zarifzadeh et al., ICML 2024); higher = more likely member.

    See the module docstring for the equations and choices.

    Args:
        target_probs: The audited model's true-class probabilities ``(n,)`` or ``(n, A)``.
        shadow_probs: Reference models' probabilities ``(m, n)`` or ``(m, n, A)``.
        keep: Boolean ``(m, n)``: ``keep[k, i]`` means reference ``k`` trained on sample ``i``.
        z_index: Indices ``(k,)`` of the population samples ``z`` (non-members
            of the target, e.g. a random subset of its held-out data).
        online: Use IN and OUT reference models; otherwise OUT models only with
            the linear approximation governed by ``a``.
        a: Offline coefficient in ``[0, 1]`` (ignored online).
        gamma: Likelihood-ratio threshold, ``> 0``.

    Returns:
        float64 scores ``(n,)`` in ``[0, 1]``.

    Raises:
        ValueError: On inconsistent shapes, values outside ``[0, 1]``, a bad
            ``z_index``, ``a`` or ``gamma``, or samples without the needed
            reference models.
    """
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"a must lie in [0, 1], got {a}")
    if not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be positive and finite, got {gamma}")
    t, s, k, z = _prepare(target_probs, shadow_probs, keep, z_index)
    log_ratio = np.log(np.maximum(t, _TINY)) - _log_pr_x(s, k, online, a)
    bound = log_ratio - np.log(gamma)
    scores = np.empty_like(log_ratio)
    for q in range(log_ratio.shape[1]):
        lz = np.sort(log_ratio[z, q])
        scores[:, q] = np.searchsorted(lz, bound[:, q], side="right") / z.size
    return np.asarray(scores.mean(axis=1), dtype=np.float64)


def _references(keep: np.ndarray, target: int) -> np.ndarray:
    """All models but ``target`` and any model whose keep row is its exact complement."""
    others = [
        j
        for j in range(keep.shape[0])
        if j != target and not np.array_equal(keep[j], ~keep[target])
    ]
    return np.asarray(others, dtype=np.intp)


def tune_rmia_a(
    shadow_probs: np.ndarray,
    keep: np.ndarray,
    *,
    targets: Sequence[int] = (0,),
    grid: Sequence[float] = _A_GRID,
    gamma: float = 1.0,
) -> float:
    """Choose RMIA's offline ``a`` by attacking reference models (Zarifzadeh et al. 2024).

    The paper's procedure: take a reference model as a temporary target,
    attack it offline with the other reference models for each candidate
    ``a``, and keep the ``a`` with the highest AUC. Here, for each temporary
    target ``k`` in ``targets``, the references are all other models except
    its complementary partner (a model whose keep row is exactly ``~keep[k]``,
    as in :func:`attacks.shadows.make_keep_matrix`; leaving it in would give
    the temporary target's members one more OUT reference than its
    non-members), the population ``z`` is every non-member of model ``k``,
    and the ground truth is ``keep[k]``. AUCs are averaged over ``targets``;
    ties go to the smallest ``a``.

    Args:
        shadow_probs: True-class probabilities ``(m, n)`` or ``(m, n, A)``.
        keep: Boolean ``(m, n)``.
        targets: Indices of the models used as temporary targets.
        grid: Candidate values of ``a`` in ``[0, 1]``.
        gamma: Likelihood-ratio threshold passed to :func:`rmia`.

    Returns:
        The best ``a``.

    Raises:
        ValueError: If a temporary target has samples without an OUT reference
            among the remaining models (with complementary pairs: fewer than 4
            shadow models), or on invalid arguments.
    """
    s = np.asarray(shadow_probs, dtype=np.float64)
    k = np.asarray(keep)
    if k.dtype != np.bool_ or k.ndim != 2 or s.shape[:2] != k.shape:
        raise ValueError(f"shadow_probs {s.shape} and keep {k.shape} must agree on (m, n)")
    if not targets or not grid:
        raise ValueError("targets and grid must be non-empty")
    aucs = np.zeros(len(grid))
    for tk in targets:
        if not 0 <= tk < k.shape[0]:
            raise ValueError(f"target index {tk} out of range for {k.shape[0]} models")
        refs = _references(k, tk)
        if refs.size == 0 or (~k[refs]).sum(axis=0).min() == 0:
            raise ValueError(
                "tuning a needs every sample OUT for some remaining reference model "
                "(with complementary pairs: at least 4 shadow models)"
            )
        z = np.flatnonzero(~k[tk])
        for g, a in enumerate(grid):
            sc = rmia(s[tk], s[refs], k[refs], z, online=False, a=float(a), gamma=gamma)
            aucs[g] += roc_metrics(sc, k[tk], fprs=())["auc"]
    return float(grid[int(np.argmax(aucs))])
