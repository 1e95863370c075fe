"""Unlearning methods behind one interface, with a registry."""

from unlearners import basic as _basic  # noqa: F401  (registers the built-in methods)
from unlearners.base import (
    Data,
    Unlearner,
    UnlearnerError,
    available,
    create,
    get,
    register,
    seed_from,
)

__all__ = [
    "Data",
    "Unlearner",
    "UnlearnerError",
    "available",
    "create",
    "get",
    "register",
    "seed_from",
]
