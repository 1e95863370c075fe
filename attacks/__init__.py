"""Membership inference attacks, signals, shadow-model design, metrics and unlearning scores.

Pure NumPy/SciPy (scikit-learn only for the SVC baseline; no torch).
Convention everywhere: higher score = more likely a member.
"""

from unlearn_audit.attacks.baselines import loss_attack
from unlearn_audit.attacks.epsilon import (
    forget_quality,
    forget_quality_points,
    per_example_epsilon,
    signals_by_side,
)
from unlearn_audit.attacks.leakage import retain_exposure_increase
from unlearn_audit.attacks.lira import lira
from unlearn_audit.attacks.metrics import (
    auc_ci,
    auc_difference_ci,
    roc_curve,
    roc_metrics,
    tpr_at_fpr_ci,
)
from unlearn_audit.attacks.population import (
    confidence_attack,
    entropy_attack,
    modified_entropy_attack,
    svc_mia_efficacy,
)
from unlearn_audit.attacks.registry import Attack, UnknownAttackError, available, get, register
from unlearn_audit.attacks.rmia import rmia, tune_rmia_a
from unlearn_audit.attacks.shadows import check_keep_matrix, make_keep_matrix, unlearning_request
from unlearn_audit.attacks.signals import logit_scaled_confidence, loss_from_signal
from unlearn_audit.attacks.ulira import ulira

__all__ = [
    "Attack",
    "UnknownAttackError",
    "auc_ci",
    "auc_difference_ci",
    "available",
    "check_keep_matrix",
    "confidence_attack",
    "entropy_attack",
    "forget_quality",
    "forget_quality_points",
    "get",
    "lira",
    "logit_scaled_confidence",
    "loss_attack",
    "loss_from_signal",
    "make_keep_matrix",
    "unlearning_request",
    "modified_entropy_attack",
    "per_example_epsilon",
    "register",
    "retain_exposure_increase",
    "rmia",
    "roc_curve",
    "roc_metrics",
    "signals_by_side",
    "svc_mia_efficacy",
    "tpr_at_fpr_ci",
    "tune_rmia_a",
    "ulira",
]
