"""Tests for attacks.lira against a slow per-sample reference and hand-computed values."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy.stats import norm

from unlearn_audit.attacks.lira import lira
from unlearn_audit.attacks.shadows import make_keep_matrix

MODES = [(online, fixed) for online in (True, False) for fixed in (False, True)]


def lira_reference_loop(
    target: np.ndarray,
    shadow: np.ndarray,
    keep: np.ndarray,
    *,
    online: bool,
    fixed_variance: bool,
    eps: float = 1e-6,
) -> np.ndarray:
    """Plain-Python LiRA, one sample and augmentation at a time (the spec in code)."""
    t = target.reshape(target.shape[0], -1)
    s = shadow.reshape(shadow.shape[0], shadow.shape[1], -1)
    m, n, n_aug = s.shape

    def values(i: int, a: int, side_in: bool) -> list[float]:
        return [float(s[k, i, a]) for k in range(m) if bool(keep[k, i]) == side_in]

    def pooled_std(a: int, side_in: bool) -> float:
        per_sample = [
            statistics.variance(v) for i in range(n) if len(v := values(i, a, side_in)) > 1
        ]
        return max(math.sqrt(statistics.fmean(per_sample)), eps)

    def std(v: list[float], a: int, side_in: bool) -> float:
        if fixed_variance:
            return pooled_std(a, side_in)
        return max(math.sqrt(statistics.variance(v)) if len(v) > 1 else 0.0, eps)

    scores = []
    for i in range(n):
        per_aug = []
        for a in range(n_aug):
            out = values(i, a, False)
            sd_out = std(out, a, False)
            if online:
                inn = values(i, a, True)
                sd_in = std(inn, a, True)
                per_aug.append(
                    norm.logpdf(t[i, a], statistics.fmean(inn), sd_in)
                    - norm.logpdf(t[i, a], statistics.fmean(out), sd_out)
                )
            else:
                per_aug.append(norm.logcdf(t[i, a], statistics.fmean(out), sd_out))
        scores.append(statistics.fmean(per_aug))
    return np.array(scores)


def _random_problem(
    rng: np.random.Generator, m: int, n: int, n_aug: int, half: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if half:
        keep = make_keep_matrix(m, n, seed=int(rng.integers(1000)))
    else:
        keep = rng.random((m, n)) < 0.3
        keep[0] = True  # every sample has an IN model ...
        keep[1] = False  # ... and an OUT model
    shape = (n,) if n_aug == 1 else (n, n_aug)
    shadow = rng.normal(size=(m, *shape)) + 2.0 * keep.reshape(m, n, *([1] * (len(shape) - 1)))
    target = rng.normal(size=shape) + rng.random(n).reshape(n, *([1] * (len(shape) - 1)))
    return target, shadow, keep


@pytest.mark.parametrize(("online", "fixed"), MODES)
@pytest.mark.parametrize("n_aug", [1, 3])
@pytest.mark.parametrize("half", [True, False])
def test_matches_reference_loop(online: bool, fixed: bool, n_aug: int, half: bool) -> None:
    rng = np.random.default_rng([int(online), int(fixed), n_aug, int(half)])
    target, shadow, keep = _random_problem(rng, m=10, n=25, n_aug=n_aug, half=half)
    got = lira(target, shadow, keep, online=online, fixed_variance=fixed)
    want = lira_reference_loop(target, shadow, keep, online=online, fixed_variance=fixed)
    assert got.shape == (25,)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_one_augmentation_2d_equals_1d() -> None:
    rng = np.random.default_rng(0)
    target, shadow, keep = _random_problem(rng, m=8, n=12, n_aug=1, half=True)
    for online, fixed in MODES:
        a = lira(target, shadow, keep, online=online, fixed_variance=fixed)
        b = lira(target[:, None], shadow[:, :, None], keep, online=online, fixed_variance=fixed)
        np.testing.assert_array_equal(a, b)


def test_golden_online_equal_variances() -> None:
    # IN [1, 3]: mu 2, var 2 (ddof=1); OUT [0, -2]: mu -1, var 2; t = 1.
    # llr = -(1 - 2)^2 / 4 + (1 + 1)^2 / 4 = 0.75
    keep = np.array([[True], [True], [False], [False]])
    shadow = np.array([[1.0], [3.0], [0.0], [-2.0]])
    assert lira(np.array([1.0]), shadow, keep)[0] == pytest.approx(0.75, rel=1e-12)
    # offline: log Phi((1 - (-1)) / sqrt(2)) = log(0.5 * erfc(-1))
    offline = lira(np.array([1.0]), shadow, keep, online=False)[0]
    assert offline == pytest.approx(math.log(0.5 * math.erfc(-1.0)), rel=1e-12)


def test_golden_online_unequal_variances() -> None:
    # IN [1, 3]: mu 2, var 2; OUT [0, -4]: mu -2, var 8; t = 1.
    # llr = -1/4 - log sqrt(2) + 9/16 + log(2 sqrt(2)) = 0.3125 + log 2
    keep = np.array([[True], [True], [False], [False]])
    shadow = np.array([[1.0], [3.0], [0.0], [-4.0]])
    got = lira(np.array([1.0]), shadow, keep)[0]
    assert got == pytest.approx(0.3125 + math.log(2.0), rel=1e-12)


def _two_sample_spreads() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # sample 0: IN [1, 3] (var 2), OUT [0, -4] (var 8)
    # sample 1: IN [10, 10] (var 0), OUT [5, 9] (var 8)
    keep = np.array([[True, True], [True, True], [False, False], [False, False]])
    shadow = np.array([[1.0, 10.0], [3.0, 10.0], [0.0, 5.0], [-4.0, 9.0]])
    return np.array([1.0, 10.0]), shadow, keep


def test_fixed_variance_is_pooled_per_side() -> None:
    target, shadow, keep = _two_sample_spreads()
    # pooled IN var = (2 + 0) / 2 = 1; pooled OUT var = (8 + 8) / 2 = 8
    # s0: mu_in 2, mu_out -2: -0.5 * 1 + 0.5 * 9 / 8 + 0.5 * log 8
    # s1: mu_in 10, mu_out 7: 0 + 0.5 * 9 / 8 + 0.5 * log 8
    half_log8 = 0.5 * math.log(8.0)
    want = np.array([-0.5 + 0.5625 + half_log8, 0.5625 + half_log8])
    got = lira(target, shadow, keep, fixed_variance=True)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # the reference-code pitfall (IN std for both sides) gives a different answer
    in_std_both = (
        -0.5 * (target - np.array([2.0, 10.0])) ** 2 + 0.5 * (target - np.array([-2.0, 7.0])) ** 2
    )
    assert not np.allclose(got, in_std_both)
    # ... and so does the raw variance of all IN / all OUT values (between-sample spread)
    raw_in, raw_out = np.var([1, 3, 10, 10], ddof=1), np.var([0, -4, 5, 9], ddof=1)
    raw = (
        -0.5 * (target - np.array([2.0, 10.0])) ** 2 / raw_in
        + 0.5 * (target - np.array([-2.0, 7.0])) ** 2 / raw_out
        + 0.5 * math.log(raw_out / raw_in)
    )
    assert not np.allclose(got, raw)
    offline = lira(target, shadow, keep, online=False, fixed_variance=True)
    z = np.array([3.0, 3.0]) / math.sqrt(8.0)
    np.testing.assert_allclose(offline, norm.logcdf(z), rtol=1e-12)


def test_offline_is_one_sided() -> None:
    # OUT distribution N(0, 1)-like for all three samples; targets below, at, above the mean
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 1))
    shadow = np.repeat((base - base.mean()) / base.std(ddof=1), 3, axis=1)
    keep = np.zeros((200, 3), dtype=bool)
    target = np.array([-10.0, 0.0, 10.0])
    scores = lira(target, shadow, keep, online=False)
    assert scores[0] < scores[1] < scores[2]
    assert scores[1] == pytest.approx(math.log(0.5))
    assert np.isfinite(scores).all()
    # the two-sided negative-density score would wrongly rank the low sample above the mean one
    neg_density = -norm.logpdf(target)
    assert neg_density[0] > neg_density[1]


@pytest.mark.parametrize(("online", "fixed"), MODES)
def test_invariant_to_permuting_samples_and_models(online: bool, fixed: bool) -> None:
    rng = np.random.default_rng(5)
    target, shadow, keep = _random_problem(rng, m=12, n=30, n_aug=3, half=False)
    base = lira(target, shadow, keep, online=online, fixed_variance=fixed)
    perm = rng.permutation(30)
    permuted = lira(
        target[perm], shadow[:, perm], keep[:, perm], online=online, fixed_variance=fixed
    )
    np.testing.assert_allclose(permuted, base[perm], rtol=1e-12, atol=1e-12)
    rows = rng.permutation(12)
    by_model = lira(target, shadow[rows], keep[rows], online=online, fixed_variance=fixed)
    np.testing.assert_allclose(by_model, base, rtol=1e-10, atol=1e-10)


def test_separates_members_on_synthetic_data() -> None:
    rng = np.random.default_rng(1)
    m, n = 16, 400
    keep = make_keep_matrix(m, n, seed=0)
    difficulty = rng.normal(size=n)
    shadow = difficulty + 1.5 * keep + 0.3 * rng.normal(size=(m, n))
    member = rng.random(n) < 0.5
    target = difficulty + 1.5 * member + 0.3 * rng.normal(size=n)
    for online in (True, False):
        scores = lira(target, shadow, keep, online=online, fixed_variance=True)
        auc = (scores[member][:, None] > scores[~member][None, :]).mean()
        assert auc > 0.9


def test_missing_sides_raise() -> None:
    keep = np.array([[True, False, True], [True, True, False]])
    shadow = np.zeros((2, 3))
    with pytest.raises(ValueError, match="1 of 3 samples have no OUT.*more shadow models"):
        lira(np.zeros(3), shadow, keep, online=False)
    keep = np.array([[False, False, True], [True, False, False]])
    with pytest.raises(ValueError, match="1 of 3 samples have no IN"):
        lira(np.zeros(3), shadow, keep)
    assert lira(np.zeros(3), shadow, keep, online=False).shape == (3,)


def test_fixed_variance_needs_two_models_per_side() -> None:
    keep = make_keep_matrix(2, 5, seed=0)
    with pytest.raises(ValueError, match=">= 2 OUT"):
        lira(np.zeros(5), np.zeros((2, 5)), keep, fixed_variance=True)


def test_single_value_side_uses_eps_floor() -> None:
    keep = make_keep_matrix(2, 4, seed=0)
    shadow = np.where(keep, 1.0, 0.0)
    scores = lira(np.where(keep[0], 1.0, 0.0), shadow, keep, eps=1e-3)
    assert np.isfinite(scores).all()
    assert np.all(np.where(keep[0], scores > 0, scores < 0))


@pytest.mark.parametrize(
    ("target", "shadow", "keep", "match"),
    [
        (np.zeros(3), np.zeros((2, 4)), np.ones((2, 4), bool), "inconsistent"),
        (np.zeros((3, 2)), np.zeros((2, 3)), np.ones((2, 3), bool), "inconsistent"),
        (np.zeros(3), np.zeros((2, 3)), np.ones((2, 3), int), "boolean"),
        (np.zeros((3, 1, 1)), np.zeros((2, 3)), np.ones((2, 3), bool), "target"),
        (np.zeros(3), np.zeros(3), np.ones((2, 3), bool), "shadow"),
        (np.array([0.0, np.nan, 0.0]), np.zeros((2, 3)), np.ones((2, 3), bool), "1 non-finite"),
    ],
)
def test_invalid_inputs(
    target: np.ndarray, shadow: np.ndarray, keep: np.ndarray, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        lira(target, shadow, keep)


def test_eps_must_be_positive() -> None:
    keep = make_keep_matrix(4, 3, seed=0)
    with pytest.raises(ValueError, match="eps"):
        lira(np.zeros(3), np.zeros((4, 3)), keep, eps=0.0)


@pytest.mark.parametrize("fixed", [False, True])
def test_offline_ignores_in_models(fixed: bool) -> None:
    # pitfall: offline LiRA must not use IN shadow values (it has none in the threat model)
    rng = np.random.default_rng(7)
    target, shadow, keep = _random_problem(rng, m=10, n=20, n_aug=2, half=True)
    base = lira(target, shadow, keep, online=False, fixed_variance=fixed)
    changed = np.where(keep[:, :, None], 100.0 * rng.normal(size=shadow.shape), shadow)
    np.testing.assert_array_equal(
        lira(target, changed, keep, online=False, fixed_variance=fixed), base
    )


def test_augmented_queries_average_log_ratios_not_signals() -> None:
    # pitfall: averaging the signals over queries first loses the per-query spread.
    # query 0: IN [1, 3], OUT [0, -2], t = 1 -> 0.75 (golden above)
    # query 1: IN [4, 6], OUT [0, 2],  t = 5 -> (-(5-5)^2 + (5-1)^2) / 4 = 4
    keep = np.array([[True], [True], [False], [False]])
    shadow = np.array([[[1.0, 4.0]], [[3.0, 6.0]], [[0.0, 0.0]], [[-2.0, 2.0]]])
    got = lira(np.array([[1.0, 5.0]]), shadow, keep)[0]
    assert got == pytest.approx((0.75 + 4.0) / 2, rel=1e-12)
    mean_first = lira(np.array([3.0]), shadow.mean(axis=2), keep)[0]
    assert mean_first != pytest.approx(got)
