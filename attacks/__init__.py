"""Membership inference attacks, signals, shadow-model design and ROC metrics.

Pure NumPy/SciPy (no torch). Convention everywhere: higher score = more likely a member.
"""

from attacks.baselines import loss_attack
from attacks.lira import lira
from attacks.metrics import auc_ci, auc_difference_ci, roc_curve, roc_metrics
from attacks.registry import Attack, UnknownAttackError, available, get, register
from attacks.shadows import check_keep_matrix, make_keep_matrix
from attacks.signals import logit_scaled_confidence, loss_from_signal

__all__ = [
    "Attack",
    "UnknownAttackError",
    "auc_ci",
    "auc_difference_ci",
    "available",
    "check_keep_matrix",
    "get",
    "lira",
    "logit_scaled_confidence",
    "loss_attack",
    "loss_from_signal",
    "make_keep_matrix",
    "register",
    "roc_curve",
    "roc_metrics",
]
