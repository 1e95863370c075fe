"""Tests for attacks.signals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_audit.attacks.signals import logit_scaled_confidence, loss_from_signal


def _naive_phi(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Textbook formula via softmax; only valid for moderate logits."""
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    p_y = np.take_along_axis(p, labels[..., None], axis=-1)[..., 0]
    return np.log(p_y) - np.log1p(-p_y)


def test_matches_softmax_formula_for_moderate_logits() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 10))
    labels = rng.integers(0, 10, size=50)
    phi = logit_scaled_confidence(logits, labels)
    assert phi.dtype == np.float32
    assert phi.shape == (50,)
    np.testing.assert_allclose(phi, _naive_phi(logits, labels), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("logits", "label", "expected"),
    [
        ([1e4, 0.0, 0.0], 0, 1e4 - math.log(2.0)),
        ([0.0, 1e4, 1e4 - 1.0], 0, -(1e4 + math.log1p(math.exp(-1.0)))),
        ([-1e4, 1e4], 1, 2e4),
        ([-1e4, 1e4], 0, -2e4),
        ([5e3, 5e3, 5e3, 5e3], 2, -math.log(3.0)),
    ],
)
def test_exact_for_huge_logits(logits: list[float], label: int, expected: float) -> None:
    phi = logit_scaled_confidence(np.array([logits]), np.array([label]))
    assert np.isfinite(phi).all()
    assert phi[0] == pytest.approx(expected, rel=1e-7, abs=1e-6)


def test_huge_logits_against_mpmath() -> None:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3e3, size=(20, 5))
    labels = rng.integers(0, 5, size=20)
    phi = logit_scaled_confidence(logits, labels)
    for i in range(20):
        z = [mpmath.mpf(float(v)) for v in logits[i]]
        others = mpmath.fsum(mpmath.exp(v) for j, v in enumerate(z) if j != labels[i])
        expected = float(z[labels[i]] - mpmath.log(others))
        assert phi[i] == pytest.approx(expected, rel=1e-6)


def test_float32_input_is_computed_in_float64() -> None:
    logits = np.array([[30.0, 0.0, 0.0]], dtype=np.float32)
    phi = logit_scaled_confidence(logits, np.array([0]))
    assert phi[0] == pytest.approx(30.0 - math.log(2.0), rel=1e-7)


def test_broadcast_over_leading_model_axis() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(4, 6, 3))  # (m, n, C)
    labels = rng.integers(0, 3, size=6)
    phi = logit_scaled_confidence(logits, labels)
    assert phi.shape == (4, 6)
    for k in range(4):
        np.testing.assert_array_equal(phi[k], logit_scaled_confidence(logits[k], labels))


def test_augmentation_axis_needs_column_labels() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 2, 4))  # (n, A, C)
    labels = rng.integers(0, 4, size=5)
    phi = logit_scaled_confidence(logits, labels[:, None])
    assert phi.shape == (5, 2)
    for a in range(2):
        np.testing.assert_array_equal(phi[:, a], logit_scaled_confidence(logits[:, a], labels))
    with pytest.raises(ValueError, match="broadcast"):
        logit_scaled_confidence(logits, labels)


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        (np.zeros((3, 1)), np.zeros(3, dtype=int), "C >= 2"),
        (np.zeros((3, 2)), np.zeros(3), "integer"),
        (np.zeros((3, 2)), np.array([0, 1, 2]), r"\[0, 2\)"),
        (np.zeros((3, 2)), np.array([0, -1, 1]), r"\[0, 2\)"),
    ],
)
def test_invalid_inputs(logits: np.ndarray, labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        logit_scaled_confidence(logits, labels)


def test_loss_matches_cross_entropy() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=4.0, size=(30, 7))
    labels = rng.integers(0, 7, size=30)
    z = logits - logits.max(axis=1, keepdims=True)
    ce = -(z[np.arange(30), labels] - np.log(np.exp(z).sum(axis=1)))
    loss = loss_from_signal(logit_scaled_confidence(logits, labels))
    np.testing.assert_allclose(loss, ce, rtol=1e-5, atol=1e-6)


def test_loss_is_stable_at_extremes() -> None:
    loss = loss_from_signal(np.array([-1e4, 0.0, 1e4, 700.0]))
    assert np.isfinite(loss).all()
    assert loss[0] == pytest.approx(1e4)
    assert loss[1] == pytest.approx(math.log(2.0))
    assert loss[2] == 0.0
    assert loss[3] == pytest.approx(math.exp(-700.0), rel=1e-12, abs=0.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=20))
def test_loss_nonnegative_and_decreasing(values: list[float]) -> None:
    phi = np.sort(np.array(values))
    loss = loss_from_signal(phi)
    assert np.all(loss >= 0.0)
    assert np.all(np.diff(loss) <= 0.0)
