"""Tests for attacks.metrics: ROC, AUC, TPR at low FPR, bootstrap intervals."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_audit.attacks.metrics import (
    _boot_aucs,
    auc_ci,
    auc_difference_ci,
    roc_curve,
    roc_metrics,
    tpr_at_fpr_ci,
)


def _auc_double_loop(scores: np.ndarray, member: np.ndarray) -> float:
    pos = [s for s, m in zip(scores, member, strict=True) if m]
    neg = [s for s, m in zip(scores, member, strict=True) if not m]
    total = 0.0
    for p in pos:
        for q in neg:
            total += 1.0 if p > q else 0.5 if p == q else 0.0
    return total / (len(pos) * len(neg))


def test_golden_auc() -> None:
    res = roc_metrics(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0]))
    assert res["auc"] == 0.75
    assert set(res["tpr_at_fpr"]) == {"0.001", "0.01", "0.05"}
    # ROC points (0,0) (0,.5) (.5,.5) (.5,1) (1,1): best (TPR + 1 - FPR) / 2 = 0.75
    assert res["balanced_accuracy"] == 0.75
    assert set(res) == {"auc", "tpr_at_fpr", "balanced_accuracy"}


def test_golden_auc_with_ties() -> None:
    # pairs: (1>0.5) (1>0) (0.5=0.5 -> 1/2) (0.5>0) -> 3.5 / 4
    scores, member = np.array([1.0, 0.5, 0.5, 0.0]), np.array([True, True, False, False])
    assert roc_metrics(scores, member)["auc"] == 0.875
    fpr, tpr = roc_curve(scores, member)
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 1.0, 1.0])
    assert roc_metrics(np.full(4, 0.3), member)["auc"] == 0.5


def test_golden_tpr_at_fpr() -> None:
    pos = [10.0, 9.0, 5.0, 4.0, 1.0]
    neg = [8.0, 7.0, 6.0, 3.0, 2.0, 0.0, -1.0, -2.0, -3.0, -4.0]
    scores = np.array(pos + neg)
    member = np.array([True] * 5 + [False] * 10)
    res = roc_metrics(scores, member, fprs=(0.0, 0.1, 0.25, 0.3, 0.5, 1.0))
    assert res["tpr_at_fpr"] == {
        "0": 0.4,
        "0.1": 0.4,
        "0.25": 0.4,
        "0.3": 0.8,
        "0.5": 1.0,
        "1": 1.0,
    }
    assert res["auc"] == pytest.approx(_auc_double_loop(scores, member))


def test_tpr_at_low_fpr_can_be_zero_with_few_negatives() -> None:
    res = roc_metrics(np.array([3.0, 2.0, 1.0]), np.array([0, 1, 1]), fprs=(0.001, 0.01, 0.05))
    assert res["tpr_at_fpr"] == {"0.001": 0.0, "0.01": 0.0, "0.05": 0.0}


def test_roc_curve_endpoints_and_ties_as_one_step() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=60).astype(float)
    member = rng.random(60) < 0.4
    fpr, tpr = roc_curve(scores, member)
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert len(fpr) == len(np.unique(scores)) + 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(roc_metrics(scores, member)["auc"])


def test_infinite_scores_tie() -> None:
    scores = np.array([np.inf, np.inf, -np.inf, 0.0])
    member = np.array([1, 0, 0, 1])
    assert roc_metrics(scores, member)["auc"] == pytest.approx(_auc_double_loop(scores, member))
    assert len(roc_curve(scores, member)[0]) == 4


@settings(max_examples=100, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(-3, 3), st.booleans()), min_size=2, max_size=40),
)
def test_auc_matches_double_loop(data: list[tuple[int, bool]]) -> None:
    scores = np.array([float(s) for s, _ in data])
    member = np.array([m for _, m in data])
    if member.all() or not member.any():
        with pytest.raises(ValueError, match="members"):
            roc_metrics(scores, member)
        return
    assert roc_metrics(scores, member)["auc"] == pytest.approx(
        _auc_double_loop(scores, member), abs=1e-12
    )


@settings(max_examples=100, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(-5, 5), st.booleans()), min_size=2, max_size=50),
    seed=st.integers(0, 2**32 - 1),
)
def test_auc_invariant_to_order(data: list[tuple[int, bool]], seed: int) -> None:
    scores = np.array([float(s) for s, _ in data])
    member = np.array([m for _, m in data])
    if member.all() or not member.any():
        return
    perm = np.random.default_rng(seed).permutation(len(data))
    a = roc_metrics(scores, member, fprs=(0.1, 0.5))
    b = roc_metrics(scores[perm], member[perm], fprs=(0.1, 0.5))
    assert a == b


@pytest.mark.parametrize(
    ("scores", "member", "match"),
    [
        (np.array([1.0, 2.0]), np.array([1, 1]), "0 non-members"),
        (np.array([1.0, 2.0]), np.array([0, 0]), "0 members"),
        (np.array([1.0, np.nan, np.nan]), np.array([0, 1, 1]), "2 NaN"),
        (np.array([1.0, 2.0]), np.array([0, 1, 1]), "equal length"),
        (np.array([1.0, 2.0]), np.array([0, 2]), "0/1"),
    ],
)
def test_invalid_inputs(scores: np.ndarray, member: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        roc_metrics(scores, member)
    with pytest.raises(ValueError, match=match):
        auc_ci(scores, member, n_boot=10)


def test_invalid_fpr_and_boot_args() -> None:
    scores, member = np.array([1.0, 0.0]), np.array([1, 0])
    with pytest.raises(ValueError, match="FPR"):
        roc_metrics(scores, member, fprs=(1.5,))
    with pytest.raises(ValueError, match="n_boot"):
        auc_ci(scores, member, n_boot=0)
    with pytest.raises(ValueError, match="level"):
        auc_difference_ci(scores, scores, member, level=1.0)


def test_bootstrap_replicates_match_explicit_resampling() -> None:
    rng = np.random.default_rng(3)
    member = rng.random(40) < 0.3
    a = rng.integers(0, 6, size=40).astype(float)  # ties on purpose
    b = rng.normal(size=40)
    boot_a, boot_b = _boot_aucs([a, b], member, 25, seed=9)
    pos, neg = np.flatnonzero(member), np.flatnonzero(~member)
    draws = np.random.default_rng(9)
    pos_draw = draws.integers(0, pos.size, size=(25, pos.size))
    neg_draw = draws.integers(0, neg.size, size=(25, neg.size))
    for r in range(25):
        idx = np.concatenate([pos[pos_draw[r]], neg[neg_draw[r]]])
        lab = np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)]
        assert boot_a[r] == pytest.approx(_auc_double_loop(a[idx], lab), abs=1e-12)
        assert boot_b[r] == pytest.approx(_auc_double_loop(b[idx], lab), abs=1e-12)


def test_identical_scores_give_exact_zero_difference() -> None:
    rng = np.random.default_rng(0)
    member = rng.random(200) < 0.5
    scores = rng.normal(size=200) + member
    res = auc_difference_ci(scores, scores.copy(), member, n_boot=200, seed=1)
    assert res == {"diff": 0.0, "low": 0.0, "high": 0.0, "n_boot": 200, "level": 0.95}


def test_separated_vs_chance_excludes_zero() -> None:
    rng = np.random.default_rng(1)
    member = np.r_[np.ones(100, bool), np.zeros(300, bool)]
    strong = rng.normal(size=400) + 3.0 * member
    chance = rng.normal(size=400)
    res = auc_difference_ci(strong, chance, member, n_boot=500, seed=0)
    assert res["low"] > 0.2
    assert res["low"] <= res["diff"] <= res["high"]
    flipped = auc_difference_ci(chance, strong, member, n_boot=500, seed=0)
    assert flipped["high"] < 0


def test_auc_ci_brackets_point_and_is_seeded() -> None:
    rng = np.random.default_rng(2)
    member = rng.random(300) < 0.3
    scores = rng.normal(size=300) + member
    res = auc_ci(scores, member, n_boot=400, seed=5)
    assert set(res) == {"auc", "low", "high"}
    assert res["low"] < res["auc"] < res["high"]
    assert res["auc"] == roc_metrics(scores, member)["auc"]
    assert auc_ci(scores, member, n_boot=400, seed=5) == res
    assert auc_ci(scores, member, n_boot=400, seed=6) != res
    wider = auc_ci(scores, member, n_boot=400, seed=5, level=0.99)
    assert wider["low"] <= res["low"] and wider["high"] >= res["high"]


def test_bootstrap_speed() -> None:
    rng = np.random.default_rng(0)
    member = np.r_[np.ones(100, bool), np.zeros(900, bool)]
    a, b = rng.normal(size=1000) + member, rng.normal(size=1000)
    start = time.perf_counter()
    auc_difference_ci(a, b, member, n_boot=1000)
    # about 0.05 s on a laptop-class CPU; generous bound against CI noise
    assert time.perf_counter() - start < 2.0


def _balanced_accuracy_loop(scores: np.ndarray, member: np.ndarray) -> float:
    best = 0.5
    for t in [*scores, np.inf]:
        tpr = np.mean(scores[member] >= t)
        tnr = np.mean(scores[~member] < t)
        best = max(best, (tpr + tnr) / 2)
    return float(best)


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(-4, 4), st.booleans()), min_size=2, max_size=40),
)
def test_balanced_accuracy_and_tpr_match_loops(data: list[tuple[int, bool]]) -> None:
    from unlearn_audit.attacks.metrics import _allowed_false_positives, _tpr_at

    scores = np.array([float(s) for s, _ in data])
    member = np.array([m for _, m in data])
    if member.all() or not member.any():
        return
    fprs = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)
    res = roc_metrics(scores, member, fprs=fprs)
    assert res["balanced_accuracy"] == pytest.approx(_balanced_accuracy_loop(scores, member))
    pos, neg = scores[member], scores[~member]
    for f in fprs:
        k = _allowed_false_positives(f, neg.size)
        assert _tpr_at(pos, neg, k) == res["tpr_at_fpr"][format(f, "g")]


def test_tpr_at_fpr_ci() -> None:
    rng = np.random.default_rng(0)
    member = rng.random(2000) < 0.5
    scores = rng.normal(size=2000) + 1.5 * member
    res = tpr_at_fpr_ci(scores, member, n_boot=200, seed=3)
    point = roc_metrics(scores, member)
    assert set(res) == {"0.001", "0.01", "0.05"}
    for key, item in res.items():
        assert item["tpr"] == point["tpr_at_fpr"][key]
        assert item["low"] <= item["tpr"] <= item["high"]
    assert res["0.05"]["low"] > res["0.001"]["low"]
    assert tpr_at_fpr_ci(scores, member, n_boot=200, seed=3) == res
    with_ci = roc_metrics(scores, member, ci=True, n_boot=200, seed=3)
    assert with_ci["tpr_at_fpr_ci"] == {k: [v["low"], v["high"]] for k, v in res.items()}
    with pytest.raises(ValueError, match="FPR"):
        tpr_at_fpr_ci(scores, member, fprs=(2.0,))
    with pytest.raises(ValueError, match="n_boot"):
        tpr_at_fpr_ci(scores, member, n_boot=0)
