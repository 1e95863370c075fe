"""Per-sample unlearning difficulty and feasibility (docs/difficulty.md).

A floor of its own, above ``attacks`` and below ``audit`` (docs/design.md "Layout"):
it imports ``learning`` (logits) and ``attacks`` (the LiRA exposure feature), never
the audit, which hands it plain arrays, models and a shadow loader.

- :mod:`~unlearn_audit.difficulty.features`: the per-sample features and the
  realised outcome they predict (memorization, loss, margin, gradient norm, Stein
  self-score, entanglement, residual among the OUT shadows);
- :mod:`~unlearn_audit.difficulty.index`: the index library (ridge fit on shadow
  rows, evaluation on the audited model, rank, feasibility);
- :mod:`~unlearn_audit.difficulty.rows`: the fitting (shadow) and audited rows of an
  audit, features and outcomes;
- :mod:`~unlearn_audit.difficulty.assess`: per method, the index learned and judged,
  and :func:`run_difficulty`, which gives the audit one :class:`DifficultyResult`
  (its results.json block and samples.csv columns).
"""

from unlearn_audit.difficulty.assess import DifficultyResult, run_difficulty
from unlearn_audit.difficulty.features import (
    entanglement,
    grad_norms,
    loss_and_margin,
    memorization,
    residual_from_bank,
    stein_self_score,
)
from unlearn_audit.difficulty.index import (
    DifficultyIndex,
    apply_index,
    evaluate_on_target,
    feasibility,
    fit_index,
    learn_on_shadows,
    rank,
    spearman,
)
from unlearn_audit.difficulty.rows import FEATURES, PoolData

__all__ = [
    "FEATURES",
    "DifficultyIndex",
    "DifficultyResult",
    "PoolData",
    "apply_index",
    "entanglement",
    "evaluate_on_target",
    "feasibility",
    "fit_index",
    "grad_norms",
    "learn_on_shadows",
    "loss_and_margin",
    "memorization",
    "rank",
    "residual_from_bank",
    "run_difficulty",
    "spearman",
    "stein_self_score",
]
