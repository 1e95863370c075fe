"""Teacher-student methods for classifiers: ``scrub`` and ``bad_teacher``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.learning.models import reinitialize
from unlearn_audit.learning.train import Recipe, fit, step_count
from unlearn_audit.unlearners._common import (
    SUPERVISED,
    augment,
    distill_kl,
    frozen_copy,
    in_unit,
    non_negative,
    positive,
)
from unlearn_audit.unlearners.base import Unlearner, register, seed_from
from unlearn_audit.unlearners.request import ForgetRequest, UnlearnContext
from unlearn_audit.unlearners.tuning import FineTuneUnlearner, TuneParams, Tuning


@dataclass(frozen=True)
class ScrubParams:
    """SCRUB hyper-parameters.

    Attributes:
        epochs: Epochs; each runs one min-pass over the retain set.
        max_epochs: The first ``max_epochs`` epochs also start with a max-pass over
            the forget set (the paper's ``msteps``); must not exceed ``epochs``.
        lr_scale: Learning rate (constant, both passes) as a multiple of the recipe's.
        alpha: Weight of the retain KL term in the min-step (the CE weight is 1).
        temperature: Distillation temperature ``T``.
    """

    epochs: int = 3
    max_epochs: int = 1
    lr_scale: float = 0.3
    alpha: float = 1.0
    temperature: float = 4.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not 0 <= self.max_epochs <= self.epochs:
            raise ValueError(
                f"max_epochs must lie in [0, epochs={self.epochs}], got {self.max_epochs}"
            )
        positive("lr_scale", self.lr_scale)
        non_negative("alpha", self.alpha)
        positive("temperature", self.temperature)


@register
class Scrub(Unlearner):
    """SCRUB: a student that moves away from the teacher on forget, stays close on retain.

    Kurmanji et al. 2023, "Towards Unbounded Machine Unlearning" (NeurIPS). The
    teacher is the frozen original model, the student starts as a copy of it. With
    ``d(x) = T^2 KL(p_teacher(x/T) || p_student(x/T))``:

    * max-step (forget batch):  minimise ``-d(x)``;
    * min-step (retain batch):  minimise ``CE(f(x), y) + alpha * d(x)``.

    Each epoch runs one max-pass over the forget set (first ``max_epochs`` epochs
    only, the paper's schedule) and then one min-pass over the retain set, with a
    constant learning rate. Choices: the paper's CE weight ``gamma`` is fixed to 1
    (``alpha`` is relative to it); each pass builds a fresh optimizer, so momentum
    does not carry over between passes (the reference code shares one).
    """

    name = "scrub"
    paradigms = SUPERVISED
    summary = "teacher-student: max KL on forget (first epochs), min CE+KL on retain"
    Params = ScrubParams

    def max_steps(self, n_forget: int, n_retain: int, recipe: Recipe) -> int:
        p: ScrubParams = self.params
        bs = recipe.batch_size
        return p.max_epochs * step_count(n_forget, bs, 1) + p.epochs * step_count(n_retain, bs, 1)

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> nn.Module:
        p: ScrubParams = self.params
        objective, recipe, generator = ctx.objective, ctx.recipe, ctx.generator
        teacher = frozen_copy(model)
        constant = dataclasses.replace(recipe, schedule="constant")
        lr = recipe.lr * p.lr_scale

        def divergence(
            m: nn.Module, x: torch.Tensor, g: torch.Generator
        ) -> tuple[torch.Tensor, torch.Tensor]:
            xa = augment(objective, x, g)
            out = m(xa)
            with torch.no_grad():
                target = teacher(xa)
            return distill_kl(out, target, p.temperature), out

        def max_loss(
            m: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator
        ) -> torch.Tensor:
            return -divergence(m, x, g)[0]

        def min_loss(
            m: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator
        ) -> torch.Tensor:
            kl, out = divergence(m, x, g)
            return F.cross_entropy(out.float(), y) + p.alpha * kl

        for epoch in range(p.epochs):
            if epoch < p.max_epochs:
                fit(
                    model,
                    *request.forget,
                    max_loss,
                    constant,
                    generator,
                    lr=lr,
                    epochs=1,
                    progress=ctx.progress,
                    desc=f"{self.name} max {epoch + 1}",
                )
            fit(
                model,
                *request.retain,
                min_loss,
                constant,
                generator,
                lr=lr,
                epochs=1,
                progress=ctx.progress,
                desc=f"{self.name} min {epoch + 1}",
            )
        return model


@dataclass(frozen=True)
class BadTeacherParams(TuneParams):
    """Bad-teacher hyper-parameters.

    Attributes:
        epochs: Passes over forget + the retain subset, shuffled together.
        lr_scale: Learning rate as a multiple of the recipe's ``lr``.
        retain_fraction: Share of the retain set drawn (once) to distil the competent
            teacher on; the paper uses 30%.
        temperature: Distillation temperature ``T`` of both teachers and the student.
    """

    epochs: float = 1.0
    lr_scale: float = 1.0
    retain_fraction: float = 0.3
    temperature: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        in_unit("retain_fraction", self.retain_fraction, closed=True)
        positive("temperature", self.temperature)


@register
class BadTeacher(FineTuneUnlearner):
    """Bad teaching: distil a competent teacher on retain and an incompetent one on forget.

    Chundawat et al. 2023, "Can Bad Teaching Induce Forgetting? Unlearning in Deep
    Networks Using an Incompetent Teacher" (AAAI). The competent teacher is the
    frozen original model, the incompetent one a randomly initialised copy of the
    architecture (seeded from the generator). For a sample with forget flag
    ``l`` the student minimises

        KL( l * p_bad(x/T) + (1 - l) * p_good(x/T) || p_student(x/T) ),

    averaged over the batch, on forget + a random ``retain_fraction`` of the retain
    set. Choice: batch-mean KL without a ``T^2`` factor (the paper's loss).
    """

    name = "bad_teacher"
    paradigms = SUPERVISED
    summary = "distil the original on retain and a random network on forget"
    Params = BadTeacherParams
    trains_on = ("forget", "retain")

    def _retain_size(self, n_retain: int) -> int:
        return int(round(self.params.retain_fraction * n_retain))

    def train_size(self, n_forget: int, n_retain: int) -> int:
        """Forget and the retain subset of ``retain_fraction``."""
        return n_forget + self._retain_size(n_retain)

    def tuning(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Tuning:
        objective, generator, forget = ctx.objective, ctx.generator, request.forget
        p: BadTeacherParams = self.params
        good = frozen_copy(model)
        bad = frozen_copy(reinitialize(frozen_copy(model), seed_from(generator)))
        xr = request.retain[0]
        keep = torch.randperm(xr.shape[0], generator=generator, device=xr.device)
        keep = keep[: self._retain_size(xr.shape[0])]
        x = torch.cat([forget[0], xr[keep]])
        flag = torch.cat(
            [
                torch.ones(forget[0].shape[0], dtype=torch.long, device=x.device),
                torch.zeros(keep.shape[0], dtype=torch.long, device=x.device),
            ]
        )
        t = p.temperature

        def loss(
            m: nn.Module, xb: torch.Tensor, lb: torch.Tensor, g: torch.Generator
        ) -> torch.Tensor:
            xa = augment(objective, xb, g)
            with torch.no_grad():
                log_good = F.log_softmax(good(xa).float() / t, dim=1)
                log_bad = F.log_softmax(bad(xa).float() / t, dim=1)
                target = torch.where(lb[:, None].bool(), log_bad, log_good)
            log_student = F.log_softmax(m(xa).float() / t, dim=1)
            return F.kl_div(log_student, target, reduction="batchmean", log_target=True)

        return Tuning(loss, data=(x, flag))
