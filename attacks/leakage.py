"""Retain-set leakage: does unlearning expose the samples it keeps?

Removing some training samples can make *other* samples more vulnerable to
membership inference: the "privacy onion" effect of Carlini, Jagielski,
Zhang, Papernot, Terzis, Tramer (NeurIPS 2022), where deleting the most
exposed points exposes the next layer. An audit therefore also compares the
retain-vs-non-member attack AUC before unlearning (the original model) and
after it (the unlearned model), on the same samples under the same attack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from unlearn_audit.attacks.metrics import auc_difference_ci, roc_metrics

__all__ = ["retain_exposure_increase"]


def _unpack(d: Mapping[str, Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    missing = [k for k in ("scores", "is_member") if k not in d]
    if missing:
        raise ValueError(f"{name} needs keys 'scores' and 'is_member'; missing {missing}")
    return np.asarray(d["scores"]), np.asarray(d["is_member"])


def retain_exposure_increase(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    level: float = 0.95,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Whether the retain-vs-non-member AUC rose significantly after unlearning.

    The difference ``AUC(after) - AUC(before)`` gets a paired, stratified
    percentile-bootstrap interval (:func:`attacks.metrics.auc_difference_ci`:
    each replicate resamples retain samples and non-members and applies the
    same resample to both score vectors). The exposure *increased* when the
    whole interval lies above 0. A one-sided reading of a two-sided interval
    at ``level`` has error rate ``(1 - level) / 2``.

    Args:
        before: ``{"scores": (n,), "is_member": (n,)}`` for the model before
            unlearning; ``is_member`` is True for retain samples, False for
            non-members.
        after: The same for the unlearned model, on the same samples in the
            same order (``is_member`` must be equal).
        level: Confidence level in ``(0, 1)``.
        n_boot: Bootstrap replicates.
        seed: Bootstrap seed.

    Returns:
        ``{"auc_before", "auc_after", "diff", "low", "high", "level", "n_boot",
        "increased"}``; ``increased`` is ``low > 0``.

    Raises:
        ValueError: On missing keys, different membership vectors or invalid inputs.
    """
    s_before, m_before = _unpack(before, "before")
    s_after, m_after = _unpack(after, "after")
    if m_before.shape != m_after.shape or not np.array_equal(
        m_before.astype(bool), m_after.astype(bool)
    ):
        raise ValueError("before and after must score the same samples (equal is_member)")
    ci = auc_difference_ci(s_after, s_before, m_after, n_boot=n_boot, level=level, seed=seed)
    return {
        "auc_before": roc_metrics(s_before, m_before, fprs=())["auc"],
        "auc_after": roc_metrics(s_after, m_after, fprs=())["auc"],
        "diff": ci["diff"],
        "low": ci["low"],
        "high": ci["high"],
        "level": ci["level"],
        "n_boot": ci["n_boot"],
        "increased": bool(ci["low"] > 0.0),
    }
