"""Per-sample difficulty index: learned on shadow models, evaluated on the audited model.

The features of :mod:`unlearn_audit.difficulty.features` are combined into one index
that predicts each forget sample's realised residual membership after
unlearning (e.g. :func:`.features.residual_from_bank`). Rizwan, Sarvmaili, Sajjad & Wu
(arXiv 2410.03043) argue for such a unified per-instance predictor and judge
factors by their rank agreement with the realised outcome; Zhao et al.
(NeurIPS 2024) show memorization and entanglement each predict difficulty.

Protocol (the order the API enforces):

1. :func:`learn_on_shadows` fits the combination on rows whose outcome is known
   without looking at the audited model: shadow models that trained on, then
   unlearned, a sample (one row per shadow and forget sample in its ``F_k``).
2. :func:`evaluate_on_target` applies that fixed index to the audited model's
   forget samples and reports the Spearman correlation of the index, and of
   each feature alone, with the audited model's realised outcome. It refuses
   an index fitted on the very same rows.

The combination (our choice; the papers leave it open) is ridge regression of
the outcome on z-scored features, ``ŷ = μ_y + σ_y Σ_f w_f (x_f - μ_f) / σ_f``
with ``w = (ZᵀZ + α s I)⁻¹ Zᵀ (y - μ_y) / σ_y`` (``s`` rows), all moments from
the shadow rows only. Its prediction is on the outcome's scale, so the index
*is* the predicted residual used by :func:`feasibility`. Deterministic: a
closed-form solve, no random draw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

__all__ = [
    "DifficultyIndex",
    "apply_index",
    "evaluate_on_target",
    "feasibility",
    "fit_index",
    "learn_on_shadows",
    "rank",
    "spearman",
]


@dataclass(frozen=True, eq=False)
class DifficultyIndex:
    """A fitted linear index (see the module docstring for the equation).

    Attributes:
        names: Feature names, in column order.
        weights: ``(f,)`` ridge weights on z-scored features.
        mean, scale: ``(f,)`` feature moments of the fitting rows (scale 1 for a
            constant feature).
        y_mean, y_scale: Outcome moments of the fitting rows.
        fingerprint: Hash of the fitting rows (guards against evaluating on them).
        n_rows: Number of fitting rows.
    """

    names: tuple[str, ...]
    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    y_mean: float
    y_scale: float
    fingerprint: str
    n_rows: int


def _matrix(features: Mapping[str, np.ndarray] | np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    if isinstance(features, Mapping):
        missing = [n for n in names if n not in features]
        if missing:
            raise ValueError(f"missing features: {missing}")
        return np.column_stack([np.asarray(features[n], dtype=np.float64) for n in names])
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"need features (rows, {len(names)}), got {x.shape}")
    return x


def _fingerprint(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes()).hexdigest()


def fit_index(
    features: np.ndarray,
    outcomes: np.ndarray,
    *,
    names: tuple[str, ...] | None = None,
    alpha: float = 1.0,
) -> DifficultyIndex:
    """Ridge fit of ``outcomes (s,)`` on z-scored ``features (s, f)`` (closed form).

    Args:
        features: ``(s, f)`` fitting rows (shadow data).
        outcomes: ``(s,)`` realised outcomes of those rows.
        names: Feature names (default ``f0, f1, ...``).
        alpha: Ridge strength per row (``alpha * s`` is added to ``ZᵀZ``).

    Returns:
        The fitted :class:`DifficultyIndex`.

    Raises:
        ValueError: Shapes mismatch, non-finite values, or fewer than 2 rows.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(outcomes, dtype=np.float64)
    names = names or tuple(f"f{j}" for j in range(x.shape[1] if x.ndim == 2 else 0))
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[1] != len(names) or x.shape[0] < 2:
        raise ValueError(f"need features (s>=2, f) and outcomes (s,), got {x.shape}, {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("features and outcomes must be finite (drop NaN rows first)")
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale
    y_mean, y_scale = float(y.mean()), float(y.std()) or 1.0
    gram = z.T @ z + alpha * x.shape[0] * np.eye(x.shape[1])
    w = np.linalg.solve(gram, z.T @ ((y - y_mean) / y_scale))
    return DifficultyIndex(
        tuple(names), w, mean, scale, y_mean, y_scale, _fingerprint(x), int(x.shape[0])
    )


def apply_index(
    index: DifficultyIndex, features: Mapping[str, np.ndarray] | np.ndarray
) -> np.ndarray:
    """Predicted outcome ``(n,)`` of each row (higher = harder to forget)."""
    x = _matrix(features, index.names)
    return index.y_mean + index.y_scale * (((x - index.mean) / index.scale) @ index.weights)


def learn_on_shadows(
    shadow_features: Mapping[str, np.ndarray], shadow_outcomes: np.ndarray, *, alpha: float = 1.0
) -> DifficultyIndex:
    """Step 1: fit the index on shadow rows (features by name, each ``(s,)``).

    Rows with any non-finite feature or outcome are dropped.
    """
    names = tuple(shadow_features)
    x = _matrix(shadow_features, names)
    y = np.asarray(shadow_outcomes, dtype=np.float64)
    ok = np.isfinite(x).all(1) & np.isfinite(y)
    return fit_index(x[ok], y[ok], names=names, alpha=alpha)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation over pairs where both are finite (NaN if undefined)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan")
    return float(spearmanr(x[ok], y[ok]).statistic)


def evaluate_on_target(
    index: DifficultyIndex,
    target_features: Mapping[str, np.ndarray],
    target_outcomes: np.ndarray,
) -> dict[str, object]:
    """Step 2: Spearman ρ of the index and of each feature alone with the audited outcome.

    Args:
        index: An index from :func:`learn_on_shadows` (never fitted on these rows).
        target_features: The audited model's forget-sample features by name.
        target_outcomes: The audited model's realised outcome per forget sample.

    Returns:
        ``{"index": ρ, "features": {name: ρ}, "n": rows, "n_fit": shadow rows}``;
        a feature's ρ keeps its sign (negative = easier when larger).

    Raises:
        ValueError: The target rows are the rows the index was fitted on.
    """
    x = _matrix(target_features, index.names)
    if x.shape[0] == index.n_rows and _fingerprint(x) == index.fingerprint:
        raise ValueError("the index was fitted on these rows: learn on shadows, evaluate on target")
    y = np.asarray(target_outcomes, dtype=np.float64)
    pred = apply_index(index, x)
    return {
        "index": spearman(pred, y),
        "features": {n: spearman(x[:, j], y) for j, n in enumerate(index.names)},
        "n": int(x.shape[0]),
        "n_fit": index.n_rows,
    }


def rank(index: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
    """Difficulty ranks ``(n,)``: 1 = hardest (largest index), NaN last.

    Ties are broken by ``ids`` (e.g. pool indices; default: position), the
    smaller id first, so each sample's rank does not depend on the order the
    samples are given in when ``ids`` are passed.
    """
    v = np.asarray(index, dtype=np.float64)
    i = np.arange(v.size) if ids is None else np.asarray(ids)
    if i.shape != v.shape:
        raise ValueError(f"ids shape {i.shape} != index shape {v.shape}")
    key = np.where(np.isnan(v), np.inf, -v)
    order = np.lexsort((i, key))
    out = np.empty(v.size, dtype=np.int64)
    out[order] = np.arange(1, v.size + 1)
    return out


def feasibility(predicted_residual: np.ndarray, bar: float) -> tuple[float, list[str]]:
    """Share of samples predicted to reach retrain-indistinguishability, and per-sample flags.

    A sample is feasible at this budget when its predicted residual is at most
    ``bar`` (e.g. 0.5 + tolerance on the :func:`.features.residual_from_bank` scale).

    Returns:
        ``(share, flags)``: ``flags[i]`` is ``""`` for a feasible sample, else
        ``"infeasible at this budget: ..."`` with the reason.
    """
    p = np.asarray(predicted_residual, dtype=np.float64)
    flags = []
    for v in p:
        if np.isnan(v):
            flags.append("infeasible at this budget: no prediction (missing feature)")
        elif v > bar:
            flags.append(f"infeasible at this budget: predicted residual {v:.3f} > bar {bar:.3f}")
        else:
            flags.append("")
    share = float(np.mean([f == "" for f in flags])) if flags else float("nan")
    return share, flags
