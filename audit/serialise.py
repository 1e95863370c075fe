"""The one serialiser of an audit: its typed outcome to ``results.json``, ``samples.csv``
and ``signals.npz`` (the run directory's contract, docs/design.md "Run directory").

:func:`write_run` is the only place that turns the audit's values into the run
files; the audit never reads them back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unlearn_audit.audit import __version__
from unlearn_audit.audit.config_types import AuditConfig
from unlearn_audit.audit.forgetting import UliraBank
from unlearn_audit.audit.judging import Judgement, Scores
from unlearn_audit.audit.measure import samples_csv
from unlearn_audit.audit.plan import Plan
from unlearn_audit.audit.targets import Targets
from unlearn_audit.audit.verdict import PLANTED_CONTROL, POSITIVE_CONTROL
from unlearn_audit.difficulty import DifficultyResult
from unlearn_audit.learning.data import Dataset
from unlearn_audit.runfiles import (
    EPSILON,
    PLANTED_COLUMN,
    PVALUE,
    RECOGNISABLE,
    RESULTS_FILE,
    SAMPLES_FILE,
    SCHEMA_VERSION,
    SIGNALS_FILE,
    ULIRA,
    WEIGHT_COLUMN,
    atomic_savez,
    atomic_write_json,
    atomic_write_text,
    column,
)


@dataclass
class Outcome:
    """Everything an audit found, typed; :func:`write_run` serialises it.

    Attributes:
        cfg: The configuration.
        provenance: results.json's ``run`` block.
        paradigm: results.json's ``paradigm`` block.
        ds: The pool.
        plan: The plan.
        targets: The target models.
        shadow: The shadow bank's signals ``(m, n, views)``.
        scores: Attack scores of every target model.
        attacks: results.json's ``attacks`` block (metrics of the scores).
        banks: Each method's U-LiRA bank (or its failure), in method order.
        difficulty: The difficulty analysis (its results.json block and its columns).
        leakage: results.json's ``retain_leakage`` block.
        weights: Each pool sample's weight in the residual (None = equal).
        judgement: Verdicts, controls, power, record evidence.
        assumptions: What the audit assumed (e.g. of a brought original).
    """

    cfg: AuditConfig
    provenance: dict[str, Any]
    paradigm: dict[str, Any]
    ds: Dataset
    plan: Plan
    targets: Targets
    shadow: np.ndarray
    scores: Scores
    attacks: dict[str, Any]
    banks: dict[str, UliraBank]
    difficulty: DifficultyResult
    leakage: dict[str, Any]
    weights: np.ndarray | None
    judgement: Judgement
    assumptions: list[str]


def results_document(o: Outcome) -> dict[str, Any]:
    """The content of results.json, less its ``timings`` (see docs/design.md)."""
    plan, ds = o.plan, o.ds
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "unlearn-audit", "version": __version__},
        "run": o.provenance,
        "config": o.cfg.to_dict(),
        "paradigm": o.paradigm,
        "data": {
            "dataset": ds.name,
            **plan.summary(),
            "classes": list(ds.classes),
            "warnings": list(plan.warnings),
        },
        "models": o.targets.block(),
        "attacks": o.attacks,
        "forgetting": {name: bank.entry for name, bank in o.banks.items()},
        "difficulty": o.difficulty.block,
        "retain_leakage": o.leakage,
        "report": {"roc_attack": o.cfg.verdict.attack},
    }
    if o.assumptions:
        results["assumptions"] = o.assumptions
    results["verdicts"] = o.judgement.block()
    results["controls"] = o.judgement.controls
    results["power"] = o.judgement.power
    return results


def _forget_column(plan: Plan, values: np.ndarray) -> np.ndarray:
    """A pool-length column with ``values`` on the forget records, NaN elsewhere."""
    col = np.full(plan.n_pool, np.nan)
    col[plan.forget] = values
    return col


def sample_columns(o: Outcome) -> dict[str, np.ndarray]:
    """samples.csv's columns after the signals and attack scores, in the file's order."""
    plan, cols = o.plan, {}
    for name, bank in o.banks.items():
        if bank.error is None:
            cols[column(ULIRA, name)] = _forget_column(plan, bank.scores)
            cols[column(EPSILON, name)] = _forget_column(plan, bank.epsilon)
    if o.weights is not None:
        cols[WEIGHT_COLUMN] = o.weights
    for name, rec in o.judgement.records.items():
        cols[column(PVALUE, name)] = _forget_column(plan, rec.pvalues)
        cols[column(RECOGNISABLE, name)] = _forget_column(plan, rec.recognisable)
    if PLANTED_CONTROL in o.judgement.verdicts:
        cols[PLANTED_COLUMN] = _forget_column(plan, np.isin(plan.forget, o.targets.planted))
    cols.update(o.difficulty.columns)
    return cols


def write_run(
    run_dir: Path, o: Outcome, timings: dict[str, float], t_start: float
) -> dict[str, Any]:
    """Write samples.csv, signals.npz and (last) results.json; return the results.

    ``timings``: the phases' seconds; ``total_seconds`` runs from ``t_start``
    (:func:`time.perf_counter`) to the moment results.json is written.
    """
    plan, ds, signals = o.plan, o.ds, o.targets.signals
    labels = ds.y.numpy()
    atomic_write_text(
        run_dir / SAMPLES_FILE,
        samples_csv(plan, labels, ds.ids, signals, o.scores, sample_columns(o)),
    )
    names = list(signals)
    keep_rows = {
        "reference": plan.retain,
        POSITIVE_CONTROL: plan.retain,
        PLANTED_CONTROL: np.union1d(plan.retain, o.targets.planted),
    }
    target_keep = np.stack([plan.mask(keep_rows.get(n, plan.members)) for n in names])
    atomic_savez(
        run_dir / SIGNALS_FILE,
        signals=np.concatenate([o.shadow, np.stack([signals[n] for n in names])]),
        keep=np.concatenate([plan.keep, target_keep]),
        model_names=np.array([f"shadow{k}" for k in range(len(o.shadow))] + names),
        n_shadows=np.array(len(o.shadow)),
        label=labels,
        split=plan.split_labels().astype(str),
        forget_index=plan.forget,
        forget_images=ds.x.numpy()[plan.forget].astype(np.float16),
    )
    total = round(time.perf_counter() - t_start, 3)
    results = {**results_document(o), "timings": {**timings, "total_seconds": total}}
    atomic_write_json(run_dir / RESULTS_FILE, results)
    return results
