"""The difficulty index: learn on shadows, evaluate on target, rank, feasibility
(difficulty/index.py)."""

import math

import numpy as np
import pytest

from unlearn_audit.difficulty.index import (
    DifficultyIndex,
    apply_index,
    evaluate_on_target,
    feasibility,
    fit_index,
    learn_on_shadows,
    rank,
    spearman,
)

# --- index: learn on shadows, evaluate on target -----------------------------


def _rows(n, seed):
    rng = np.random.default_rng(seed)
    feats = {"mem": rng.random(n), "ent": rng.random(n), "noise": rng.random(n)}
    y = 2 * feats["mem"] + feats["ent"] + 0.05 * rng.normal(size=n)
    return feats, y


def test_fit_index_recovers_linear_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    x[:, 2] = 7.0  # constant feature
    y = 3.0 + 2 * x[:, 0] - x[:, 1]
    idx = fit_index(x, y, alpha=1e-9)
    np.testing.assert_allclose(apply_index(idx, x), y, atol=1e-6)
    assert idx.weights[2] == 0.0
    again = fit_index(x, y, alpha=1e-9)
    assert np.array_equal(idx.weights, again.weights)


def test_learn_then_evaluate_order():
    shadow_feats, shadow_y = _rows(200, 0)
    index = learn_on_shadows(shadow_feats, shadow_y)
    assert isinstance(index, DifficultyIndex) and index.names == ("mem", "ent", "noise")
    target_feats, target_y = _rows(60, 1)
    rep = evaluate_on_target(index, target_feats, target_y)
    assert rep["index"] > 0.9 and rep["n"] == 60 and rep["n_fit"] == 200
    feats = rep["features"]
    assert isinstance(feats, dict)
    assert rep["index"] > max(feats.values()) and abs(feats["noise"]) < 0.35
    with pytest.raises(ValueError, match="learn on shadows"):
        evaluate_on_target(index, shadow_feats, shadow_y)


def test_learn_drops_nan_rows_and_needs_names():
    feats, y = _rows(30, 0)
    y[0] = np.nan
    index = learn_on_shadows(feats, y)
    assert index.n_rows == 29
    with pytest.raises(ValueError, match="missing"):
        apply_index(index, {"mem": np.ones(3)})


def test_spearman():
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 100.0])) == pytest.approx(1)
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([4, 3, 2, 1.0])) == pytest.approx(-1)
    assert math.isnan(spearman(np.ones(5), np.arange(5.0)))
    assert spearman(np.array([1, 2, np.nan, 3, 4.0]), np.arange(5.0)) == pytest.approx(1)


# --- rank and feasibility ---------------------------------------------------


def test_rank_golden_ties_and_nan():
    np.testing.assert_array_equal(rank(np.array([0.1, 0.9, 0.5])), [3, 1, 2])
    tied = rank(np.array([0.5, 0.5, np.nan, 1.0]), ids=np.array([9, 4, 0, 1]))
    np.testing.assert_array_equal(tied, [3, 2, 4, 1])


def test_rank_invariant_to_reordering():
    rng = np.random.default_rng(0)
    v = rng.integers(0, 4, 30).astype(float)  # many ties
    ids = rng.permutation(1000)[:30]
    r = rank(v, ids)
    for seed in range(5):
        p = np.random.default_rng(seed).permutation(30)
        np.testing.assert_array_equal(rank(v[p], ids[p]), r[p])
    assert sorted(r) == list(range(1, 31))


def test_feasibility_share_and_reasons():
    share, flags = feasibility(np.array([0.4, 0.9, 0.5, np.nan]), bar=0.5)
    assert share == 0.5
    assert flags[0] == "" and flags[2] == ""
    assert flags[1].startswith("infeasible at this budget") and "0.900 > bar 0.500" in flags[1]
    assert "no prediction" in flags[3]
