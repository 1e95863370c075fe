"""Tests for attacks.epsilon: per-example epsilon and the competition's forget quality F."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from unlearn_audit.attacks.epsilon import (
    EPSILON_CAP,
    forget_quality,
    per_example_epsilon,
    signals_by_side,
)
from unlearn_audit.attacks.shadows import make_keep_matrix

D = 1e-5


def epsilon_reference_loop(
    unl: list[float], ret: list[float], rule: str, delta: float = D, clip: float = EPSILON_CAP
) -> float:
    """Triantafillou et al. 2024, one rule at a time in plain Python."""
    r_u, r_r = max(unl) - min(unl), max(ret) - min(ret)
    if max(r_u, r_r) > 0 and min(r_u, r_r) / max(r_u, r_r) < 0.01:
        return clip
    values = sorted(set(unl) | set(ret))
    rates = []  # (fpr, fnr)
    if rule in ("single", "both"):
        pos, neg = (ret, unl) if statistics.median(ret) > statistics.median(unl) else (unl, ret)
        for t in [*values, math.inf]:
            tpr = sum(v >= t for v in pos) / len(pos)
            fpr = sum(v >= t for v in neg) / len(neg)
            rates.append((fpr, 1 - tpr))
    if rule in ("double", "both"):
        inside, outside = (ret, unl) if r_r < r_u else (unl, ret)
        for i, lo in enumerate(values):
            for hi in values[i:]:
                tpr = sum(lo <= v <= hi for v in inside) / len(inside)
                fpr = sum(lo <= v <= hi for v in outside) / len(outside)
                rates.append((fpr, 1 - tpr))
    best = 0.0
    for fpr, fnr in rates:
        if fpr == 0 and fnr == 0:
            return clip
        if fpr == 0 or fnr == 0:
            continue
        for a, b in ((fpr, fnr), (fnr, fpr)):
            if 1 - delta - a > 0:
                best = max(best, math.log(1 - delta - a) - math.log(b))
    return min(best, clip)


@pytest.mark.parametrize("rule", ["single", "double", "both"])
@pytest.mark.parametrize("ties", [False, True])
def test_matches_reference_loop(rule: str, ties: bool) -> None:
    rng = np.random.default_rng([len(rule), int(ties)])
    unl = rng.normal(0.6, 1.0, size=(6, 25))
    ret = rng.normal(0.0, rng.uniform(0.5, 2.0, size=25), size=(7, 25))
    if ties:
        unl, ret = np.round(unl), np.round(ret)
    got = per_example_epsilon(unl, ret, rule=rule)
    want = [epsilon_reference_loop(list(unl[:, i]), list(ret[:, i]), rule) for i in range(25)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_golden_overlapping_shift() -> None:
    # unlearned {0,1,2,3} vs retrained {2,3,4,5}: best single rule "x >= 3 -> retrained"
    # has FPR = FNR = 1/4, eps = log((1 - delta - 1/4) / (1/4)); the interval [0, 2] ties it
    unl = np.array([[0.0], [1.0], [2.0], [3.0]])
    ret = unl + 2.0
    want = math.log(0.75 - D) - math.log(0.25)
    for rule in ("single", "double", "both"):
        assert per_example_epsilon(unl, ret, rule=rule)[0] == pytest.approx(want, rel=1e-12)


def test_golden_double_threshold_catches_a_narrow_unlearned_distribution() -> None:
    # retrained values on both sides of a narrow unlearned cluster: one threshold
    # reaches only eps = log(0.5 / 0.25) = log 2 (x >= 2.3: FPR 1/4, FNR 1/2),
    # an interval [2, 2.3] separates perfectly -> the cap
    unl = np.array([[2.0], [2.1], [2.2], [2.3]])
    ret = np.array([[0.0], [1.0], [3.5], [4.5]])
    single = per_example_epsilon(unl, ret, rule="single")[0]
    assert single == pytest.approx(math.log(0.5 - D) - math.log(0.25), rel=1e-12)
    assert per_example_epsilon(unl, ret, rule="double")[0] == EPSILON_CAP
    assert per_example_epsilon(unl, ret)[0] == EPSILON_CAP


def test_identical_distributions_give_zero() -> None:
    rng = np.random.default_rng(0)
    sig = rng.normal(size=(16, 40))
    for rule in ("single", "double", "both"):
        np.testing.assert_array_equal(per_example_epsilon(sig, sig.copy(), rule=rule), 0.0)
    const = np.ones((5, 3))
    np.testing.assert_array_equal(per_example_epsilon(const, const), 0.0)


def test_separated_distributions_hit_the_clip() -> None:
    rng = np.random.default_rng(1)
    unl = rng.normal(10.0, 1.0, size=(8, 30))
    ret = rng.normal(0.0, 1.0, size=(8, 30))
    np.testing.assert_array_equal(per_example_epsilon(unl, ret), EPSILON_CAP)
    np.testing.assert_array_equal(per_example_epsilon(unl, ret, clip=7.0), 7.0)
    np.testing.assert_array_equal(per_example_epsilon(np.ones((3, 2)), np.zeros((3, 2))), 50.0)


def test_peaky_unlearned_distribution_gets_the_clip() -> None:
    ret = np.r_[np.linspace(-3, 3, 7), 0.0035][:, None]
    unl = 1e-3 * np.arange(8)[:, None]  # range 0.007 < 1% of 6, one retrained value inside
    assert per_example_epsilon(unl, ret)[0] == EPSILON_CAP
    assert per_example_epsilon(unl, ret, peaky_ratio=0.0)[0] < EPSILON_CAP


def test_finite_bound_is_at_most_log_of_models() -> None:
    rng = np.random.default_rng(2)
    unl = rng.normal(1.5, 1.0, size=(32, 50))
    ret = rng.normal(0.0, 1.0, size=(32, 50))
    eps = per_example_epsilon(unl, ret)
    finite = eps[eps < EPSILON_CAP]
    assert finite.size and finite.max() <= math.log(32) + 1e-9


def test_invariant_to_sample_and_model_order() -> None:
    rng = np.random.default_rng(3)
    unl, ret = rng.normal(0.5, 1, size=(9, 20)), rng.normal(size=(11, 20))
    base = per_example_epsilon(unl, ret)
    perm = rng.permutation(20)
    np.testing.assert_array_equal(per_example_epsilon(unl[:, perm], ret[:, perm]), base[perm])
    np.testing.assert_array_equal(
        per_example_epsilon(unl[rng.permutation(9)], ret[rng.permutation(11)]), base
    )


@pytest.mark.parametrize(
    ("unl", "ret", "kwargs", "match"),
    [
        (np.zeros((3, 2, 2)), np.zeros((3, 2)), {}, "augmented"),
        (np.zeros((3, 2)), np.zeros((3, 3)), {}, "k2, n"),
        (np.zeros((1, 2)), np.zeros((3, 2)), {}, ">= 2 models"),
        (np.full((3, 2), np.inf), np.zeros((3, 2)), {}, "non-finite"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"rule": "triple"}, "rule"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"delta": 1.0}, "delta"),
    ],
)
def test_invalid_inputs(unl: np.ndarray, ret: np.ndarray, kwargs: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=match):
        per_example_epsilon(unl, ret, **kwargs)


def test_forget_quality_golden() -> None:
    eps = np.array([0.0, 0.49, 0.5, 1.2, 10.0, np.inf])
    # buckets of width 0.5: points 1, 1, 1/2, 1/4, 2^-20, 0
    assert forget_quality(eps) == pytest.approx((2.75 + 2.0**-20) / 6)
    # 64 unlearned models: buckets stop at ceil(log 63) = 5 -> eps 10 earns 0
    assert forget_quality(eps, n_models=64) == pytest.approx(2.75 / 6)
    # 512 models (the competition): ceil(log 511) = 7
    assert forget_quality(np.array([6.9, 7.0]), n_models=512) == pytest.approx(2.0**-13 / 2)
    assert forget_quality(np.zeros(4)) == 1.0
    assert forget_quality(np.array([1.0]), bucket_width=1.0) == 0.5


def test_forget_quality_invalid() -> None:
    for bad in (np.array([]), np.array([-0.1]), np.array([np.nan])):
        with pytest.raises(ValueError, match="non-negative"):
            forget_quality(bad)
    with pytest.raises(ValueError, match="n_models"):
        forget_quality(np.zeros(2), n_models=1)
    with pytest.raises(ValueError, match="bucket_width"):
        forget_quality(np.zeros(2), bucket_width=0.0)


def test_signals_by_side_gathers_each_samples_models() -> None:
    rng = np.random.default_rng(5)
    keep = make_keep_matrix(6, 10, seed=0)
    sig = rng.normal(size=(6, 10, 2))
    u, r = signals_by_side(sig, keep, ~keep, query=1)
    assert u.shape == (3, 10) and r.shape == (3, 10)
    for i in range(10):
        np.testing.assert_array_equal(u[:, i], sig[keep[:, i], i, 1])
        np.testing.assert_array_equal(r[:, i], sig[~keep[:, i], i, 1])
    uneven = keep.copy()
    uneven[0, 0] = not uneven[0, 0]
    with pytest.raises(ValueError, match="vary"):
        signals_by_side(sig, uneven, ~uneven)
    with pytest.raises(ValueError, match="disjoint"):
        signals_by_side(sig, keep, keep)
