"""Controls and simple baselines: ``noop``, ``retrain``, ``finetune``, ``gradient_ascent``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from learning.models import reinitialize
from learning.train import Objective, Recipe, fit
from unlearners._common import BOTH, positive, tune
from unlearners.base import Data, Unlearner, register, seed_from, steps_for


@register
class Noop(Unlearner):
    """Negative control: returns an unchanged copy of the original model."""

    name = "noop"
    paradigms = BOTH
    summary = "negative control: the original model, unchanged"

    def max_steps(self, n_forget: int, n_retain: int, recipe: Recipe) -> int:
        return 0

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
        reference: Data | None = None,
    ) -> nn.Module:
        return model


@register
class Retrain(Unlearner):
    """Positive control and gold standard: re-initialise and train on the retain set only.

    Uses the original recipe in full, with a fresh seed drawn from the generator.
    """

    name = "retrain"
    paradigms = BOTH
    summary = "positive control: retrain from scratch on the retain set (exact unlearning)"

    def max_steps(self, n_forget: int, n_retain: int, recipe: Recipe) -> int:
        return steps_for(n_retain, recipe.batch_size, recipe.epochs)

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
        reference: Data | None = None,
    ) -> nn.Module:
        reinitialize(model, seed_from(generator))
        return fit(
            model, *retain, objective.loss, recipe, generator, progress=progress, desc="retrain"
        )


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


@register
class Finetune(Unlearner):
    """Fine-tune on the retain set only, relying on catastrophic forgetting.

    Warnecke et al. 2023 / Golatkar et al. 2020 baseline "FT".
    """

    name = "finetune"
    paradigms = BOTH
    summary = "fine-tune on the retain set (catastrophic forgetting)"
    Params = TuneParams

    def max_steps(self, n_forget: int, n_retain: int, recipe: Recipe) -> int:
        return steps_for(n_retain, recipe.batch_size, self.params.epochs)

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
        reference: Data | None = None,
    ) -> nn.Module:
        return tune(self, model, *retain, objective.loss, recipe, generator, progress)


@dataclass(frozen=True)
class AscentParams(TuneParams):
    """Gradient ascent runs fewer, gentler steps by default: it diverges easily.

    Attributes:
        epochs: Passes over the forget set.
        lr_scale: Learning rate as a multiple of the original recipe's ``lr``.
    """

    epochs: float = 2.0
    lr_scale: float = 0.05


@register
class GradientAscent(Unlearner):
    """Gradient ascent on the forget set ("NegGrad"): maximise the training loss there.

    Thudi et al. 2022; Golatkar et al. 2020. Minimises ``-L(f; D_forget)``.
    Divergence (a non-finite loss) raises :class:`learning.DivergenceError`.
    """

    name = "gradient_ascent"
    paradigms = BOTH
    summary = "gradient ascent on the forget set (NegGrad)"
    Params = AscentParams

    def max_steps(self, n_forget: int, n_retain: int, recipe: Recipe) -> int:
        return steps_for(n_forget, recipe.batch_size, self.params.epochs)

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
        reference: Data | None = None,
    ) -> nn.Module:

        def ascent(
            m: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator
        ) -> torch.Tensor:
            return -objective.loss(m, x, y, g)

        return tune(self, model, *forget, ascent, recipe, generator, progress)
