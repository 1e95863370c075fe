"""Unlearning methods behind one interface, with a registry."""

# Importing a module registers its methods.
from unlearners import alignment as _alignment  # noqa: F401
from unlearners import basic as _basic  # noqa: F401
from unlearners import distill as _distill  # noqa: F401
from unlearners import fisher as _fisher  # noqa: F401
from unlearners import gradient_constraint as _gradient_constraint  # noqa: F401
from unlearners import penalised as _penalised  # noqa: F401
from unlearners import relabel as _relabel  # noqa: F401
from unlearners.base import (
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
from unlearners.request import Data, ForgetRequest, UnlearnContext, paradigm_of
from unlearners.tuning import FineTuneUnlearner, TuneParams, Tuning

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
