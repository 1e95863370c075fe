"""Unlearning-aware measurements over signal arrays: U-LiRA, per-example ε, retain leakage.

The U-LiRA bank of a method (Hayes et al. 2024, "Inexact unlearning needs
more careful evaluations to avoid a false sense of privacy") is the shadow
bank after each shadow ``k`` unlearned its request ``F_k`` with that method
(``IN_k ∩ forget`` padded to the audited request's size and label counts,
:func:`attacks.shadows.unlearning_request`). For a forget sample ``i``,
shadows with ``i ∈ F_k`` give the *trained-then-unlearned* distribution of
its signal and shadows that never trained on ``i`` give the *never-trained*
(retrained) distribution.

From that bank this module derives, per audited model:

- ``ulira.<model>``: the U-LiRA log-likelihood ratio of the model's signal on
  each forget sample (higher = looks more like "trained then unlearned" than
  "never trained");
- ``ulira_auc``: AUC of the model's U-LiRA scores against the retrained
  reference's on the same forget samples (0.5 = the forget samples look the
  same under the method as under retraining);
- per-example ε and the forget quality F of the NeurIPS 2023 unlearning
  competition (Triantafillou et al. 2024), from the two shadow
  distributions: a property of the *method*, not of one model.

Retain-set leakage compares the retain-vs-non-member AUC of the original and
of each unlearned model (a paired bootstrap): unlearning can expose retained
samples more, and the audit says so when it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearn_audit.attacks.epsilon import forget_quality, per_example_epsilon, signals_by_side
from unlearn_audit.attacks.leakage import retain_exposure_increase
from unlearn_audit.attacks.metrics import auc_ci, roc_metrics
from unlearn_audit.attacks.registry import FIXED_VARIANCE_BELOW
from unlearn_audit.attacks.ulira import ulira
from unlearn_audit.audit.plan import Plan


@dataclass(frozen=True)
class UliraBank:
    """A method's U-LiRA bank and what it says of the method's audited model.

    Attributes:
        method: The method's name.
        signals: The unlearned shadows' signals ``(m, n, A)``; None when the bank failed.
        entry: The method's entry of results.json's ``forgetting`` block.
        scores: U-LiRA score of the audited model on each forget record ``(k,)``.
        epsilon: Per-example ε of each forget record ``(k,)``.
        error: Why the bank failed (a method that raised on a shadow).
    """

    method: str
    signals: np.ndarray | None
    entry: dict[str, Any]
    scores: np.ndarray | None = None
    epsilon: np.ndarray | None = None
    error: str | None = None

    @classmethod
    def failed(cls, method: str, error: str) -> UliraBank:
        return cls(method, None, {"error": error}, error=error)

    @property
    def models_per_side(self) -> int:
        """Unlearned (or never-trained) shadows per forget record: half the bank."""
        return self.entry["n_bank"] // 2


def measure_bank(
    method: str,
    bank: np.ndarray,
    plan: Plan,
    target: np.ndarray,
    reference: np.ndarray,
    *,
    n_boot: int,
    seed: int,
) -> UliraBank:
    """:func:`ulira_block` of one method's bank, as a :class:`UliraBank`."""
    entry, per_sample = ulira_block(
        bank, plan.keep, plan, target, reference, n_boot=n_boot, seed=seed
    )
    return UliraBank(method, bank, entry, per_sample[0], per_sample[1])


def bank_masks(keep: np.ndarray, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """``(unlearned, out)`` masks ``(m, n_forget)`` of a U-LiRA bank, over the forget set."""
    k = keep[:, plan.forget]
    return k, ~k


def ulira_block(
    bank: np.ndarray,
    keep: np.ndarray,
    plan: Plan,
    target: np.ndarray,
    reference: np.ndarray,
    *,
    n_boot: int,
    seed: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """U-LiRA, ε and F for one method's bank and the model it produced.

    Args:
        bank: Signals of the unlearned shadow bank ``(m, n, A)``.
        keep: The keep matrix ``(m, n)``.
        plan: The audit plan (for the forget indices).
        target: The audited model's signals ``(n, A)``.
        reference: The retrained reference's signals ``(n, A)``.
        n_boot: Bootstrap replicates of the AUC interval.
        seed: Bootstrap seed.

    Returns:
        The ``forgetting`` entry and the per-forget-sample ``(ulira, epsilon)`` stacked ``(2, k)``.
    """
    f = plan.forget
    unl, out = bank_masks(keep, plan)
    fixed = bool(min(unl.sum(0).min(), out.sum(0).min()) < FIXED_VARIANCE_BELOW)
    sub = bank[:, f]
    s_model = ulira(target[f], sub, unl, out, fixed_variance=fixed)
    s_ref = ulira(reference[f], sub, unl, out, fixed_variance=fixed)
    scores = np.concatenate([s_model, s_ref])
    is_model = np.r_[np.ones(f.size, bool), np.zeros(f.size, bool)]
    ci = auc_ci(scores, is_model, n_boot=n_boot, seed=seed)
    u_side, r_side = signals_by_side(sub, unl, out)
    eps = per_example_epsilon(u_side, r_side)
    entry = {
        "forget_quality": forget_quality(eps, n_models=u_side.shape[0]),
        "epsilon_median": float(np.median(eps)),
        "ulira_auc": roc_metrics(scores, is_model, fprs=())["auc"],
        "ulira_auc_ci": [ci["low"], ci["high"]],
        "n_bank": int(bank.shape[0]),
        "fixed_variance": fixed,
    }
    return entry, np.stack([s_model, eps])


def retain_leakage(
    original: np.ndarray, after: np.ndarray, plan: Plan, *, level: float, n_boot: int, seed: int
) -> dict[str, Any]:
    """Did unlearning expose the retain set more (retain-vs-non-member AUC, paired bootstrap)?"""
    idx = np.concatenate([plan.retain, plan.nonmembers])
    is_member = np.r_[np.ones(plan.retain.size, bool), np.zeros(plan.nonmembers.size, bool)]
    r = retain_exposure_increase(
        {"scores": original[idx], "is_member": is_member},
        {"scores": after[idx], "is_member": is_member},
        level,
        n_boot=n_boot,
        seed=seed,
    )
    return {
        "auc_before": r["auc_before"],
        "auc_after": r["auc_after"],
        "diff": r["diff"],
        "ci": [r["low"], r["high"]],
        "increased": bool(r["increased"]),
    }
