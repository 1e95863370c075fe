"""Per-example membership signals computed from model logits.

The signal used throughout the package is the *logit-scaled confidence* of
Carlini et al., "Membership Inference Attacks From First Principles"
(IEEE S&P 2022), Sec. IV (their "logit scaling" of the model confidence):

    phi(x, y) = log( p_y / (1 - p_y) ) = log p_y - log sum_{y' != y} p_{y'},

where ``p = softmax(z)`` for the logit vector ``z``. Because the softmax
normaliser cancels, ``phi = z_y - logsumexp_{y' != y} z_{y'}``, which is what we
compute: subtracting two softmax log-probabilities would lose all precision for
confident models (``1 - p_y`` underflows to 0 in floating point as soon as the
margin exceeds ~37 in float64, ~17 in float32).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

__all__ = ["logit_scaled_confidence", "loss_from_signal"]


def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Logit-scaled confidence of the true class, computed stably.

    Implements Carlini et al. (2022), Sec. IV (logit scaling):
    ``phi = log p_y - log sum_{y' != y} p_{y'} = z_y - logsumexp_{y' != y} z_{y'}``.
    The computation runs in float64 directly on the logits (never softmax then
    log), so it is exact up to float64 rounding even for logits of size 1e4.

    Broadcasting rule: the class axis is the *last* axis of ``logits``, shape
    ``(*batch, C)``. ``labels`` must be broadcastable, under ordinary NumPy rules
    (trailing axes aligned), to ``batch = logits.shape[:-1]``. Examples:

    * ``logits (n, C)``, ``labels (n,)`` -> ``(n,)``.
    * ``logits (m, n, C)`` (m models), ``labels (n,)`` -> ``(m, n)``.
    * ``logits (n, A, C)`` (A augmented queries per sample): pass
      ``labels[:, None]`` (shape ``(n, 1)``) -> ``(n, A)``. Passing ``labels``
      of shape ``(n,)`` here is an error unless ``n == A`` — NumPy aligns
      trailing axes, so it would pair labels with augmentations.

    Args:
        logits: Real array of shape ``(*batch, C)`` with ``C >= 2``.
        labels: Integer array of true classes in ``[0, C)``, broadcastable to
            ``logits.shape[:-1]``.

    Returns:
        float32 array of shape ``logits.shape[:-1]``; higher means the model is
        more confident in the true class (more likely a member).

    Raises:
        ValueError: If ``logits`` has fewer than 2 classes, ``labels`` is not an
            integer array, a label is out of range, or shapes do not broadcast.
    """
    z = np.asarray(logits, dtype=np.float64)
    lab = np.asarray(labels)
    if z.ndim < 1 or z.shape[-1] < 2:
        raise ValueError(f"logits must have shape (..., C) with C >= 2, got {z.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be an integer array, got dtype {lab.dtype}")
    n_classes = z.shape[-1]
    batch = z.shape[:-1]
    try:
        lab_b = np.broadcast_to(lab, batch)
    except ValueError as err:
        raise ValueError(
            f"labels of shape {lab.shape} do not broadcast to logits.shape[:-1] = {batch}; "
            "for logits (n, A, C) pass labels[:, None]"
        ) from err
    if lab_b.size and (lab_b.min() < 0 or lab_b.max() >= n_classes):
        raise ValueError(
            f"labels must lie in [0, {n_classes}), got range [{lab_b.min()}, {lab_b.max()}]"
        )
    idx = lab_b.astype(np.intp)[..., None]
    z_true = np.take_along_axis(z, idx, axis=-1)[..., 0]
    others = z.copy()
    np.put_along_axis(others, idx, -np.inf, axis=-1)
    phi = z_true - logsumexp(others, axis=-1)
    return np.asarray(phi, dtype=np.float32)


def loss_from_signal(phi: np.ndarray) -> np.ndarray:
    """Cross-entropy loss of the true class recovered from the signal ``phi``.

    Since ``phi = log(p_y / (1 - p_y))``, ``p_y = sigmoid(phi)`` and the
    cross-entropy loss is ``-log p_y = softplus(-phi) = log(1 + exp(-phi))``,
    evaluated as ``logaddexp(0, -phi)`` so it neither overflows for very
    negative ``phi`` nor loses precision for very positive ``phi``.

    Args:
        phi: Logit-scaled confidences of any shape.

    Returns:
        float64 array of the same shape with non-negative losses.
    """
    p = np.asarray(phi, dtype=np.float64)
    return np.asarray(np.logaddexp(0.0, -p), dtype=np.float64)
