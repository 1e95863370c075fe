"""Shadow-free baseline attacks."""

from __future__ import annotations

import numpy as np

from unlearn_audit.attacks.signals import loss_from_signal

__all__ = ["loss_attack"]


def loss_attack(target: np.ndarray) -> np.ndarray:
    """Loss-threshold attack (Yeom, Giacomelli, Fredrikson, Jha, CSF 2018).

    Members tend to have lower training loss, so the score is the negated
    cross-entropy loss of the true class,
    ``score = -loss = -softplus(-phi) = -log(1 + exp(-phi))``,
    where ``phi`` is the logit-scaled confidence (see
    :func:`attacks.signals.loss_from_signal`). Yeom et al. threshold the loss at
    the average training loss; we return the continuous score and leave the
    threshold to the ROC analysis. With augmented queries only augmentation 0
    (by convention the unaugmented query) is used, matching the paper's single
    query.

    Args:
        target: Signals ``phi`` of shape ``(n,)`` or ``(n, A)``.

    Returns:
        float64 scores of shape ``(n,)``; higher = more likely a member.

    Raises:
        ValueError: If ``target`` is not 1-D or 2-D, or has zero augmentations.
    """
    phi = np.asarray(target, dtype=np.float64)
    if phi.ndim == 2:
        if phi.shape[1] == 0:
            raise ValueError("target has zero augmentations")
        phi = phi[:, 0]
    elif phi.ndim != 1:
        raise ValueError(f"target must have shape (n,) or (n, A), got {phi.shape}")
    return -loss_from_signal(phi)
