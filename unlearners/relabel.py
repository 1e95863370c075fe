"""Relabelling methods for classifiers: ``random_label`` and ``salun``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.unlearners._common import SUPERVISED, in_unit, num_outputs, wrong_labels
from unlearn_audit.unlearners.base import register
from unlearn_audit.unlearners.request import Data, ForgetRequest, UnlearnContext
from unlearn_audit.unlearners.tuning import FineTuneUnlearner, TuneParams, Tuning


@dataclass(frozen=True)
class RandomLabelParams(TuneParams):
    """Random-label hyper-parameters.

    Attributes:
        epochs: Passes over forget (relabelled) + retain, shuffled together.
        lr_scale: Learning rate as a multiple of the recipe's ``lr``.
    """

    epochs: float = 1.0
    lr_scale: float = 0.5


def relabelled(model: nn.Module, request: ForgetRequest, generator: torch.Generator) -> Data:
    """Forget samples with random wrong labels, concatenated with the retain set."""
    forget, retain = request.forget, request.retain
    wrong = wrong_labels(forget[1], num_outputs(model), generator)
    return torch.cat([forget[0], retain[0]]), torch.cat([wrong, retain[1]])


@register
class RandomLabel(FineTuneUnlearner):
    """Fine-tune on the forget set with random wrong labels, mixed with the retain set.

    Golatkar et al. 2020 / Graves et al. 2021 ("Amnesiac Machine Learning")
    relabelling baseline, in the form SalUn (Fan et al. 2024) builds on: minimise

        E_{(x,y) in D_f} CE(f(x), y') + E_{(x,y) in D_r} CE(f(x), y)

    over the union of both sets, shuffled. Choices: each forget sample gets one
    wrong label ``y' != y``, drawn uniformly once per run (the reference code of
    SalUn redraws labels every batch and may redraw the true one); the training
    augmentation of the objective applies to both parts.
    """

    name = "random_label"
    paradigms = SUPERVISED
    summary = "train on forget with random wrong labels, mixed with retain"
    Params = RandomLabelParams
    trains_on = ("forget", "retain")

    def tuning(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Tuning:
        return Tuning(ctx.objective.loss, data=relabelled(model, request, ctx.generator))


@dataclass(frozen=True)
class SalUnParams(RandomLabelParams):
    """SalUn hyper-parameters (those of ``random_label`` plus the mask's size).

    Attributes:
        ratio: Fraction of all weights marked salient (free to move); SalUn's default 0.5.
    """

    ratio: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        in_unit("ratio", self.ratio, closed=True)


def saliency_mask(
    model: nn.Module, forget: Data, ratio: float, batch_size: int
) -> list[torch.Tensor]:
    """Boolean masks, one per parameter: the ``ratio`` share of largest ``|grad L_f|``.

    ``grad L_f`` is the gradient of the summed cross-entropy over the forget set at
    the original weights (clean inputs, eval mode). The threshold is global over
    all parameters (one ranking), as in the paper; exactly ``round(ratio * N)``
    weights are selected (ties broken by ``topk``).
    """
    params = [q for q in model.parameters() if q.requires_grad]
    grads = [torch.zeros_like(q) for q in params]
    was_training = model.training
    model.eval()
    x, y = forget
    for start in range(0, x.shape[0], batch_size):
        out = model(x[start : start + batch_size])
        loss = F.cross_entropy(out.float(), y[start : start + batch_size], reduction="sum")
        for acc, g in zip(grads, torch.autograd.grad(loss, params), strict=True):
            acc += g
    model.train(was_training)
    flat = torch.cat([g.abs().flatten() for g in grads])
    k = int(round(ratio * flat.numel()))
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    chosen[torch.topk(flat, k, sorted=False).indices] = True
    out_masks, start = [], 0
    for q in params:
        out_masks.append(chosen[start : start + q.numel()].view_as(q))
        start += q.numel()
    return out_masks


@register
class SalUn(RandomLabel):
    """SalUn: random-label unlearning restricted to the forget-salient weights.

    Fan et al. 2024, "SalUn: Empowering Machine Unlearning via Gradient-based
    Weight Saliency in Both Image Classification and Generation" (ICLR).
    The saliency mask is ``m = 1(|grad_theta L_f(theta_o)| >= q)`` with ``q``
    the threshold that marks the top ``ratio`` share of weights (eq. 5 of the
    paper, hard threshold); the update is ``theta = m * theta_u + (1 - m) * theta_o``,
    where ``theta_u`` trains with the ``random_label`` objective.

    Non-salient weights stay *exactly* at their original values: their gradients
    are masked by tensor hooks, and after every optimizer step they are copied
    back from ``theta_o`` (so weight decay and momentum cannot move them either).
    """

    name = "salun"
    paradigms = SUPERVISED
    summary = "random-label unlearning on forget-salient weights only (weight saliency)"
    Params = SalUnParams

    def tuning(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Tuning:
        p: SalUnParams = self.params
        params = [q for q in model.parameters() if q.requires_grad]
        masks = saliency_mask(model, request.forget, p.ratio, ctx.recipe.batch_size)
        originals = [q.detach().clone() for q in params]
        data = relabelled(model, request, ctx.generator)
        hooks = [
            q.register_hook(lambda g, m=m: g * m.to(g.dtype))
            for q, m in zip(params, masks, strict=True)
        ]

        def restore(_: nn.Module) -> None:
            with torch.no_grad():
                for q, m, q0 in zip(params, masks, originals, strict=True):
                    q.copy_(torch.where(m, q, q0))

        def unhook() -> None:
            for h in hooks:
                h.remove()

        return Tuning(ctx.objective.loss, data=data, after_step=restore, cleanup=unhook)
