"""Tests for attacks.rmia against a slow loop written from the paper's equations."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from unlearn_audit.attacks.metrics import roc_metrics
from unlearn_audit.attacks.rmia import rmia, tune_rmia_a
from unlearn_audit.attacks.shadows import make_keep_matrix


def rmia_reference_loop(
    target: np.ndarray,
    shadow: np.ndarray,
    keep: np.ndarray,
    z_index: np.ndarray,
    *,
    online: bool,
    a: float,
    gamma: float,
) -> np.ndarray:
    """Zarifzadeh et al. (ICML 2024): Score(x) = Pr_z(LR(x, z) >= gamma), one pair at a time."""
    t = target.reshape(target.shape[0], -1)
    s = shadow.reshape(shadow.shape[0], shadow.shape[1], -1)
    m, n, n_aug = s.shape

    def pr(i: int, q: int) -> float:
        outs = [float(s[k, i, q]) for k in range(m) if not keep[k, i]]
        if online:
            ins = [float(s[k, i, q]) for k in range(m) if keep[k, i]]
            return 0.5 * (statistics.fmean(ins) + statistics.fmean(outs))
        return 0.5 * ((1 + a) * statistics.fmean(outs) + (1 - a))

    scores = []
    for i in range(n):
        per_query = []
        for q in range(n_aug):
            ratio_x = float(t[i, q]) / pr(i, q)
            hits = 0
            for j in z_index:
                ratio_z = float(t[j, q]) / pr(int(j), q)
                hits += ratio_x / ratio_z >= gamma
            per_query.append(hits / len(z_index))
        scores.append(statistics.fmean(per_query))
    return np.array(scores)


def _problem(
    rng: np.random.Generator, m: int, n: int, n_aug: int, half: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if half:
        keep = make_keep_matrix(m, n, seed=int(rng.integers(1000)))
    else:
        keep = rng.random((m, n)) < 0.4
        keep[0], keep[1] = True, False
    shape = (m, n) if n_aug == 1 else (m, n, n_aug)
    lift = keep if n_aug == 1 else keep[:, :, None]
    shadow = np.clip(rng.beta(2, 2, size=shape) + 0.3 * lift, 0.01, 0.99)
    target = rng.uniform(0.05, 0.95, size=shape[1:])
    return target, shadow, keep


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("n_aug", [1, 3])
@pytest.mark.parametrize("half", [True, False])
@pytest.mark.parametrize("gamma", [1.0, 1.7])
def test_matches_reference_loop(online: bool, n_aug: int, half: bool, gamma: float) -> None:
    rng = np.random.default_rng([int(online), n_aug, int(half), int(gamma * 10)])
    target, shadow, keep = _problem(rng, m=6, n=20, n_aug=n_aug, half=half)
    z = rng.choice(20, size=9, replace=False)
    got = rmia(target, shadow, keep, z, online=online, a=0.4, gamma=gamma)
    want = rmia_reference_loop(target, shadow, keep, z, online=online, a=0.4, gamma=gamma)
    assert got.shape == (20,) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_golden_offline() -> None:
    # one OUT reference per sample, a = 0.5: Pr(x) = (1.5 p_out + 0.5) / 2
    keep = np.array([[False, False, False]])
    shadow = np.array([[0.2, 0.6, 1.0]])  # Pr = 0.4, 0.7, 1.0
    target = np.array([0.8, 0.7, 0.5])  # ratios 2.0, 1.0, 0.5
    scores = rmia(target, shadow, keep, np.arange(3), online=False, a=0.5)
    np.testing.assert_allclose(scores, [1.0, 2 / 3, 1 / 3])
    # gamma 2: only pairs with ratio_x >= 2 ratio_z: x0 dominates x1 (2 >= 2) and x2
    scores = rmia(target, shadow, keep, np.arange(3), online=False, a=0.5, gamma=2.0)
    np.testing.assert_allclose(scores, [2 / 3, 1 / 3, 0.0])


def test_golden_online_uses_equal_weight_in_and_out() -> None:
    # sample 0: IN [0.9], OUT [0.1, 0.3] -> Pr = (0.9 + 0.2) / 2 = 0.55 (not the mean 0.433)
    keep = np.array([[True, False], [False, True], [False, True]])
    shadow = np.array([[0.9, 0.5], [0.1, 0.8], [0.3, 0.6]])
    target = np.array([0.55, 0.55])  # sample 1: Pr = (0.65 + 0.5) / 2 = 0.575
    scores = rmia(target, shadow, keep, np.array([0, 1]), online=True)
    np.testing.assert_allclose(scores, [1.0, 0.5])


def test_offline_a_one_uses_out_mean_and_ignores_in_models() -> None:
    rng = np.random.default_rng(0)
    target, shadow, keep = _problem(rng, m=8, n=30, n_aug=1, half=True)
    z = np.arange(30)
    base = rmia(target, shadow, keep, z, online=False, a=1.0)
    changed = np.where(keep, rng.uniform(size=shadow.shape), shadow)
    np.testing.assert_array_equal(rmia(target, changed, keep, z, online=False, a=1.0), base)
    ratio = target / np.where(~keep, shadow, 0).sum(0) * (~keep).sum(0)
    np.testing.assert_allclose(base, [(ratio <= r).mean() for r in ratio])


def test_score_is_monotone_in_ratio_whatever_the_population() -> None:
    rng = np.random.default_rng(1)
    target, shadow, keep = _problem(rng, m=8, n=50, n_aug=1, half=True)
    full = rmia(target, shadow, keep, np.arange(50), online=True)
    part = rmia(target, shadow, keep, rng.choice(50, 10, replace=False), online=True)
    order = np.argsort(full, kind="stable")
    assert np.all(np.diff(part[order]) >= 0)


def test_invariant_to_sample_order_and_model_order() -> None:
    rng = np.random.default_rng(2)
    target, shadow, keep = _problem(rng, m=6, n=25, n_aug=2, half=False)
    z = np.array([3, 7, 11, 19, 24])
    for online in (True, False):
        base = rmia(target, shadow, keep, z, online=online, a=0.3)
        perm = rng.permutation(25)
        inv = np.argsort(perm)
        got = rmia(target[perm], shadow[:, perm], keep[:, perm], inv[z], online=online, a=0.3)
        np.testing.assert_allclose(got, base[perm], atol=1e-12)
        rows = rng.permutation(6)
        by_model = rmia(target, shadow[rows], keep[rows], z, online=online, a=0.3)
        np.testing.assert_allclose(by_model, base, atol=1e-12)


def test_separates_members_and_beats_raw_confidence() -> None:
    rng = np.random.default_rng(3)
    m, n = 4, 600
    keep = make_keep_matrix(m, n, seed=0)
    hardness = rng.normal(size=n)  # per-sample difficulty the reference models calibrate away

    def probs(member: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(hardness + 1.0 * member + 0.3 * rng.normal(size=member.shape))))

    shadow = probs(keep)
    member = rng.random(n) < 0.5
    target = probs(member)
    z = np.flatnonzero(~member)
    for online in (True, False):
        auc = roc_metrics(rmia(target, shadow, keep, z, online=online), member)["auc"]
        assert auc > roc_metrics(target, member)["auc"] + 0.1
        assert auc > 0.75


def test_probability_underflow_stays_finite() -> None:
    keep = make_keep_matrix(2, 3, seed=0)
    shadow = np.zeros((2, 3))
    scores = rmia(np.array([0.0, 1e-320, 0.5]), shadow, keep, np.arange(3), online=True)
    assert np.isfinite(scores).all()
    assert scores[2] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"a": 1.5}, "a must"),
        ({"gamma": 0.0}, "gamma"),
        ({"z_index": np.array([0, 9])}, "z_index must lie"),
        ({"z_index": np.array([], int)}, "non-empty"),
        ({"z_index": np.array([0.5])}, "integer"),
        ({"target": np.array([0.5, 2.0, 0.1])}, "probabilities"),
        ({"keep": np.ones((2, 3), int)}, "boolean"),
        ({"shadow": np.zeros((2, 4))}, "inconsistent"),
    ],
)
def test_invalid_inputs(kwargs: dict, match: str) -> None:  # type: ignore[type-arg]
    args = {
        "target": np.full(3, 0.5),
        "shadow": np.full((2, 3), 0.5),
        "keep": make_keep_matrix(2, 3, seed=0),
        "z_index": np.arange(3),
    }
    opts = {k: kwargs.pop(k) for k in ("a", "gamma") if k in kwargs}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        rmia(args["target"], args["shadow"], args["keep"], args["z_index"], online=False, **opts)


def test_missing_reference_side_raises() -> None:
    keep = np.array([[True, True, False], [True, False, False]])
    with pytest.raises(ValueError, match="1 of 3 samples have no OUT"):
        rmia(np.full(3, 0.5), np.full((2, 3), 0.5), keep, np.arange(3), online=False)
    keep = np.array([[False, True, False], [False, False, True]])
    with pytest.raises(ValueError, match="1 of 3 samples have no IN"):
        rmia(np.full(3, 0.5), np.full((2, 3), 0.5), keep, np.arange(3), online=True)


def test_tune_a_is_the_grid_argmax_of_auc_on_a_reference_model() -> None:
    rng = np.random.default_rng(4)
    m, n = 6, 300
    keep = make_keep_matrix(m, n, seed=1)
    hardness = rng.normal(size=n)
    shadow = 1 / (1 + np.exp(-(hardness + 1.5 * keep + 0.5 * rng.normal(size=(m, n)))))
    best = tune_rmia_a(shadow, keep)
    # by hand: target 0, references = all but 0 and its complement 1; z = non-members of 0
    refs = [2, 3, 4, 5]
    z = np.flatnonzero(~keep[0])
    aucs = []
    for a in np.round(np.linspace(0, 1, 11), 1):
        sc = rmia(shadow[0], shadow[refs], keep[refs], z, online=False, a=float(a))
        aucs.append(roc_metrics(sc, keep[0])["auc"])
    assert best == pytest.approx(float(np.round(np.linspace(0, 1, 11), 1)[int(np.argmax(aucs))]))
    assert tune_rmia_a(shadow, keep, grid=(0.25,)) == 0.25
    two_targets = tune_rmia_a(shadow, keep, targets=(0, 3))
    assert 0.0 <= two_targets <= 1.0


def test_tune_a_needs_enough_models() -> None:
    keep = make_keep_matrix(2, 10, seed=0)
    with pytest.raises(ValueError, match="at least 4 shadow models"):
        tune_rmia_a(np.full((2, 10), 0.5), keep)
    with pytest.raises(ValueError, match="out of range"):
        tune_rmia_a(np.full((4, 10), 0.5), make_keep_matrix(4, 10, seed=0), targets=(7,))
