"""Per-sample difficulty of each audited method: index learned on shadows, feasibility.

The step that turns the rows of :mod:`unlearn_audit.difficulty.rows` into the audit's
``difficulty`` results and ``samples.csv`` columns (docs/difficulty.md). For every
method with a U-LiRA bank the index (:mod:`unlearn_audit.difficulty.index`) is learned
on the *shadow* rows and applied to the audited model only (Rizwan et al., arXiv
2410.03043, argue for such a unified per-instance predictor judged by rank agreement
with the realised outcome; Zhao et al., NeurIPS 2024, "What makes unlearning hard and
what to do about it", study memorization and entanglement; memorization is Feldman &
Zhang, NeurIPS 2020). :func:`run_difficulty` does it for every method and returns one
:class:`DifficultyResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from torch import nn

from unlearn_audit.difficulty.index import (
    DifficultyIndex,
    apply_index,
    evaluate_on_target,
    feasibility,
    learn_on_shadows,
    rank,
    spearman,
)
from unlearn_audit.difficulty.rows import (
    FeatureSet,
    PoolData,
    Rows,
    shadow_outcomes,
    shadow_rows,
    target_outcome,
    target_rows,
)
from unlearn_audit.runfiles.names import (
    DIFFICULTY,
    DIFFICULTY_RANK,
    FEATURE,
    FLAGS,
    RESIDUAL,
    column,
)

#: Ridge strength per row: only stabilises collinear features (loss, margin, gradient).
RIDGE_ALPHA = 0.01
#: Share of the forget set in the hardest and in the easiest group of ``deciles``.
DECILE = 0.1


def tame(features: Mapping[str, np.ndarray], tamed: Collection[str]) -> dict[str, np.ndarray]:
    """What the ridge sees: ``log1p`` of the ``tamed`` features (non-negative and
    heavy-tailed; ranks are unchanged), the others as they are."""
    return {
        n: np.log1p(np.maximum(v, 0.0)) if n in tamed else np.asarray(v, dtype=np.float64)
        for n, v in features.items()
    }


def _deciles(pred: np.ndarray, outcome: np.ndarray, ids: np.ndarray) -> dict[str, Any]:
    """Mean realised outcome of the hardest and easiest ``DECILE`` by prediction."""
    ok = np.isfinite(pred) & np.isfinite(outcome)
    n = int(ok.sum())
    size = max(1, int(round(DECILE * n))) if n else 0
    if n < 2:
        return {"size": size, "hardest": None, "easiest": None}
    r = rank(pred[ok], ids[ok])
    y = outcome[ok]
    return {
        "size": size,
        "hardest": float(y[r <= size].mean()),
        "easiest": float(y[r > n - size].mean()),
    }


def _driver(index: DifficultyIndex, row: np.ndarray) -> str:
    """The feature that pushes one prediction up the most, with its push on the outcome scale."""
    push = index.y_scale * index.weights * (row - index.mean) / index.scale
    j = int(np.nanargmax(push)) if np.isfinite(push).any() else 0
    return f"{index.names[j]} {push[j]:+.3f}"


def _nan_or(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 6)


class MethodDifficulty(NamedTuple):
    """One method's difficulty: its results.json entry and its per-forget-sample arrays.

    ``per_sample`` holds ``index`` (the predicted residual), ``rank`` (1 = hardest),
    ``residual`` (the realised outcome) and ``flags`` (feasibility), one value per
    forget sample in the order they were given.
    """

    entry: dict[str, Any]
    per_sample: dict[str, np.ndarray]


def assess(
    rows: Rows,
    shadow_y: np.ndarray,
    target: Mapping[str, np.ndarray],
    target_y: np.ndarray,
    ids: np.ndarray,
    bar: float,
    *,
    tamed: Collection[str],
) -> MethodDifficulty:
    """Learn the index on the shadow rows, evaluate it on the audited model's rows.

    Args:
        rows: Fitting rows (:func:`shadow_rows`).
        shadow_y: Their realised outcomes (:func:`shadow_outcomes`).
        target: The audited forget samples' features by name (:func:`target_rows`).
        target_y: The audited model's realised outcome per forget sample.
        ids: Pool indices of the forget samples (tie-break of the rank).
        bar: Largest predicted residual that is still feasible.
        tamed: Features the ridge sees as ``log1p`` (the feature set's ``tamed``).

    Returns:
        The method's ``difficulty`` entry of results.json and its per-forget-sample
        arrays (:class:`MethodDifficulty`).
    """
    fit = tame(rows.features, tamed)
    index = learn_on_shadows(fit, shadow_y, alpha=RIDGE_ALPHA)
    x = tame({n: target[n] for n in index.names}, tamed)
    pred = apply_index(index, x)
    report = evaluate_on_target(index, x, target_y)
    share, flags = feasibility(pred, bar)
    matrix = np.column_stack([x[n] for n in index.names])
    flags = [
        f"{f} (largest push: {_driver(index, matrix[i])})" if f and np.isfinite(pred[i]) else f
        for i, f in enumerate(flags)
    ]
    feats = report["features"]
    assert isinstance(feats, dict)
    entry: dict[str, Any] = {
        "n": int(report["n"]),  # type: ignore[call-overload]
        "n_fit": index.n_rows,
        "n_shadows": int(np.unique(rows.shadow).size),
        "outcome_mean": _nan_or(float(np.nanmean(target_y)))
        if np.isfinite(target_y).any()
        else None,
        "spearman": {
            "index": _nan_or(float(report["index"])),  # type: ignore[arg-type]
            "features": {n: _nan_or(float(v)) for n, v in feats.items()},
        },
        "spearman_shadows": {
            "index": _nan_or(spearman(apply_index(index, fit), shadow_y)),
            "features": {n: _nan_or(spearman(v, shadow_y)) for n, v in rows.features.items()},
        },
        "weights": {n: round(float(w), 6) for n, w in zip(index.names, index.weights, strict=True)},
        "feasibility": {
            "bar": bar,
            "share": _nan_or(share),
            "n_infeasible": int(sum(1 for f in flags if f)),
        },
        "deciles": _deciles(pred, target_y, ids),
    }
    columns = {
        "index": pred,
        "rank": rank(pred, ids).astype(np.float64),
        "residual": target_y,
        "flags": np.array(flags, dtype=object),
    }
    return MethodDifficulty(entry, columns)


def difficulty_columns(
    n_pool: int, forget: np.ndarray, per_forget: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Full-length ``samples.csv`` columns: values on the forget rows, NaN (or "") elsewhere."""
    out: dict[str, np.ndarray] = {}
    for name, values in per_forget.items():
        if values.dtype == object:
            col: np.ndarray = np.full(n_pool, "", dtype=object)
        else:
            col = np.full(n_pool, np.nan)
        col[forget] = values
        out[name] = col
    return out


@dataclass(frozen=True, eq=False)
class DifficultyResult:
    """What the difficulty step gives the audit (docs/difficulty.md).

    Attributes:
        block: The ``difficulty`` block of results.json: ``{method: entry}`` for
            every method with a U-LiRA bank (an entry is ``{"error": ...}`` when the
            step failed); empty when it did not run.
        columns: The ``samples.csv`` columns it adds, each pool-long: ``feature.<name>``
            and per method ``difficulty.<method>``, ``difficulty_rank.<method>``,
            ``residual.<method>`` and ``flags.<method>`` (values on the forget rows
            only, NaN or "" elsewhere).
        error: Why the step failed (``"Type: message"``), None when it did not fail.
    """

    block: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def failed(cls, methods: Iterable[str], error: str) -> DifficultyResult:
        """The result of a step that raised: each method's entry records ``error``, no column."""
        return cls({name: {"error": error} for name in methods}, {}, error)


def _fmt(value: float | None, spec: str = ".3f") -> str:
    """A number for the log line; ``n/a`` for a missing or NaN one."""
    return "n/a" if value is None or value != value else format(value, spec)


def run_difficulty(
    *,
    features: FeatureSet,
    original: nn.Module,
    signals: Mapping[str, np.ndarray],
    banks: Mapping[str, np.ndarray],
    shadow: np.ndarray,
    keep: np.ndarray,
    pool: PoolData,
    forget: np.ndarray,
    retain: np.ndarray,
    load: Callable[[int], nn.Module],
    bar: float,
    log: Callable[[str], None],
) -> DifficultyResult:
    """The ``difficulty`` block of results.json and the ``samples.csv`` columns.

    Args:
        features: The feature set the audit's paradigm supplies.
        original: The original model (the audited rows' features).
        signals: Signals ``(n, A)`` of every target model by name (``original`` included).
        banks: U-LiRA bank ``(m, n, A)`` of each method that has one.
        shadow: Trained shadow signals ``(m, n, A)``; keep: their keep matrix ``(m, n)``.
        pool: The pool (and the Stein bandwidth of a classifier's features).
        forget, retain: Pool indices of the audit's forget and retain sets.
        load: Returns shadow ``k``'s trained model.
        bar: Feasibility bar on the residual scale.
        log: Progress lines.

    Returns:
        The :class:`DifficultyResult`; a method without a bank or a signal gets no entry.
    """
    methods = [m for m in banks if m in signals]
    if not methods:
        return DifficultyResult()
    log(
        f"difficulty: features of {forget.size} forget samples (original and "
        f"{shadow.shape[0]} shadow models)"
    )
    target = target_rows(
        features, original, signals["original"], shadow, keep, pool, forget, retain
    )
    rows = shadow_rows(features, load, shadow, keep, pool, forget)
    block: dict[str, Any] = {}
    columns = difficulty_columns(
        keep.shape[1], forget, {column(FEATURE, n): v for n, v in target.items()}
    )
    for name in methods:
        shadow_y = shadow_outcomes(banks[name], shadow, keep, rows)
        target_y = target_outcome(signals[name], shadow, keep, forget)
        entry, per = assess(rows, shadow_y, target, target_y, forget, bar, tamed=features.tamed)
        block[name] = entry
        columns.update(
            difficulty_columns(
                keep.shape[1],
                forget,
                {
                    column(DIFFICULTY, name): per["index"],
                    column(DIFFICULTY_RANK, name): per["rank"],
                    column(RESIDUAL, name): per["residual"],
                    column(FLAGS, name): per["flags"],
                },
            )
        )
        sp = entry["spearman"]
        best = max(sp["features"].items(), key=lambda kv: -np.inf if kv[1] is None else kv[1])
        log(
            f"  {name}: Spearman index {_fmt(sp['index'])}, best feature {best[0]} "
            f"{_fmt(best[1])}, feasible {_fmt(entry['feasibility']['share'], '.0%')}"
        )
    return DifficultyResult(block, columns)
