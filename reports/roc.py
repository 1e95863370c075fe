"""ROC curves computed directly from membership scores (numpy only).

Scores follow the samples.csv convention: higher means "more likely a member". The
positive class is the forget set, the negative class the non-members.
"""

from __future__ import annotations

import numpy as np


def roc_curve(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Computes the empirical ROC curve of a score-threshold classifier.

    The classifier predicts "member" when ``score >= threshold``. One point is emitted
    per distinct score value (tied scores move the curve in a single, possibly
    diagonal, step), preceded by the origin ``(0, 0)``; the last point is ``(1, 1)``.

    Args:
        positive: Scores of positive samples (e.g. the forget set).
        negative: Scores of negative samples (e.g. non-members).

    Returns:
        ``(fpr, tpr)`` as float arrays of equal length, both non-decreasing.

    Raises:
        ValueError: If either class is empty or any score is not finite.
    """
    pos = np.asarray(positive, dtype=float).ravel()
    neg = np.asarray(negative, dtype=float).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError("roc_curve needs at least one positive and one negative score")
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(neg))):
        raise ValueError("roc_curve scores must be finite")
    scores = np.concatenate([pos, neg])
    is_pos = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    order = np.argsort(-scores, kind="mergesort")
    scores = scores[order]
    is_pos = is_pos[order]
    # Last index of every run of equal scores: the curve only moves once per distinct value.
    last_of_run = np.flatnonzero(np.diff(scores) != 0)
    ends = np.concatenate([last_of_run, [scores.size - 1]])
    true_pos = np.cumsum(is_pos)[ends]
    false_pos = (ends + 1) - true_pos
    tpr = np.concatenate([[0.0], true_pos / pos.size])
    fpr = np.concatenate([[0.0], false_pos / neg.size])
    return fpr, tpr


def roc_auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under an ROC curve by the trapezoidal rule.

    With :func:`roc_curve` output this equals the Mann-Whitney probability that a random
    positive outscores a random negative, counting ties as one half.

    Args:
        fpr: False-positive rates, non-decreasing.
        tpr: True-positive rates, same length as ``fpr``.

    Returns:
        The area, in ``[0, 1]``.
    """
    x = np.asarray(fpr, dtype=float)
    y = np.asarray(tpr, dtype=float)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
