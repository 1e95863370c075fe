"""The fine-tuning template: a method that is one run of :func:`learning.train.fit`.

A fine-tuning-style method says which parts of the request it iterates over
(``trains_on``), what it minimises (:meth:`FineTuneUnlearner.tuning`, which may
also hand over a training set it built: relabelled, subsampled, indices) and
its epochs and learning rate (``Params.epochs`` and ``Params.lr_scale`` by
default). The template runs the step loop and derives the budget
(:meth:`FineTuneUnlearner.max_steps`) from the same numbers, so a method never
states its budget by hand; a training set whose size disagrees with
``trains_on`` is refused rather than run over budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from unlearn_audit.learning.train import LossFn, Recipe, fit, step_count
from unlearn_audit.unlearners._common import positive
from unlearn_audit.unlearners.base import Unlearner, UnlearnerError
from unlearn_audit.unlearners.request import Data, ForgetRequest, UnlearnContext

Part = Literal["forget", "retain"]


@dataclass(frozen=True)
class TuneParams:
    """Epochs of the unlearning pass and its learning rate relative to the recipe's.

    Attributes:
        epochs: Passes over the method's training set (may be fractional).
        lr_scale: Learning rate as a multiple of the original recipe's ``lr``.
    """

    epochs: float = 5.0
    lr_scale: float = 0.5

    def __post_init__(self) -> None:
        positive("epochs", self.epochs)
        positive("lr_scale", self.lr_scale)


@dataclass(frozen=True)
class Tuning:
    """What one fine-tuning run minimises, and on what.

    Attributes:
        loss: ``loss(model, x, y, generator)`` of a batch of the training set.
        data: The training set ``(x, y)``; None: the ``trains_on`` parts of the
            request, concatenated in that order. Its size must be the
            ``train_size`` the budget counts.
        after_step: Called with the model after every optimizer step.
        cleanup: Called once training ends, whether or not it succeeded (e.g. to
            remove hooks :meth:`FineTuneUnlearner.tuning` put on the model).
    """

    loss: LossFn
    data: Data | None = None
    after_step: Callable[[nn.Module], None] | None = None
    cleanup: Callable[[], None] | None = None


class FineTuneUnlearner(Unlearner):
    """Base of the methods that fine-tune once with :func:`learning.train.fit`.

    A subclass sets ``trains_on`` (the parts of the request it iterates over) and,
    unless it minimises the training objective itself, overrides :meth:`tuning`.
    Its ``Params`` has ``epochs`` and ``lr_scale`` (see :class:`TuneParams`), or it
    overrides :meth:`epochs` and :meth:`lr`. The budget follows:
    ``step_count(train_size, recipe.batch_size, epochs)``.
    """

    trains_on: ClassVar[tuple[Part, ...]] = ("retain",)

    def tuning(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Tuning:
        """The loss (and, if not the ``trains_on`` parts, the data) of the run.

        Called once on the private copy ``model`` before training; draws from
        ``ctx.generator`` happen in the order this method makes them. The default
        minimises the training objective.
        """
        return Tuning(ctx.objective.loss)

    def epochs(self, recipe: Recipe) -> float:
        """Passes over the training set: ``Params.epochs``."""
        epochs: float = self.params.epochs
        return epochs

    def lr(self, recipe: Recipe) -> float:
        """Learning rate: ``Params.lr_scale`` times the recipe's."""
        return recipe.lr * self.params.lr_scale

    def train_size(self, n_forget: int, n_retain: int) -> int:
        """Samples of the training set: the sizes of the ``trains_on`` parts, summed."""
        sizes = {"forget": n_forget, "retain": n_retain}
        return sum(sizes[part] for part in self.trains_on)

    def max_steps(self, n_forget: int, n_retain: int, recipe: Recipe) -> int:
        return step_count(
            self.train_size(n_forget, n_retain), recipe.batch_size, self.epochs(recipe)
        )

    def training_set(self, request: ForgetRequest) -> Data:
        """The ``trains_on`` parts of ``request``, concatenated in that order."""
        parts = [getattr(request, part) for part in self.trains_on]
        if len(parts) == 1:
            return parts[0]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> nn.Module:
        task = self.tuning(model, request, ctx)
        try:
            x, y = task.data if task.data is not None else self.training_set(request)
            n = self.train_size(request.n_forget, request.n_retain)
            if x.shape[0] != n:
                raise UnlearnerError(
                    f"{self.name}: its training set has {x.shape[0]} samples, "
                    f"its budget counts {n} (train_size)"
                )
            return fit(
                model,
                x,
                y,
                task.loss,
                ctx.recipe,
                ctx.generator,
                lr=self.lr(ctx.recipe),
                epochs=self.epochs(ctx.recipe),
                progress=ctx.progress,
                desc=self.name,
                after_step=task.after_step,
            )
        finally:
            if task.cleanup is not None:
                task.cleanup()
