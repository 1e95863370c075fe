"""Tests for attacks.population: confidence, entropy, modified entropy and SVC MIA-Efficacy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.svm import SVC

from unlearn_audit.attacks.population import (
    confidence_attack,
    entropy_attack,
    modified_entropy_attack,
    svc_mia_efficacy,
)

ATTACKS = [confidence_attack, entropy_attack, modified_entropy_attack]


def _softmax(row: list[float]) -> list[float]:
    m = max(row)
    e = [math.exp(v - m) for v in row]
    return [v / sum(e) for v in e]


def reference_loop(fn_name: str, probs: list[list[float]], labels: list[int]) -> list[float]:
    """The papers' formulas, one sample at a time (Song & Mittal 2021, Sec. 3)."""
    out = []
    for p, y in zip(probs, labels, strict=True):
        if fn_name == "confidence":
            out.append(p[y])
        elif fn_name == "entropy":
            out.append(sum(q * math.log(q) for q in p if q > 0))
        else:
            mentr = -(1 - p[y]) * math.log(p[y])
            mentr -= sum(q * math.log(1 - q) for i, q in enumerate(p) if i != y)
            out.append(-mentr)
    return out


@pytest.mark.parametrize(
    ("fn", "name"),
    [
        (confidence_attack, "confidence"),
        (entropy_attack, "entropy"),
        (modified_entropy_attack, "mentr"),
    ],
)
def test_matches_reference_loop(fn, name: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(30, 5))
    labels = rng.integers(0, 5, size=30)
    probs = [_softmax(list(r)) for r in logits]
    want = reference_loop(name, probs, list(labels))
    np.testing.assert_allclose(fn(logits, labels), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        fn(np.array(probs), labels, from_probs=True), want, rtol=1e-10, atol=1e-12
    )


def test_golden_values() -> None:
    # p = (0.5, 0.25, 0.25), label 0
    probs = np.array([[0.5, 0.25, 0.25]])
    lab = np.array([0])
    assert confidence_attack(probs, lab, from_probs=True)[0] == pytest.approx(0.5)
    # sum p log p = 0.5 log 0.5 + 2 * 0.25 log 0.25 = -1.5 log 2
    assert entropy_attack(probs, lab, from_probs=True)[0] == pytest.approx(-1.5 * math.log(2))
    # Mentr = -0.5 log 0.5 - 2 * 0.25 log 0.75
    mentr = 0.5 * math.log(2) - 0.5 * math.log(0.75)
    assert modified_entropy_attack(probs, lab, from_probs=True)[0] == pytest.approx(-mentr)
    # label 1: Mentr = -0.75 log 0.25 - 0.5 log 0.5 - 0.25 log 0.75
    mentr1 = -0.75 * math.log(0.25) - 0.5 * math.log(0.5) - 0.25 * math.log(0.75)
    got = modified_entropy_attack(probs, np.array([1]), from_probs=True)[0]
    assert got == pytest.approx(-mentr1)


def test_confident_logits_stay_finite_and_ordered() -> None:
    logits = np.array([[1000.0, 0.0, 0.0], [1000.0, 0.0, 0.0], [50.0, 0.0, 0.0]])
    labels = np.array([0, 1, 0])
    m = modified_entropy_attack(logits, labels)
    assert np.isfinite(m).all()
    # correct and confident: ~0. Confidently wrong (label 1, p_0 ~ 1):
    # Mentr ~ -log p_1 - p_0 log(1 - p_0) = 1000 + (1000 - log 2)
    assert m[0] == pytest.approx(0.0, abs=1e-300)
    assert m[1] == pytest.approx(-(2000.0 - math.log(2.0)), rel=1e-12)
    assert m[1] < m[2] < m[0]
    e = entropy_attack(logits, labels)
    assert np.isfinite(e).all() and e[0] == pytest.approx(0.0, abs=1e-300)


def test_modified_entropy_is_monotone_in_true_class_probability_unlike_entropy() -> None:
    # the same output vector, labelled correctly vs incorrectly: entropy cannot tell,
    # modified entropy ranks the correct label as more member-like
    logits = np.array([[4.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    labels = np.array([0, 1])
    e = entropy_attack(logits, labels)
    assert e[0] == e[1]
    m = modified_entropy_attack(logits, labels)
    assert m[0] > m[1]


@pytest.mark.parametrize("fn", ATTACKS)
def test_augmentations_are_averaged_and_order_invariant(fn) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(12, 3, 4))
    labels = rng.integers(0, 4, size=12)
    per_aug = np.stack([fn(logits[:, a], labels) for a in range(3)], axis=1)
    np.testing.assert_allclose(fn(logits, labels), per_aug.mean(axis=1), rtol=1e-12)
    perm = rng.permutation(12)
    np.testing.assert_allclose(fn(logits[perm], labels[perm]), fn(logits, labels)[perm])


@pytest.mark.parametrize(
    ("outputs", "labels", "match"),
    [
        (np.zeros((3, 1)), np.zeros(3, int), "C >= 2"),
        (np.zeros((3, 2)), np.zeros(3), "integer"),
        (np.zeros((3, 2)), np.zeros(2, int), "shape"),
        (np.zeros((3, 2)), np.array([0, 1, 2]), "lie in"),
        (np.full((3, 2), np.nan), np.zeros(3, int), "NaN"),
    ],
)
def test_invalid_inputs(outputs: np.ndarray, labels: np.ndarray, match: str) -> None:
    for fn in ATTACKS:
        with pytest.raises(ValueError, match=match):
            fn(outputs, labels)
    with pytest.raises(ValueError, match="probabilities"):
        confidence_attack(np.array([[1.5, -0.5]]), np.array([0]), from_probs=True)


def test_svc_efficacy_extremes() -> None:
    rng = np.random.default_rng(0)
    retain = 0.95 + 0.02 * rng.random(200)
    nonmember = 0.4 + 0.2 * rng.random(300)
    assert svc_mia_efficacy(retain, nonmember, 0.45 + 0.1 * rng.random(50)) == 1.0
    assert svc_mia_efficacy(retain, nonmember, 0.95 + 0.02 * rng.random(50)) == 0.0


def test_svc_efficacy_matches_direct_fit_on_balanced_subsample() -> None:
    rng = np.random.default_rng(3)
    retain = rng.normal(1.0, 1.0, size=(120, 2))
    nonmember = rng.normal(0.0, 1.0, size=(80, 2))
    forget = rng.normal(0.5, 1.0, size=(40, 2))
    got = svc_mia_efficacy(retain, nonmember, forget, seed=7)
    draw = np.random.default_rng(7)
    r = retain[np.sort(draw.permutation(120)[:80])]
    t = nonmember[np.sort(draw.permutation(80)[:80])]
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(np.r_[r, t], np.r_[np.ones(80), np.zeros(80)])
    assert got == pytest.approx(float(np.mean(clf.predict(forget) == 0)))
    assert svc_mia_efficacy(retain, nonmember, forget, seed=7) == got
    capped = svc_mia_efficacy(retain, nonmember, forget, seed=7, max_per_class=30)
    assert 0.0 <= capped <= 1.0


def test_svc_efficacy_invalid() -> None:
    with pytest.raises(ValueError, match="dimensions"):
        svc_mia_efficacy(np.zeros((3, 2)), np.zeros((3, 1)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        svc_mia_efficacy(np.array([np.nan, 1.0]), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="n >= 1"):
        svc_mia_efficacy(np.zeros(0), np.zeros(2), np.zeros(2))
