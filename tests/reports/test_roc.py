"""The ROC helper against hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from unlearn_audit.reports.roc import roc_auc, roc_curve


def test_four_samples_distinct_scores() -> None:
    # Descending: 0.9 (pos), 0.6 (neg), 0.4 (pos), 0.1 (neg).
    fpr, tpr = roc_curve(np.array([0.9, 0.4]), np.array([0.6, 0.1]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert roc_auc(fpr, tpr) == pytest.approx(0.75)


def test_four_samples_with_a_tie_is_one_step() -> None:
    # Descending: 0.8 (pos), then a tie at 0.5 (pos and neg) taken as one diagonal step.
    fpr, tpr = roc_curve(np.array([0.8, 0.5]), np.array([0.5, 0.2]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 1.0, 1.0]
    # Mann-Whitney with ties counted as one half: (1 + 1 + 0.5 + 1) / 4.
    assert roc_auc(fpr, tpr) == pytest.approx(0.875)


def test_all_tied_scores_give_the_chance_diagonal() -> None:
    fpr, tpr = roc_curve(np.ones(3), np.ones(5))
    assert fpr.tolist() == [0.0, 1.0]
    assert tpr.tolist() == [0.0, 1.0]
    assert roc_auc(fpr, tpr) == pytest.approx(0.5)


def test_auc_matches_pairwise_probability_on_random_scores() -> None:
    rng = np.random.default_rng(1)
    pos = np.round(rng.normal(1.0, 1.0, 300), 1)  # rounding forces many ties
    neg = np.round(rng.normal(0.0, 1.0, 400), 1)
    fpr, tpr = roc_curve(pos, neg)
    diff = pos[:, None] - neg[None, :]
    expected = float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))
    assert roc_auc(fpr, tpr) == pytest.approx(expected)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("pos", "neg"), [([], [0.1]), ([0.1], []), ([np.nan], [0.1]), ([0.2], [np.inf])]
)
def test_rejects_empty_or_non_finite(pos: list[float], neg: list[float]) -> None:
    with pytest.raises(ValueError):
        roc_curve(np.array(pos, dtype=float), np.array(neg, dtype=float))
