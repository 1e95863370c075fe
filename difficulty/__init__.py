"""Per-sample unlearning difficulty and feasibility (docs/difficulty.md).

A floor of its own, above ``attacks`` and below ``audit`` (docs/design.md "Layout"):
it imports ``learning`` (logits, representations), ``unlearners`` (per-sample gradient
norms of an encoder's loss) and ``attacks`` (the LiRA exposure feature), never the
audit, which hands it plain arrays, models, a shadow loader and the feature set its
paradigm supplies.

- :mod:`~unlearn_audit.difficulty.features`: the per-sample feature functions of a
  classifier and the realised outcome they predict (memorization, loss, margin,
  gradient norm, Stein self-score, entanglement, residual among the OUT shadows);
- :mod:`~unlearn_audit.difficulty.rows`: the :class:`FeatureSet` interface, the bank
  features, and the fitting (shadow) and audited rows of an audit;
- :mod:`~unlearn_audit.difficulty.classifier`: :class:`ClassifierFeatures`, the
  feature set of a classifier;
- :mod:`~unlearn_audit.difficulty.encoder`: :class:`EncoderFeatures`, the feature set
  of a contrastive encoder (alignment, contrastive-loss gradient norm, entanglement,
  kNN label margin and density in representation space);
- :mod:`~unlearn_audit.difficulty.index`: the index library (ridge fit on shadow
  rows, evaluation on the audited model, rank, feasibility);
- :mod:`~unlearn_audit.difficulty.assess`: per method, the index learned and judged,
  and :func:`run_difficulty`, which gives the audit one :class:`DifficultyResult`
  (its results.json block and samples.csv columns).
"""

from unlearn_audit.difficulty.assess import DifficultyResult, run_difficulty
from unlearn_audit.difficulty.classifier import FEATURES, ClassifierFeatures
from unlearn_audit.difficulty.encoder import ENCODER_FEATURES, EncoderFeatures
from unlearn_audit.difficulty.rows import FeatureSet, PoolData

# what the audit uses; the index library and the features are imported from their modules
__all__ = [
    "ENCODER_FEATURES",
    "FEATURES",
    "ClassifierFeatures",
    "DifficultyResult",
    "EncoderFeatures",
    "FeatureSet",
    "PoolData",
    "run_difficulty",
]
