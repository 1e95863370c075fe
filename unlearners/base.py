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
import warnings
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from unlearn_audit.learning.train import Objective, Recipe, step_count
from unlearn_audit.unlearners._contrastive import uses_negatives
from unlearn_audit.unlearners._legacy import call_old, old_style
from unlearn_audit.unlearners.request import (
    PARADIGMS,
    Data,
    ForgetRequest,
    UnlearnContext,
    paradigm_of,
)

steps_for = step_count  # the step count of ``learning.train.fit``, under its older name here


class UnlearnerError(ValueError):
    """Unknown method or invalid method parameters."""


@dataclasses.dataclass(frozen=True)
class NoParams:
    """A method without parameters."""


class Unlearner(ABC):
    """Base class of every unlearning method.

    Subclasses set ``name``, ``paradigms``, ``summary``, a frozen dataclass
    ``Params`` of hyper-parameters with defaults, and implement
    :meth:`_unlearn` ``(model, request, ctx)`` and :meth:`max_steps` (the method's
    budget: the most optimizer steps it may run). A fine-tuning-style method
    derives from :class:`unlearners.tuning.FineTuneUnlearner` instead, which
    implements both from the method's training set, loss and epochs.
    """

    name: ClassVar[str]
    paradigms: ClassVar[frozenset[str]] = frozenset({"supervised"})
    summary: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    # True: the method's loss is built on InfoNCE negatives, so it refuses a contrastive
    # objective without them (``negatives = False``, e.g. ``learning.byol.BYOL``)
    needs_negatives: ClassVar[bool] = False

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
        reference: Data | None = None,
    ) -> nn.Module:
        """Return an unlearned copy of ``model``; ``model`` itself is left untouched.

        Builds the :class:`ForgetRequest` and the :class:`UnlearnContext` (whose
        ``paradigm`` comes from the objective) and calls :meth:`_unlearn` on a deep
        copy of ``model``; a method with the old ``_unlearn`` signature is called
        the old way, with a ``DeprecationWarning`` (:mod:`unlearners._legacy`).

        Args:
            model: The trained model.
            forget: ``(x, y)`` tensors of the samples to forget, on the model's device.
            retain: ``(x, y)`` tensors of the samples to keep.
            objective: The training objective the model was trained with.
            recipe: The training recipe of the original model (methods scale from it).
            generator: Seeded generator on the model's device; every draw comes from it.
            progress: Show a progress bar.
            reference: Optional ``(x, y)`` of non-member ("third-party") data, never
                trained on by the original model. Only methods that say so use it
                (``gradient_constraint`` with ``variant="matched"`` requires it); every
                other method ignores it.

        Raises:
            UnlearnerError: the objective's paradigm is not one of the method's
                ``paradigms``, the method needs negatives the objective lacks
                (``needs_negatives``), or it needs data it was not given (``reference``).
            learning.DivergenceError: the method's loss became NaN or infinite.
        """
        ctx = UnlearnContext(objective, recipe, generator, paradigm_of(objective), progress)
        self._check_paradigm(ctx)
        request = ForgetRequest(forget, retain, reference)
        work = copy.deepcopy(model)
        style = old_style(type(self))
        if style is None:
            out = self._unlearn(work, request, ctx)
        else:
            out = call_old(self, style, work, request, ctx)
        out.eval()
        return out

    @abstractmethod
    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> nn.Module:
        """Unlearn ``request`` in place on the private copy ``model`` and return it."""

    def _check_paradigm(self, ctx: UnlearnContext) -> None:
        """Refuse an objective of a paradigm the method does not declare, and an
        objective without negatives if the method needs them."""
        if ctx.paradigm in self.paradigms:
            if self.needs_negatives and not uses_negatives(ctx.objective):
                objective = getattr(ctx.objective, "name", type(ctx.objective).__name__)
                raise UnlearnerError(
                    f"{self.name} needs a contrastive objective with negative pairs "
                    f"(its loss is InfoNCE); {objective} has none"
                )
            return
        if ctx.paradigm == "contrastive":
            raise UnlearnerError(
                f"{self.name} needs a supervised classifier, not a contrastive encoder"
            )
        objective = getattr(ctx.objective, "name", type(ctx.objective).__name__)
        raise UnlearnerError(
            f"{self.name} needs a contrastive objective (one with a views() method), "
            f"got {objective}"
        )

    def max_steps(self, n_forget: int, n_retain: int, recipe: Recipe) -> int:
        """The method's budget: the most optimizer steps :meth:`unlearn` may run.

        Computed from the sizes of the forget and retain sets, the recipe's batch
        size (and epochs, for ``retrain``) and the method's own epoch parameters,
        with :func:`learning.train.step_count`. Training-free methods return 0. Every built-in
        method defines it, and the contract test counts the steps actually taken
        against it; a user's method that does not declare a budget raises.
        """
        raise NotImplementedError(f"{self.name} declares no budget (max_steps)")

    def describe(self) -> dict[str, Any]:
        """Name, paradigms, summary and current parameter values."""
        return {
            "name": self.name,
            "paradigms": sorted(self.paradigms),
            "summary": self.summary,
            "params": dataclasses.asdict(self.params),
        }


class TrainingFreeUnlearner(Unlearner):
    """Base of the methods that run no optimizer step (controls, one-shot weight edits).

    Their budget is 0 steps; they implement :meth:`_unlearn` only.
    """

    def max_steps(self, n_forget: int, n_retain: int, recipe: Recipe) -> int:
        return 0


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


ENTRY_POINT_GROUP = "unlearn_audit.unlearners"
_plugins_loaded = False


def _load_plugins() -> None:
    """Register the unlearners that installed packages declare as entry points.

    A package declares ``[project.entry-points."unlearn_audit.unlearners"]``
    ``my_method = "my_pkg.module:MyUnlearner"``. A plugin that fails to load is
    reported as a warning and skipped, so one broken package does not break the tool.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
            _check_class(cls, f"entry point '{ep.name}' ({ep.value})")
            register(cls)
        except Exception as exc:
            warnings.warn(f"unlearner plugin '{ep.name}' ({ep.value}) skipped: {exc}", stacklevel=2)


def _check_class(cls: object, what: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Unlearner)):
        raise UnlearnerError(f"{what} is not a subclass of unlearners.Unlearner")


def available() -> list[str]:
    """Registered method names (built-in and plugins), sorted."""
    _load_plugins()
    return sorted(_REGISTRY)


def get(name: str) -> type[Unlearner]:
    """The class registered as ``name``, or named by ``package.module:Class`` (then registered)."""
    _load_plugins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        from unlearn_audit.learning.checkpoints import CheckpointError, import_object

        try:
            cls = import_object(name, "unlearner")
        except CheckpointError as exc:
            raise UnlearnerError(str(exc)) from exc
        _check_class(cls, f"unlearner '{name}'")
        return register(cls)
    raise UnlearnerError(
        f"unknown unlearner '{name}'; valid: {', '.join(available())} or package.module:Class"
    )


def create(name: str, **params: Any) -> Unlearner:
    """Instantiate the method registered as ``name`` with ``params``."""
    return get(name)(**params)


def seed_from(generator: torch.Generator) -> int:
    """Draw a seed for a sub-task (e.g. a fresh initialisation) from ``generator``."""
    return int(
        torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device).item()
    )
