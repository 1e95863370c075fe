"""The rows the difficulty index learns on and is judged on: features and outcomes.

For every forget sample of the audit the features (:mod:`unlearn_audit.difficulty.features`)
are computed once from the original model and the shadow bank: the *audited* rows
(:func:`target_rows`). The *fitting* rows (:func:`shadow_rows`) are shadow ``k`` and
sample ``i ∈ IN_k ∩ forget`` (which it unlearned). Their features come from shadow
``k``'s own trained model exactly as the audited rows' come from the original (the
model-dependent ones: loss, margin, gradient norm, Stein score, entanglement, LiRA
exposure), and their bank features leave shadow ``k`` out (memorization, and the other
shadows calibrate its LiRA exposure), so a shadow row looks to the index like an
audited row. A fitting row's outcome is the position of the *unlearned* shadow ``k``'s
signal on ``i`` among the shadows that never trained on ``i``
(:func:`shadow_outcomes`, on the scale of
:func:`~unlearn_audit.difficulty.features.residual_from_bank`); an audited row's is the
audited model's (:func:`target_outcome`). Every shadow is used: after the bank is
trained the extra cost is a forward pass and per-sample gradients on ``F_k`` per shadow.

Everything comes in as plain arrays, models and a loader (no audit type), so this
floor sits below the audit (docs/difficulty.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from unlearn_audit.attacks.registry import get as get_attack
from unlearn_audit.difficulty.features import (
    _median_distance,
    entanglement,
    grad_norms,
    loss_and_margin,
    memorization,
    residual_from_bank,
    stein_self_score,
)
from unlearn_audit.learning.train import predict_logits

#: Feature names, in the order of the ``feature.<name>`` columns and the index.
FEATURES = ("memorization", "lira", "loss", "margin", "grad_norm", "stein", "entanglement")
#: The attack whose score is the ``lira`` feature (exposure of the trained model).
EXPOSURE_ATTACK = "lira_online"
#: Neighbours per side of the entanglement feature.
ENTANGLEMENT_K = 5
#: Largest number of per-sample gradient floats held at once (sets the vmap chunk).
GRAD_FLOATS = 200_000_000
#: Forget inputs the Stein bandwidth's median heuristic looks at, at most.
BANDWIDTH_SAMPLES = 2000


@dataclass(frozen=True)
class PoolData:
    """The pool the features are computed on: inputs and labels on the model's device."""

    x: torch.Tensor
    y: torch.Tensor
    labels: np.ndarray
    bandwidth: float

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor, forget: np.ndarray) -> PoolData:
        """Fix the Stein bandwidth once: median pairwise distance of the forget inputs.

        Over at most :data:`BANDWIDTH_SAMPLES` of them, evenly spaced in pool order
        (deterministic), so a large forget set costs no quadratic distance matrix.
        """
        chosen = np.sort(forget)
        if chosen.size > BANDWIDTH_SAMPLES:
            chosen = chosen[np.linspace(0, chosen.size - 1, BANDWIDTH_SAMPLES).astype(int)]
        flat = x[torch.as_tensor(chosen, device=x.device)].flatten(1).double().cpu().numpy()
        return cls(x, y, y.cpu().numpy(), _median_distance(flat))


@dataclass(frozen=True)
class Rows:
    """Feature rows: ``features[name] (s,)`` of sample ``sample[r]`` under model ``shadow[r]``."""

    features: dict[str, np.ndarray]
    shadow: np.ndarray
    sample: np.ndarray


def mean_signal(signals: np.ndarray) -> np.ndarray:
    """Signal averaged over the query views: ``(..., n, A) -> (..., n)`` float64."""
    return np.asarray(signals, dtype=np.float64).mean(-1)


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


