"""Controls and simple baselines: ``noop``, ``retrain``, ``finetune``, ``gradient_ascent``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unlearn_audit.learning.models import reinitialize
from unlearn_audit.learning.train import Recipe
from unlearn_audit.unlearners._common import BOTH
from unlearn_audit.unlearners.base import TrainingFreeUnlearner, register, seed_from
from unlearn_audit.unlearners.request import ForgetRequest, UnlearnContext
from unlearn_audit.unlearners.tuning import FineTuneUnlearner, TuneParams, Tuning


@register
class Noop(TrainingFreeUnlearner):
    """Negative control: returns an unchanged copy of the original model."""

    name = "noop"
    paradigms = BOTH
    summary = "negative control: the original model, unchanged"

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> nn.Module:
        return model


@register
class Retrain(FineTuneUnlearner):
    """Positive control and gold standard: re-initialise and train on the retain set only.

    Uses the original recipe in full, with a fresh seed drawn from the generator.
    """

    name = "retrain"
    paradigms = BOTH
    summary = "positive control: retrain from scratch on the retain set (exact unlearning)"

    def epochs(self, recipe: Recipe) -> float:
        return recipe.epochs

    def lr(self, recipe: Recipe) -> float:
        return recipe.lr

    def tuning(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Tuning:
        reinitialize(model, seed_from(ctx.generator))
        return Tuning(ctx.objective.loss)


@register
class Finetune(FineTuneUnlearner):
    """Fine-tune on the retain set only, relying on catastrophic forgetting.

    Warnecke et al. 2023 / Golatkar et al. 2020 baseline "FT".
    """

    name = "finetune"
    paradigms = BOTH
    summary = "fine-tune on the retain set (catastrophic forgetting)"
    Params = TuneParams


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
class GradientAscent(FineTuneUnlearner):
    """Gradient ascent on the forget set ("NegGrad"): maximise the training loss there.

    Thudi et al. 2022; Golatkar et al. 2020. Minimises ``-L(f; D_forget)``.
    Divergence (a non-finite loss) raises :class:`learning.DivergenceError`.
    """

    name = "gradient_ascent"
    paradigms = BOTH
    summary = "gradient ascent on the forget set (NegGrad)"
    Params = AscentParams
    trains_on = ("forget",)

    def tuning(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Tuning:
        objective = ctx.objective

        def ascent(
            m: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator
        ) -> torch.Tensor:
            return -objective.loss(m, x, y, g)

        return Tuning(ascent)
