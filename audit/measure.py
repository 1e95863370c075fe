"""Measurements over signal arrays: attack scores, metrics, utility and the sample table.

Everything here is a function of arrays already computed by the pipeline, so
it runs in milliseconds and never trains anything.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from unlearn_audit.attacks.metrics import auc_ci, roc_metrics
from unlearn_audit.attacks.registry import get as get_attack
from unlearn_audit.audit.plan import Plan
from unlearn_audit.runfiles.names import BASE_COLUMNS, SIGNAL, column

FPRS = (0.001, 0.01)


def attack_scores(
    targets: dict[str, np.ndarray], shadow: np.ndarray, keep: np.ndarray, attacks: list[str]
) -> dict[str, dict[str, np.ndarray]]:
    """Scores ``(n,)`` per model and attack: ``scores[model][attack]``."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for model, signal in targets.items():
        out[model] = {}
        for name in attacks:
            attack = get_attack(name)
            out[model][name] = np.asarray(
                attack.fn(
                    signal,
                    shadow if attack.needs_shadows else None,
                    keep if attack.needs_shadows else None,
                ),
                dtype=np.float64,
            )
    return out


def _compare(
    scores: np.ndarray, pos: np.ndarray, neg: np.ndarray, n_boot: int, seed: int
) -> dict[str, Any]:
    s = np.concatenate([scores[pos], scores[neg]])
    is_member = np.concatenate([np.ones(pos.size, bool), np.zeros(neg.size, bool)])
    m = roc_metrics(s, is_member, fprs=FPRS)
    ci = auc_ci(s, is_member, n_boot=n_boot, seed=seed)
    return {"auc": m["auc"], "auc_ci": [ci["low"], ci["high"]], "tpr_at_fpr": m["tpr_at_fpr"]}


def attack_metrics(
    scores: dict[str, dict[str, np.ndarray]], plan: Plan, n_boot: int, seed: int
) -> dict[str, dict[str, Any]]:
    """The ``attacks`` block of results.json: forget and retain vs non-members."""
    out: dict[str, dict[str, Any]] = {}
    for model, per_attack in scores.items():
        out[model] = {}
        for name, s in per_attack.items():
            out[model][name] = {
                "forget_vs_nonmember": _compare(s, plan.forget, plan.nonmembers, n_boot, seed),
                "retain_vs_nonmember": _compare(s, plan.retain, plan.nonmembers, n_boot, seed),
            }
    return out


def forget_vs_nonmember(plan: Plan, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores restricted to forget + non-member samples, and the is-forget labels."""
    idx = np.concatenate([plan.forget, plan.nonmembers])
    is_forget = np.concatenate(
        [np.ones(plan.forget.size, bool), np.zeros(plan.nonmembers.size, bool)]
    )
    return scores[idx], is_forget


def samples_csv(
    plan: Plan,
    labels: np.ndarray,
    ids: np.ndarray | None,
    signals: dict[str, np.ndarray],
    scores: dict[str, dict[str, np.ndarray]],
    extra: dict[str, np.ndarray] | None = None,
) -> str:
    """One row per pool sample.

    Columns: index, id, label, split, ``signal.<model>``, ``<attack>.<model>``, then the
    ``extra`` columns (full-length arrays; NaN is written as an empty cell; an object
    array of strings, e.g. ``flags.<method>``, is written as text, quoted by ``csv``
    where it holds a comma or a quote).
    """
    split = plan.split_labels()
    cols: dict[str, np.ndarray] = {}
    for model, sig in signals.items():
        cols[column(SIGNAL, model)] = sig[:, 0]
    for model, per_attack in scores.items():
        for name, s in per_attack.items():
            cols[column(name, model)] = s
    cols.update(extra or {})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*BASE_COLUMNS, *cols])
    ident = ids if ids is not None else np.arange(plan.n_pool)
    for i in range(plan.n_pool):
        writer.writerow(
            [i, ident[i], int(labels[i]), split[i], *(_cell(c[i]) for c in cols.values())]
        )
    return buf.getvalue()


def _cell(value: object) -> str:
    """A CSV cell: text as it is (csv quotes it as needed), NaN empty, whole numbers exact."""
    if isinstance(value, str):
        return value
    v = float(value)  # type: ignore[arg-type]
    if np.isnan(v):
        return ""
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.6g}"
