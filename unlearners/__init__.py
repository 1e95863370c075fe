"""Unlearning methods behind one interface, with a registry."""

# Importing a module registers its methods.
from unlearn_audit.unlearners import alignment as _alignment  # noqa: F401
from unlearn_audit.unlearners import basic as _basic  # noqa: F401
from unlearn_audit.unlearners import distill as _distill  # noqa: F401
from unlearn_audit.unlearners import fisher as _fisher  # noqa: F401
from unlearn_audit.unlearners import gradient_constraint as _gradient_constraint  # noqa: F401
from unlearn_audit.unlearners import penalised as _penalised  # noqa: F401
from unlearn_audit.unlearners import relabel as _relabel  # noqa: F401
from unlearn_audit.unlearners.base import (
    TrainingFreeUnlearner,
    Unlearner,
    UnlearnerError,
    available,
    create,
    get,
    register,
    seed_from,
    steps_for,
)
from unlearn_audit.unlearners.request import Data, ForgetRequest, UnlearnContext, paradigm_of
from unlearn_audit.unlearners.tuning import FineTuneUnlearner, TuneParams, Tuning

__all__ = [
    "Data",
    "FineTuneUnlearner",
    "ForgetRequest",
    "TrainingFreeUnlearner",
    "TuneParams",
    "Tuning",
    "UnlearnContext",
    "Unlearner",
    "UnlearnerError",
    "available",
    "create",
    "get",
    "paradigm_of",
    "register",
    "seed_from",
    "steps_for",
]
