"""Tests for attacks.ulira against a per-sample reference loop (Hayes et al. 2024)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy.stats import norm

from unlearn_audit.attacks.lira import lira
from unlearn_audit.attacks.metrics import roc_metrics
from unlearn_audit.attacks.shadows import make_keep_matrix
from unlearn_audit.attacks.ulira import ulira


def ulira_reference_loop(
    target: np.ndarray,
    shadow: np.ndarray,
    unlearned: np.ndarray,
    out: np.ndarray,
    *,
    fixed_variance: bool,
    eps: float = 1e-6,
) -> np.ndarray:
    """log N(t; unlearned) - log N(t; never trained), per sample and query, averaged."""
    t = target.reshape(target.shape[0], -1)
    s = shadow.reshape(shadow.shape[0], shadow.shape[1], -1)
    m, n, n_aug = s.shape

    def values(i: int, a: int, mask: np.ndarray) -> list[float]:
        return [float(s[k, i, a]) for k in range(m) if mask[k, i]]

    def std(i: int, a: int, mask: np.ndarray) -> float:
        if fixed_variance:
            pooled = [statistics.variance(v) for j in range(n) if len(v := values(j, a, mask)) > 1]
            return max(math.sqrt(statistics.fmean(pooled)), eps)
        v = values(i, a, mask)
        return max(math.sqrt(statistics.variance(v)) if len(v) > 1 else 0.0, eps)

    scores = []
    for i in range(n):
        per_aug = []
        for a in range(n_aug):
            mu_u = statistics.fmean(values(i, a, unlearned))
            mu_o = statistics.fmean(values(i, a, out))
            per_aug.append(
                norm.logpdf(t[i, a], mu_u, std(i, a, unlearned))
                - norm.logpdf(t[i, a], mu_o, std(i, a, out))
            )
        scores.append(statistics.fmean(per_aug))
    return np.array(scores)


def _bank(
    rng: np.random.Generator, m: int, n: int, n_aug: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shadows: IN models unlearn some samples; masks cover 3 states (unlearned/out/neither)."""
    keep = make_keep_matrix(m, n, seed=int(rng.integers(100)))
    forget = rng.random((m, n)) < 0.6
    unlearned = keep & forget
    unlearned[0] = True  # every sample has an unlearned model ...
    keep[0] = True
    out = ~keep
    out[1] = True  # ... and a never-trained one
    unlearned[1] = False
    shape = (m, n) if n_aug == 1 else (m, n, n_aug)
    lift = (1.0 * unlearned + 2.0 * (keep & ~unlearned)).reshape(m, n, *([1] * (n_aug > 1)))
    shadow = rng.normal(size=shape) + lift
    target = rng.normal(size=shape[1:]) + rng.random(n).reshape(n, *([1] * (n_aug > 1)))
    return target, shadow, unlearned, out


@pytest.mark.parametrize("fixed", [False, True])
@pytest.mark.parametrize("n_aug", [1, 3])
def test_matches_reference_loop(fixed: bool, n_aug: int) -> None:
    rng = np.random.default_rng([int(fixed), n_aug])
    target, shadow, unlearned, out = _bank(rng, m=12, n=20, n_aug=n_aug)
    got = ulira(target, shadow, unlearned, out, fixed_variance=fixed)
    want = ulira_reference_loop(target, shadow, unlearned, out, fixed_variance=fixed)
    assert got.shape == (20,) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_golden_value() -> None:
    # unlearned [1, 3]: mu 2, var 2; never trained [0, -2]: mu -1, var 2; t = 1
    # log N(1; 2, 2) - log N(1; -1, 2) = (-(1)^2 + (2)^2) / 4 = 0.75
    unlearned = np.array([[True], [True], [False], [False]])
    shadow = np.array([[1.0], [3.0], [0.0], [-2.0]])
    assert ulira(np.array([1.0]), shadow, unlearned, ~unlearned)[0] == pytest.approx(0.75)


def test_equals_online_lira_when_masks_are_keep_and_not_keep() -> None:
    rng = np.random.default_rng(0)
    keep = make_keep_matrix(8, 15, seed=0)
    shadow = rng.normal(size=(8, 15, 2)) + keep[:, :, None]
    target = rng.normal(size=(15, 2))
    for fixed in (False, True):
        np.testing.assert_array_equal(
            ulira(target, shadow, keep, ~keep, fixed_variance=fixed),
            lira(target, shadow, keep, online=True, fixed_variance=fixed),
        )


def test_models_on_neither_side_are_ignored() -> None:
    rng = np.random.default_rng(1)
    target, shadow, unlearned, out = _bank(rng, m=10, n=12, n_aug=1)
    base = ulira(target, shadow, unlearned, out)
    neither = ~(unlearned | out)
    assert neither.any()
    noisy = np.where(neither, 1e6 * rng.normal(size=shadow.shape), shadow)
    np.testing.assert_array_equal(ulira(target, noisy, unlearned, out), base)


def test_invariant_to_sample_and_model_order() -> None:
    rng = np.random.default_rng(2)
    target, shadow, unlearned, out = _bank(rng, m=10, n=16, n_aug=2)
    base = ulira(target, shadow, unlearned, out)
    perm = rng.permutation(16)
    got = ulira(target[perm], shadow[:, perm], unlearned[:, perm], out[:, perm])
    np.testing.assert_allclose(got, base[perm], rtol=1e-12)
    rows = rng.permutation(10)
    np.testing.assert_allclose(
        ulira(target, shadow[rows], unlearned[rows], out[rows]), base, rtol=1e-10
    )


def test_tells_residual_from_retrained_targets() -> None:
    # unlearning leaves a residual +1 on forgotten samples; a retrained target has none
    rng = np.random.default_rng(3)
    m, n = 32, 300
    keep = make_keep_matrix(m, n, seed=0)
    difficulty = rng.normal(size=n)
    shadow = difficulty + 1.0 * keep + 0.3 * rng.normal(size=(m, n))
    was_unlearned = rng.random(n) < 0.5
    target = difficulty + 1.0 * was_unlearned + 0.3 * rng.normal(size=n)
    scores = ulira(target, shadow, keep, ~keep, fixed_variance=True)
    assert roc_metrics(scores, was_unlearned)["auc"] > 0.9


def test_invalid_inputs() -> None:
    keep = make_keep_matrix(4, 3, seed=0)
    with pytest.raises(ValueError, match="both unlearned and out"):
        ulira(np.zeros(3), np.zeros((4, 3)), keep, np.ones((4, 3), bool))
    with pytest.raises(ValueError, match="out must be a boolean"):
        ulira(np.zeros(3), np.zeros((4, 3)), keep, (~keep).astype(int))
    none_unlearned = np.zeros((4, 3), bool)
    none_unlearned[:, :2] = keep[:, :2]
    with pytest.raises(ValueError, match="1 of 3 samples have no unlearned"):
        ulira(np.zeros(3), np.zeros((4, 3)), none_unlearned, ~keep)
    with pytest.raises(ValueError, match="eps"):
        ulira(np.zeros(3), np.zeros((4, 3)), keep, ~keep, eps=-1.0)
