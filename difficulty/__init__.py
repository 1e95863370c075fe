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
from unlearn_audit.difficulty.rows import FEATURES, PoolData

# what the audit uses; the index library and the features are imported from their modules
__all__ = ["FEATURES", "DifficultyResult", "PoolData", "run_difficulty"]
