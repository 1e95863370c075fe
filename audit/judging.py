"""Judging the target models: verdicts, controls, power, record evidence, retain leakage.

:func:`judge_targets` applies the verdict rule (:mod:`audit.verdict`,
docs/verdict.md) to every judged model from typed inputs (the targets' scores and
utility, the U-LiRA banks, the record weights) and returns a :class:`Judgement`;
nothing here reads a value back from a file or a results block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearn_audit.audit.config_types import AuditConfig
from unlearn_audit.audit.forgetting import UliraBank, retain_leakage
from unlearn_audit.audit.measure import forget_vs_nonmember
from unlearn_audit.audit.normal_score import effective_records, record_weights
from unlearn_audit.audit.plan import Plan, derive_seed
from unlearn_audit.audit.power import minimum_detectable_residual
from unlearn_audit.audit.records import RECORD_ATTACK, RecordEvidence, record_evidence
from unlearn_audit.audit.targets import Targets
from unlearn_audit.audit.verdict import (
    PLANTED_CONTROL,
    POSITIVE_CONTROL,
    ForgetEpsilons,
    Rule,
    Verdict,
    apply_controls,
    judge,
)

Scores = dict[str, dict[str, np.ndarray]]  # scores[model][attack]: (n_pool,)


@dataclass
class Judgement:
    """Every judged model's verdict, the controls, the power and the record evidence.

    Attributes:
        verdicts: By judged model, in the targets' order.
        records: Per judged model with signals, its forget records' evidence.
        controls: results.json's ``controls`` block.
        power: results.json's ``power`` block.
    """

    verdicts: dict[str, Verdict]
    records: dict[str, RecordEvidence]
    controls: dict[str, Any]
    power: dict[str, Any]

    def block(self) -> dict[str, Any]:
        """results.json's ``verdicts`` block."""
        return {name: v.to_dict() for name, v in self.verdicts.items()}


def rule_of(cfg: AuditConfig) -> Rule:
    v = cfg.verdict
    return Rule(
        primary=v.attack,
        level=v.level,
        n_boot=v.n_boot,
        utility_tolerance=v.utility_tolerance,
        correction=v.correction,
        min_forget_quality=v.min_forget_quality,
        max_residual=v.max_residual,
        seed=derive_seed(cfg.seed, "boot"),
    )


def record_weights_of(
    cfg: AuditConfig, plan: Plan, shadow: np.ndarray, log: Callable[[str], None]
) -> np.ndarray | None:
    """Every pool sample's weight in the residual (``verdict.weighting``), or None (equal).

    ``separation`` weighs each record by its membership's visibility in the shadows
    (:func:`audit.residual.record_weights`); when no forget record or no non-member
    shows any, the residual falls back to equal weights, and the log says so.
    """
    if cfg.verdict.weighting == "uniform":
        return None
    w = record_weights(shadow, plan.keep)
    if not (w[plan.forget].sum() > 0 and w[plan.nonmembers].sum() > 0):
        log(
            "warning: no record's membership is visible in the shadow models; "
            "the residual weighs every record equally"
        )
        return None
    return w


def leakage_of(
    cfg: AuditConfig, plan: Plan, targets: Targets, scores: Scores
) -> dict[str, dict[str, Any]]:
    """Retain-set exposure of each judged model against the original's (verdict attack)."""
    attack = cfg.verdict.attack
    return {
        name: retain_leakage(
            scores["original"][attack],
            scores[name][attack],
            plan,
            level=cfg.verdict.level,
            n_boot=cfg.verdict.n_boot,
            seed=derive_seed(cfg.seed, "leak"),
        )
        for name in targets.judged
        if name in scores
    }


def _epsilons(name: str, plan: Plan, banks: dict[str, UliraBank]) -> ForgetEpsilons | None:
    """Per-forget-record ε of ``name``'s and the retrain control's U-LiRA banks, if both ran."""
    mine, control = banks.get(name), banks.get(POSITIVE_CONTROL)
    if mine is None or control is None or mine.epsilon is None or control.epsilon is None:
        return None
    return ForgetEpsilons(mine.epsilon, control.epsilon, n_models=mine.models_per_side)


def judge_targets(
    cfg: AuditConfig,
    plan: Plan,
    targets: Targets,
    scores: Scores,
    banks: dict[str, UliraBank],
    weights: np.ndarray | None,
    leakage: dict[str, dict[str, Any]],
) -> Judgement:
    """Verdicts, the controls block, the power block (MDR, planted control), the records.

    ``weights``: per pool sample, its weight in the residual (:func:`record_weights_of`;
    None = equal). ``leakage``: :func:`leakage_of`; an increase is noted in the verdict.
    """
    v = cfg.verdict
    rule = rule_of(cfg)
    w = None if weights is None else forget_vs_nonmember(plan, weights)[0]

    def forget_vs_non(name: str) -> dict[str, np.ndarray]:
        return {a: forget_vs_nonmember(plan, scores[name][a])[0] for a in v.judged_by}

    is_forget = forget_vs_nonmember(plan, scores["reference"][v.attack])[1]
    reference, original = forget_vs_non("reference"), forget_vs_non("original")
    ref_acc = (targets.runs["reference"].utility or {})["test_acc"]
    out: dict[str, Verdict] = {}
    records: dict[str, RecordEvidence] = {}
    for name in targets.judged:
        run = targets.runs[name]
        out[name] = judge(
            forget_vs_non(name) if name in scores else None,
            reference,
            original,
            is_forget,
            test_acc=(run.utility or {}).get("test_acc"),
            reference_test_acc=ref_acc,
            rule=rule,
            epsilons=_epsilons(name, plan, banks),
            error=run.error,
            weights=w,
        )
        if name in scores:
            rec = record_evidence(
                RECORD_ATTACK,
                forget_vs_nonmember(plan, scores[name][RECORD_ATTACK])[0],
                is_forget,
                v.fdr,
            )
            out[name].evidence["records"] = rec.to_dict(plan.forget)
            records[name] = rec
    if PLANTED_CONTROL in out:
        out[PLANTED_CONTROL].evidence["planted_fraction"] = v.planted_fraction
    controls = apply_controls(out)
    _note_leakage(out, leakage)
    power = minimum_detectable_residual(
        original,
        forget_vs_non(POSITIVE_CONTROL),
        reference,
        is_forget,
        level=rule.attack_level(len(v.judged_by)),
        seed=derive_seed(cfg.seed, "mdr"),
        weights=w,
    ).to_dict()
    power["weighting"] = {
        "scheme": v.weighting if weights is not None else "uniform",
        "effective_forget_records": round(
            effective_records(None if weights is None else weights[plan.forget], plan.forget.size),
            1,
        ),
        "n_forget": int(plan.forget.size),
    }
    if PLANTED_CONTROL in out:
        pv = out[PLANTED_CONTROL]
        power["planted"] = {
            "fraction": v.planted_fraction,
            "n_planted": int(targets.planted.size),
            "status": pv.status,
            "residual": pv.evidence.get("residual"),
        }
    return Judgement(out, records, controls, power)


def _note_leakage(verdicts: dict[str, Verdict], leakage: dict[str, dict[str, Any]]) -> None:
    """Say in the verdict when unlearning exposed the retained samples more."""
    for name, leak in leakage.items():
        if leak["increased"] and name in verdicts:
            verdicts[name].reasons.append(
                "note: the retain set became MORE exposed to membership inference "
                f"(retain-vs-non-member AUC {leak['auc_before']:.3f} -> {leak['auc_after']:.3f}, "
                f"CI of the change {leak['ci'][0]:+.3f}..{leak['ci'][1]:+.3f})"
            )
