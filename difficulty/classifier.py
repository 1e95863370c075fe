"""The difficulty features of a classifier trained with cross-entropy (docs/difficulty.md).

:class:`ClassifierFeatures` is the :class:`~unlearn_audit.difficulty.rows.FeatureSet` the
``supervised`` paradigm supplies: the bank's memorization (of the true-class confidence)
and LiRA exposure, and the model's own loss, logit margin, gradient norm, Stein
self-score and entanglement (the functions of :mod:`unlearn_audit.difficulty.features`;
their sources are cited there).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from unlearn_audit.difficulty.features import (
    entanglement,
    grad_norms,
    loss_and_margin,
    stein_self_score,
)
from unlearn_audit.difficulty.rows import BANK_FEATURES, ENTANGLEMENT_K, PoolData, grad_chunk
from unlearn_audit.learning.train import predict_logits

#: Feature names, in the order of the ``feature.<name>`` columns and the index.
FEATURES = (*BANK_FEATURES, "loss", "margin", "grad_norm", "stein", "entanglement")


def representation(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Penultimate features ``(n, d)``: the input of the model's last ``nn.Linear``.

    That is the representation a linear head classifies (the MLP's last hidden
    layer, ResNet's pooled features). A model without a ``Linear`` module, or whose
    last one is not called exactly once per sample, gives its logits instead.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    captured: list[torch.Tensor] = []
    logits: list[torch.Tensor] = []

    def hook(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        captured.append(args[0].detach().flatten(1).float().cpu())

    handle = linears[-1].register_forward_pre_hook(hook) if linears else None
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for s in range(0, x.shape[0], batch_size):
                logits.append(model(x[s : s + batch_size].to(device)).flatten(1).float().cpu())
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    rep = torch.cat(captured) if captured else torch.zeros(0)
    if rep.ndim != 2 or rep.shape[0] != x.shape[0]:
        rep = torch.cat(logits) if logits else torch.zeros(0, 1)
    return rep.numpy()


class ClassifierFeatures:
    """The seven features of a classifier (see the module docstring).

    Memorization averages the true-class confidence ``sigmoid(signal)`` (the signal is
    logit-scaled, so this is exact); ``loss``, ``grad_norm`` and ``stein`` enter the
    ridge as ``log1p``.
    """

    names = FEATURES
    tamed = ("loss", "grad_norm", "stein")

    def confidence(self, signal: np.ndarray) -> np.ndarray:
        return np.asarray(expit(signal), dtype=np.float64)

    def model_features(
        self, model: nn.Module, pool: PoolData, forget: np.ndarray, retain: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Loss, margin, gradient norm, Stein self-score and entanglement of ``forget``.

        Args:
            model: A trained classifier (the original, or a shadow for its own rows).
            pool: The pool and the fixed Stein bandwidth.
            forget: Pool indices of the samples to describe (that the model trained on).
            retain: Pool indices of the model's other training samples (entanglement).
        """
        t = torch.as_tensor(forget, device=pool.x.device)
        xf, yf = pool.x[t], pool.y[t]
        logits = predict_logits(model, xf)[:, 0].double().numpy()
        loss, margin = loss_and_margin(logits, pool.labels[forget])
        idx = np.concatenate([forget, retain])
        z = representation(model, pool.x[torch.as_tensor(idx, device=pool.x.device)])
        local = np.arange(idx.size)
        return {
            "loss": loss,
            "margin": margin,
            "grad_norm": grad_norms(model, xf, yf, batch_size=grad_chunk(model)),
            "stein": stein_self_score(model, xf, yf, bandwidth=pool.bandwidth),
            "entanglement": entanglement(
                z, pool.labels[idx], local[: forget.size], local[forget.size :], k=ENTANGLEMENT_K
            ),
        }