def model_features(
    model: nn.Module, pool: PoolData, forget: np.ndarray, retain: np.ndarray
) -> dict[str, np.ndarray]:
    """Loss, margin, gradient norm, Stein self-score and entanglement of ``forget`` samples.

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
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    chunk = int(max(1, min(256, GRAD_FLOATS // max(n_params, 1))))
    idx = np.concatenate([forget, retain])
    z = representation(model, pool.x[torch.as_tensor(idx, device=pool.x.device)])
    local = np.arange(idx.size)
    return {
        "loss": loss,
        "margin": margin,
        "grad_norm": grad_norms(model, xf, yf, batch_size=chunk),
        "stein": stein_self_score(model, xf, yf, bandwidth=pool.bandwidth),
        "entanglement": entanglement(
            z, pool.labels[idx], local[: forget.size], local[forget.size :], k=ENTANGLEMENT_K
        ),
    }


def bank_features(
    shadow: np.ndarray,
    keep: np.ndarray,
    target: np.ndarray,
    forget: np.ndarray,
    leave_out: int | None = None,
) -> dict[str, np.ndarray]:
    """Memorization (from the bank) and LiRA exposure of ``target`` on ``forget`` samples.

    Memorization is Feldman & Zhang's ``mean_IN - mean_OUT`` of the true-class
    confidence ``sigmoid(signal)`` (the signal is logit-scaled, so this is exact).
    ``leave_out`` drops one shadow from the bank: the one whose rows are described.

    Args:
        shadow: Shadow signals ``(m, n, A)``.
        keep: Keep matrix ``(m, n)``.
        target: Signals ``(n, A)`` of the model whose exposure is measured.
        forget: Pool indices to describe.
        leave_out: Shadow index to exclude from the bank (None = use all).
    """
    rows = np.array([j for j in range(shadow.shape[0]) if j != leave_out])
    conf = expit(mean_signal(shadow[rows][:, forget]))
    exposure = get_attack(EXPOSURE_ATTACK).fn(target, shadow[rows], keep[rows])
    return {
        "memorization": memorization(conf, keep[rows][:, forget]),
        "lira": np.asarray(exposure, dtype=np.float64)[forget],
    }


def target_rows(
    original: nn.Module,
    original_signal: np.ndarray,
    shadow: np.ndarray,
    keep: np.ndarray,
    pool: PoolData,
    forget: np.ndarray,
    retain: np.ndarray,
) -> dict[str, np.ndarray]:
    """Features of the audited forget samples (original model, whole bank)."""
    feats = {
        **bank_features(shadow, keep, original_signal, forget),
        **model_features(original, pool, forget, retain),
    }
    return {name: feats[name] for name in FEATURES}


def shadow_rows(
    load: Callable[[int], nn.Module],
    shadow: np.ndarray,
    keep: np.ndarray,
    pool: PoolData,
    forget: np.ndarray,
) -> Rows:
    """Fitting rows: every shadow ``k`` on ``IN_k ∩ forget``, described by itself.

    Args:
        load: Returns shadow ``k``'s trained model (from the run's cache).
        shadow: Shadow signals ``(m, n, A)``.
        keep: Keep matrix ``(m, n)``.
        pool: The pool and the fixed Stein bandwidth.
        forget: Pool indices of the forget set.
    """
    parts: list[dict[str, np.ndarray]] = []
    who, which = [], []
    for k in range(shadow.shape[0]):
        in_k = np.flatnonzero(keep[k])
        f_k = np.intersect1d(in_k, forget)
        if f_k.size == 0:
            continue
        model = load(k)
        parts.append(
            {
                **bank_features(shadow, keep, shadow[k], f_k, leave_out=k),
                **model_features(model, pool, f_k, np.setdiff1d(in_k, f_k)),
            }
        )
        who.append(np.full(f_k.size, k))
        which.append(f_k)
    if not parts:
        raise ValueError("no shadow model trained on any forget sample")
    return Rows(
        {name: np.concatenate([p[name] for p in parts]) for name in FEATURES},
        np.concatenate(who),
        np.concatenate(which),
    )


def shadow_outcomes(
    bank: np.ndarray, shadow: np.ndarray, keep: np.ndarray, rows: Rows
) -> np.ndarray:
    """Realised residual of each fitting row: unlearned shadow ``k`` on ``i`` among i's OUT."""
    out_vals = mean_signal(shadow)
    return residual_from_bank(
        mean_signal(bank)[rows.shadow, rows.sample],
        out_vals[:, rows.sample],
        ~keep[:, rows.sample],
    )


def target_outcome(
    signal: np.ndarray, shadow: np.ndarray, keep: np.ndarray, forget: np.ndarray
) -> np.ndarray:
    """Realised residual of the audited model on each forget sample (OUT shadows of it)."""
    return residual_from_bank(
        mean_signal(signal)[forget], mean_signal(shadow)[:, forget], ~keep[:, forget]
    )
