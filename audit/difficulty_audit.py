"""Per-sample difficulty inside the audit: features, index learned on shadows, feasibility.

Glue between the library of :mod:`audit.difficulty` / :mod:`audit.difficulty_features`
and the pipeline (docs/difficulty.md). For every forget sample the features are
computed once from the original model and the shadow bank; for every method with
a U-LiRA bank the index is learned on the *shadow* rows and applied to the audited
model only (Rizwan et al., arXiv 2410.03043, argue for such a unified
per-instance predictor judged by rank agreement with the realised outcome; Zhao
et al., NeurIPS 2024, "What makes unlearning hard and what to do about it",
study memorization and entanglement; memorization is Feldman & Zhang, NeurIPS
2020).

Rows of the fit: shadow ``k`` and sample ``i ∈ IN_k ∩ forget`` (which it unlearned). Its features
come from shadow ``k``'s own trained model exactly as the audited rows' come from
the original (the model-dependent ones: loss, margin, gradient norm, Stein score,
entanglement, LiRA exposure), and its bank features leave shadow ``k`` out
(memorization, and the other shadows calibrate its LiRA exposure), so a shadow
row looks to the index like an audited row. Its outcome is the position of the
*unlearned* shadow ``k``'s signal on ``i`` among the shadows that never trained on
``i`` (:func:`residual_from_bank`). Every shadow is used: after the bank is trained
the extra cost is a forward pass and per-sample gradients on ``F_k`` per shadow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from unlearn_audit.attacks.registry import get as get_attack
from unlearn_audit.audit.difficulty import (
    DifficultyIndex,
    apply_index,
    evaluate_on_target,
    feasibility,
    learn_on_shadows,
    rank,
    spearman,
)
from unlearn_audit.audit.difficulty_features import (
    _median_distance,
    entanglement,
    grad_norms,
    loss_and_margin,
    memorization,
    residual_from_bank,
    stein_self_score,
)
from unlearn_audit.learning.train import predict_logits
from unlearn_audit.runfiles.names import (
    DIFFICULTY,
    DIFFICULTY_RANK,
    FEATURE,
    FLAGS,
    RESIDUAL,
    column,
)

#: Feature names, in the order of the ``feature.<name>`` columns and the index.
FEATURES = ("memorization", "lira", "loss", "margin", "grad_norm", "stein", "entanglement")
#: Non-negative heavy-tailed features the ridge sees as ``log1p`` (ranks are unchanged).
TAMED = ("loss", "grad_norm", "stein")
#: The attack whose score is the ``lira`` feature (exposure of the trained model).
EXPOSURE_ATTACK = "lira_online"
#: Ridge strength per row: only stabilises collinear features (loss, margin, gradient).
RIDGE_ALPHA = 0.01
#: Neighbours per side of the entanglement feature.
ENTANGLEMENT_K = 5
#: Largest number of per-sample gradient floats held at once (sets the vmap chunk).
GRAD_FLOATS = 200_000_000
#: Forget inputs the Stein bandwidth's median heuristic looks at, at most.
BANDWIDTH_SAMPLES = 2000
#: Share of the forget set in the hardest and in the easiest group of ``deciles``.
DECILE = 0.1


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


def tame(features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the ridge sees: ``log1p`` of the :data:`TAMED` features, the others as they are."""
    return {
        n: np.log1p(np.maximum(v, 0.0)) if n in TAMED else np.asarray(v, dtype=np.float64)
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


def assess(
    rows: Rows,
    shadow_y: np.ndarray,
    target: Mapping[str, np.ndarray],
    target_y: np.ndarray,
    ids: np.ndarray,
    bar: float,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Learn the index on the shadow rows, evaluate it on the audited model's rows.

    Args:
        rows: Fitting rows (:func:`shadow_rows`).
        shadow_y: Their realised outcomes (:func:`shadow_outcomes`).
        target: The audited forget samples' features by name (:func:`target_rows`).
        target_y: The audited model's realised outcome per forget sample.
        ids: Pool indices of the forget samples (tie-break of the rank).
        bar: Largest predicted residual that is still feasible.

    Returns:
        The method's ``difficulty`` entry of results.json, and per-forget-sample
        ``index``, ``rank``, ``residual`` and ``flags`` arrays.
    """
    fit = tame(rows.features)
    index = learn_on_shadows(fit, shadow_y, alpha=RIDGE_ALPHA)
    x = tame({n: target[n] for n in index.names})
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
    return entry, columns


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


def _fmt(value: float | None, spec: str = ".3f") -> str:
    """A number for the log line; ``n/a`` for a missing or NaN one."""
    return "n/a" if value is None or value != value else format(value, spec)


def run_difficulty(
    *,
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
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The ``difficulty`` block of results.json and the ``samples.csv`` columns.

    Args:
        original: The original model (the audited rows' features).
        signals: Signals ``(n, A)`` of every target model by name (``original`` included).
        banks: U-LiRA bank ``(m, n, A)`` of each method that has one.
        shadow: Trained shadow signals ``(m, n, A)``; keep: their keep matrix ``(m, n)``.
        pool: The pool and the Stein bandwidth.
        forget, retain: Pool indices of the audit's forget and retain sets.
        load: Returns shadow ``k``'s trained model.
        bar: Feasibility bar on the residual scale.
        log: Progress lines.

    Returns:
        ``({method: entry}, columns)``; a method without a bank or a signal gets no entry.
    """
    methods = [m for m in banks if m in signals]
    if not methods:
        return {}, {}
    log(
        f"difficulty: features of {forget.size} forget samples (original and "
        f"{shadow.shape[0]} shadow models)"
    )
    target = target_rows(original, signals["original"], shadow, keep, pool, forget, retain)
    rows = shadow_rows(load, shadow, keep, pool, forget)
    block: dict[str, Any] = {}
    columns = difficulty_columns(
        keep.shape[1], forget, {column(FEATURE, n): v for n, v in target.items()}
    )
    for name in methods:
        shadow_y = shadow_outcomes(banks[name], shadow, keep, rows)
        target_y = target_outcome(signals[name], shadow, keep, forget)
        entry, per = assess(rows, shadow_y, target, target_y, forget, bar)
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
    return block, columns
