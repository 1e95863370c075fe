"""The unlearning interface and its registry.

An :class:`Unlearner` turns a trained model into one that should behave as if
the forget set had never been seen. :meth:`Unlearner.unlearn` always works on a
deep copy, so the caller's model is never mutated. Methods register under a
name with :func:`register`; the pipeline only ever calls :func:`create` with a
name from the config, so it never branches on a method's name.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from learning.train import Objective, Recipe

Data = tuple[torch.Tensor, torch.Tensor]
PARADIGMS = frozenset({"supervised", "contrastive"})


class UnlearnerError(ValueError):
    """Unknown method or invalid method parameters."""


@dataclasses.dataclass(frozen=True)
class NoParams:
    """A method without parameters."""


class Unlearner(ABC):
    """Base class of every unlearning method.

    Subclasses set ``name``, ``paradigms``, ``summary``, a frozen dataclass
    ``Params`` of hyper-parameters with defaults, and implement :meth:`_unlearn`.
    """

    name: ClassVar[str]
    paradigms: ClassVar[frozenset[str]] = frozenset({"supervised"})
    summary: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams

    def __init__(self, **params: Any) -> None:
        fields = {f.name for f in dataclasses.fields(self.Params)}
        unknown = sorted(set(params) - fields)
        if unknown:
            valid = ", ".join(sorted(fields)) or "none"
            raise UnlearnerError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}; valid: {valid}"
            )
        try:
            self.params = self.Params(**params)
        except (TypeError, ValueError) as exc:
            raise UnlearnerError(f"{self.name}: {exc}") from exc

    def unlearn(
        self,
        model: nn.Module,
        forget: Data,
        retain: Data,
        *,
        objective: Objective,
        recipe: Recipe,
        generator: torch.Generator,
        progress: bool = False,
    ) -> nn.Module:
        """Return an unlearned copy of ``model``; ``model`` itself is left untouched.

        Args:
            model: The trained model.
            forget: ``(x, y)`` tensors of the samples to forget, on the model's device.
            retain: ``(x, y)`` tensors of the samples to keep.
            objective: The training objective the model was trained with.
            recipe: The training recipe of the original model (methods scale from it).
            generator: Seeded generator on the model's device; every draw comes from it.
            progress: Show a progress bar.
        """
        work = copy.deepcopy(model)
        out = self._unlearn(
            work,
            forget,
            retain,
            objective=objective,
            recipe=recipe,
            generator=generator,
            progress=progress,
        )
        out.eval()
        return out

    @abstractmethod
    def _unlearn(
        self,
        model: nn.Module,
        forget: Data,
        retain: Data,
        *,
        objective: Objective,
        recipe: Recipe,
        generator: torch.Generator,
        progress: bool,
    ) -> nn.Module:
        """Unlearn in place on the private copy ``model`` and return it."""

    def describe(self) -> dict[str, Any]:
        """Name, paradigms, summary and current parameter values."""
        return {
            "name": self.name,
            "paradigms": sorted(self.paradigms),
            "summary": self.summary,
            "params": dataclasses.asdict(self.params),
        }


_REGISTRY: dict[str, type[Unlearner]] = {}
U = TypeVar("U", bound=type[Unlearner])


def register(cls: U) -> U:
    """Class decorator: add an unlearner to the registry under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not name:
        raise UnlearnerError(f"{cls.__qualname__} has no name")
    if not cls.paradigms or not cls.paradigms <= PARADIGMS:
        raise UnlearnerError(f"{name}: paradigms must be a non-empty subset of {sorted(PARADIGMS)}")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise UnlearnerError(f"an unlearner named '{name}' is already registered")
    _REGISTRY[name] = cls
    return cls


def available() -> list[str]:
    """Registered method names, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> type[Unlearner]:
    """The class registered as ``name``."""
    if name not in _REGISTRY:
        raise UnlearnerError(f"unknown unlearner '{name}'; valid: {', '.join(available())}")
    return _REGISTRY[name]


def create(name: str, **params: Any) -> Unlearner:
    """Instantiate the method registered as ``name`` with ``params``."""
    return get(name)(**params)


def seed_from(generator: torch.Generator) -> int:
    """Draw a seed for a sub-task (e.g. a fresh initialisation) from ``generator``."""
    return int(
        torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device).item()
    )
