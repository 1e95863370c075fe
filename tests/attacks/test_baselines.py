"""Tests for attacks.baselines."""

from __future__ import annotations

import numpy as np
import pytest

from unlearn_audit.attacks.baselines import loss_attack
from unlearn_audit.attacks.signals import logit_scaled_confidence


def test_loss_attack_is_negative_cross_entropy() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(40, 5))
    labels = rng.integers(0, 5, size=40)
    z = logits - logits.max(axis=1, keepdims=True)
    ce = -(z[np.arange(40), labels] - np.log(np.exp(z).sum(axis=1)))
    scores = loss_attack(logit_scaled_confidence(logits, labels))
    assert scores.shape == (40,)
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, -ce, rtol=1e-5, atol=1e-6)


def test_uses_first_augmentation_only() -> None:
    phi = np.array([[1.0, -50.0, 9.0], [-2.0, 30.0, 0.0]])
    np.testing.assert_array_equal(loss_attack(phi), loss_attack(phi[:, 0]))


def test_higher_confidence_scores_higher() -> None:
    scores = loss_attack(np.array([-1e4, -3.0, 0.0, 3.0, 1e4]))
    assert np.all(np.diff(scores) > 0)
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 2)), np.zeros((3, 0)), np.float64(1.0)])
def test_invalid_shapes(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        loss_attack(bad)
