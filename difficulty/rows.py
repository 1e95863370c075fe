"""The rows the difficulty index learns on and is judged on: features and outcomes.

The features come from a :class:`FeatureSet`, which the audit's paradigm supplies
(:class:`~unlearn_audit.difficulty.classifier.ClassifierFeatures` for a classifier,
:class:`~unlearn_audit.difficulty.encoder.EncoderFeatures` for an encoder): two *bank*
features computed here from the shadow signals (:data:`BANK_FEATURES`: memorization and
LiRA exposure) and the model's own (:meth:`FeatureSet.model_features`). Nothing here
asks which paradigm it has.

For every forget sample of the audit the features are computed once from the original
model and the shadow bank: the *audited* rows (:func:`target_rows`). The *fitting* rows
(:func:`shadow_rows`) are shadow ``k`` and sample ``i ∈ IN_k ∩ forget`` (which it
unlearned). Their model features come from shadow ``k``'s own trained model exactly as
the audited rows' come from the original, and their bank features leave shadow ``k``
out (memorization, and the other shadows calibrate its LiRA exposure), so a shadow row
looks to the index like an audited row. A fitting row's outcome is the position of
the *unlearned* shadow ``k``'s signal on ``i`` among the shadows that never trained on
``i`` (:func:`shadow_outcomes`, on the scale of
:func:`~unlearn_audit.difficulty.features.residual_from_bank`); an audited row's is the
audited model's (:func:`target_outcome`). Every shadow is used: after the bank is
trained the extra cost is a forward pass and per-sample gradients on ``F_k`` per shadow.

Everything comes in as plain arrays, models and a loader (no audit type), so this
floor sits below the audit (docs/difficulty.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from unlearn_audit.attacks.registry import get as get_attack
from unlearn_audit.difficulty.features import _median_distance, memorization, residual_from_bank

#: The features computed from the shadow bank, first in every feature set.
BANK_FEATURES = ("memorization", "lira")
#: The attack whose score is the ``lira`` feature (exposure of the trained model).
EXPOSURE_ATTACK = "lira_online"
#: Neighbours per side of the entanglement feature (every feature set).
ENTANGLEMENT_K = 5
#: Largest number of per-sample gradient floats held at once (sets the vmap chunk).
GRAD_FLOATS = 200_000_000
#: Forget inputs the Stein bandwidth's median heuristic looks at, at most.
BANDWIDTH_SAMPLES = 2000


@dataclass(frozen=True)
class PoolData:
    """The pool the features are computed on: inputs and labels on the model's device.

    ``forget`` is the audit's forget set (sorted pool indices): a feature that needs
    other samples than those it describes (an encoder's fixed negatives) takes them
    outside it, so the same ones serve every model and every row.
    """

    x: torch.Tensor
    y: torch.Tensor
    labels: np.ndarray
    bandwidth: float
    forget: np.ndarray

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor, forget: np.ndarray) -> PoolData:
        """Fix the Stein bandwidth once: median pairwise distance of the forget inputs.

        Over at most :data:`BANDWIDTH_SAMPLES` of them, evenly spaced in pool order
        (deterministic), so a large forget set costs no quadratic distance matrix.
        """
        every = np.sort(np.asarray(forget, dtype=np.int64))
        chosen = every
        if chosen.size > BANDWIDTH_SAMPLES:
            chosen = chosen[np.linspace(0, chosen.size - 1, BANDWIDTH_SAMPLES).astype(int)]
        flat = x[torch.as_tensor(chosen, device=x.device)].flatten(1).double().cpu().numpy()
        return cls(x, y, y.cpu().numpy(), _median_distance(flat), every)


class FeatureSet(Protocol):
    """The features a paradigm describes a forget sample with (docs/difficulty.md).

    A paradigm supplies one (``difficulty_features`` of ``audit.paradigms.Paradigm``);
    the difficulty step computes whatever it is given.

    Attributes:
        names: Every feature, in the order of the ``feature.<name>`` columns and of the
            index: the :data:`BANK_FEATURES` first, then those of :meth:`model_features`.
        tamed: Non-negative heavy-tailed features the ridge sees as ``log1p``.
    """

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def tamed(self) -> tuple[str, ...]: ...

    def confidence(self, signal: np.ndarray) -> np.ndarray:
        """The per-model statistic memorization averages, from the view-mean signal."""
        ...

    def model_features(
        self, model: nn.Module, pool: PoolData, forget: np.ndarray, retain: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The model's own features of ``forget`` samples, each ``(len(forget),)``.

        Args:
            model: A trained model (the original, or a shadow for its own rows).
            pool: The pool.
            forget: Pool indices of the samples to describe (that the model trained on).
            retain: Pool indices of the model's other training samples.
        """
        ...


def grad_chunk(model: nn.Module) -> int:
    """Samples per vmapped chunk of per-sample gradients (at most 256, ~GRAD_FLOATS floats)."""
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return int(max(1, min(256, GRAD_FLOATS // max(n_params, 1))))


@dataclass(frozen=True)
class Rows:
    """Feature rows: ``features[name] (s,)`` of sample ``sample[r]`` under model ``shadow[r]``."""

    features: dict[str, np.ndarray]
    shadow: np.ndarray
    sample: np.ndarray


def mean_signal(signals: np.ndarray) -> np.ndarray:
    """Signal averaged over the query views: ``(..., n, A) -> (..., n)`` float64."""
    return np.asarray(signals, dtype=np.float64).mean(-1)


def bank_features(
    shadow: np.ndarray,
    keep: np.ndarray,
    target: np.ndarray,
    forget: np.ndarray,
    leave_out: int | None = None,
    confidence: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Memorization (from the bank) and LiRA exposure of ``target`` on ``forget`` samples.

    Memorization is Feldman & Zhang's ``mean_IN - mean_OUT`` of ``confidence`` of each
    shadow's view-mean signal (the feature set's statistic; default the sigmoid, which
    is the true-class confidence of a classifier's logit-scaled signal).
    ``leave_out`` drops one shadow from the bank: the one whose rows are described.

    Args:
        shadow: Shadow signals ``(m, n, A)``.
        keep: Keep matrix ``(m, n)``.
        target: Signals ``(n, A)`` of the model whose exposure is measured.
        forget: Pool indices to describe.
        leave_out: Shadow index to exclude from the bank (None = use all).
        confidence: The statistic memorization averages (None = the sigmoid).
    """
    rows = np.array([j for j in range(shadow.shape[0]) if j != leave_out])
    signal = mean_signal(shadow[rows][:, forget])
    conf = (confidence or expit)(signal)
    exposure = get_attack(EXPOSURE_ATTACK).fn(target, shadow[rows], keep[rows])
    return {
        "memorization": memorization(conf, keep[rows][:, forget]),
        "lira": np.asarray(exposure, dtype=np.float64)[forget],
    }


def _described(
    features: FeatureSet,
    model: nn.Module,
    bank: dict[str, np.ndarray],
    pool: PoolData,
    forget: np.ndarray,
    retain: np.ndarray,
) -> dict[str, np.ndarray]:
    """The bank features and the model's own, in ``features.names`` order."""
    feats = {**bank, **features.model_features(model, pool, forget, retain)}
    if set(feats) != set(features.names):
        raise ValueError(f"feature set computed {sorted(feats)}, declares {list(features.names)}")
    return {name: feats[name] for name in features.names}


def target_rows(
    features: FeatureSet,
    original: nn.Module,
    original_signal: np.ndarray,
    shadow: np.ndarray,
    keep: np.ndarray,
    pool: PoolData,
    forget: np.ndarray,
    retain: np.ndarray,
) -> dict[str, np.ndarray]:
    """Features of the audited forget samples (original model, whole bank)."""
    bank = bank_features(shadow, keep, original_signal, forget, confidence=features.confidence)
    return _described(features, original, bank, pool, forget, retain)


def shadow_rows(
    features: FeatureSet,
    load: Callable[[int], nn.Module],
    shadow: np.ndarray,
    keep: np.ndarray,
    pool: PoolData,
    forget: np.ndarray,
) -> Rows:
    """Fitting rows: every shadow ``k`` on ``IN_k ∩ forget``, described by itself.

    Args:
        features: The feature set.
        load: Returns shadow ``k``'s trained model (from the run's cache).
        shadow: Shadow signals ``(m, n, A)``.
        keep: Keep matrix ``(m, n)``.
        pool: The pool.
        forget: Pool indices of the forget set.
    """
    parts: list[dict[str, np.ndarray]] = []
    who, which = [], []
    for k in range(shadow.shape[0]):
        in_k = np.flatnonzero(keep[k])
        f_k = np.intersect1d(in_k, forget)
        if f_k.size == 0:
            continue
        bank = bank_features(shadow, keep, shadow[k], f_k, k, features.confidence)
        parts.append(_described(features, load(k), bank, pool, f_k, np.setdiff1d(in_k, f_k)))
        who.append(np.full(f_k.size, k))
        which.append(f_k)
    if not parts:
        raise ValueError("no shadow model trained on any forget sample")
    return Rows(
        {name: np.concatenate([p[name] for p in parts]) for name in features.names},
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
