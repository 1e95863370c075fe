"""Training-free methods built on diagonal Fisher information: ``ssd`` and ``fisher``.

Neither runs an optimizer step: both compute importances with gradients, then
edit the weights once. Importances are computed in eval mode, so batch-norm
running statistics of the model are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from unlearn_audit.unlearners._common import BOTH, SUPERVISED, non_negative, positive
from unlearn_audit.unlearners.base import TrainingFreeUnlearner, register
from unlearn_audit.unlearners.request import Data, ForgetRequest, UnlearnContext


def batch_loss(
    ctx: UnlearnContext, model: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy on clean inputs for a classifier; the objective's loss for an encoder."""
    if ctx.paradigm == "contrastive":
        return ctx.objective.loss(model, x, y, ctx.generator)
    return F.cross_entropy(model(x).float(), y)


def squared_grad_importance(
    model: nn.Module, data: Data, ctx: UnlearnContext
) -> list[torch.Tensor]:
    """Mean over mini-batches of the squared batch-loss gradient (SSD's importance).

    Batches of the recipe's batch size, in order.
    """
    params = [q for q in model.parameters() if q.requires_grad]
    imp = [torch.zeros_like(q) for q in params]
    x, y = data
    batch_size = ctx.recipe.batch_size
    batches = 0
    for start in range(0, x.shape[0], batch_size):
        loss = batch_loss(ctx, model, x[start : start + batch_size], y[start : start + batch_size])
        for acc, gr in zip(imp, torch.autograd.grad(loss, params), strict=True):
            acc += gr.float() ** 2
        batches += 1
    return [i / max(batches, 1) for i in imp]


@dataclass(frozen=True)
class SSDParams:
    """Selective Synaptic Dampening hyper-parameters.

    Attributes:
        alpha: Selection weighting: a weight is dampened where ``I_f > alpha * I_D``.
        lam: Dampening constant ``lambda`` of the factor ``min(lambda * I_D / I_f, 1)``.
        importance_set: Data of ``I_D``: ``full`` (forget + retain, the paper's
            training set) or ``retain``.
    """

    alpha: float = 3.0
    lam: float = 1.0
    importance_set: str = "full"

    def __post_init__(self) -> None:
        positive("alpha", self.alpha)
        positive("lam", self.lam)
        if self.importance_set not in ("full", "retain"):
            raise ValueError(
                f"importance_set must be 'full' or 'retain', got {self.importance_set!r}"
            )


@register
class SSD(TrainingFreeUnlearner):
    """Selective Synaptic Dampening: shrink the weights specialised to the forget set.

    Foster, Schoepf & Brintrup 2024, "Fast Machine Unlearning Without Retraining
    Through Selective Synaptic Dampening" (AAAI). With diagonal importances
    ``I = E_batches[(grad_theta L)^2]`` (the empirical Fisher of mini-batch
    losses, as in the reference code) on the forget set (``I_f``) and on the
    training data (``I_D``), every weight with ``I_f > alpha * I_D`` is multiplied
    by ``beta = min(lambda * I_D / I_f, 1)`` (eqs. 3-4). No training.

    Choices: batches of the recipe's batch size in a fixed order; classifiers use
    cross-entropy on clean inputs, encoders the contrastive objective (whose views
    are drawn from the generator).
    """

    name = "ssd"
    paradigms = BOTH
    summary = "dampen weights far more important to forget than to all data (no training)"
    Params = SSDParams

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> nn.Module:
        p: SSDParams = self.params
        model.eval()
        forget, retain = request.forget, request.retain
        full = (
            (torch.cat([forget[0], retain[0]]), torch.cat([forget[1], retain[1]]))
            if p.importance_set == "full"
            else retain
        )
        i_d = squared_grad_importance(model, full, ctx)
        i_f = squared_grad_importance(model, forget, ctx)
        params = [q for q in model.parameters() if q.requires_grad]
        with torch.no_grad():
            for q, d, f in zip(params, i_d, i_f, strict=True):
                selected = f > p.alpha * d
                beta = torch.clamp(p.lam * d / f.clamp_min(torch.finfo(f.dtype).tiny), max=1.0)
                q.mul_(torch.where(selected, beta, torch.ones_like(beta)).to(q.dtype))
        return model


def true_fisher_diag(model: nn.Module, x: torch.Tensor, chunk: int = 32) -> list[torch.Tensor]:
    """Diagonal of the Fisher information, averaged over the samples of ``x``.

    ``F = mean_x sum_k p_k(x) (grad_theta log p_k(x))^2``: the expectation over the
    model's own predictive distribution (the "true" Fisher), computed exactly with
    per-sample gradients (``torch.func.vmap`` of ``grad``), one class at a time.
    """
    names = [n for n, q in model.named_parameters() if q.requires_grad]
    params = {n: q.detach() for n, q in model.named_parameters() if q.requires_grad}
    buffers = dict(model.named_buffers())
    fisher = {n: torch.zeros_like(q, dtype=torch.float32) for n, q in params.items()}
    with torch.no_grad():
        probs = torch.cat(
            [F.softmax(model(x[s : s + 256]).float(), 1) for s in range(0, len(x), 256)]
        )
    n_classes = probs.shape[1]

    def log_p(prm: dict[str, torch.Tensor], xi: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (prm, buffers), (xi[None],))
        return F.log_softmax(out.float(), dim=1)[0, k]

    per_sample = vmap(grad(log_p), in_dims=(None, 0, None))
    for start in range(0, x.shape[0], chunk):
        xb, pb = x[start : start + chunk], probs[start : start + chunk]
        for k in range(n_classes):
            grads = per_sample(params, xb, torch.tensor(k, device=x.device))
            w = pb[:, k]
            for n in names:
                g2 = grads[n].float() ** 2
                fisher[n] += (w.view(-1, *([1] * (g2.dim() - 1))) * g2).sum(0)
    return [fisher[n] / max(x.shape[0], 1) for n in names]


@dataclass(frozen=True)
class FisherParams:
    """Fisher-forgetting hyper-parameters.

    Attributes:
        alpha: Noise scale: the variance of a weight's noise is ``alpha / F``.
        max_var: Clip of ``1 / F`` before scaling by ``alpha`` (weights the retain set
            barely constrains would otherwise get unbounded noise); Golatkar et al.'s 1e3.
        samples: Retain samples (drawn at random) used to estimate ``F``; 0 = all.
    """

    alpha: float = 3e-6
    max_var: float = 1e3
    samples: int = 100

    def __post_init__(self) -> None:
        positive("alpha", self.alpha)
        positive("max_var", self.max_var)
        non_negative("samples", self.samples)


@register
class FisherForgetting(TrainingFreeUnlearner):
    """Fisher forgetting: Gaussian noise shaped by the inverse Fisher of the retain set.

    Golatkar, Achille & Soatto 2020, "Eternal Sunshine of the Spotless Net:
    Selective Forgetting in Deep Networks" (CVPR), Sec. 4 ("Fisher forgetting").
    The scrubbed weights are

        theta' = theta + sqrt(alpha * min(1 / F_r, max_var)) * n,   n ~ N(0, I),

    with ``F_r`` the diagonal true Fisher on the retain set (:func:`true_fisher_diag`):
    directions the retain set does not pin down receive the most noise, which
    destroys what only the forget set determined. No training.

    Choices: the Newton step of the paper's full scrubbing procedure is left out
    (its reference implementation also omits it for this variant); ``F_r`` is
    estimated on ``samples`` random retain samples for speed; the reference code's
    per-row averaging of the variance is not applied.
    """

    name = "fisher"
    paradigms = SUPERVISED
    summary = "add noise scaled by the inverse retain Fisher (no training)"
    Params = FisherParams

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> nn.Module:
        p: FisherParams = self.params
        generator = ctx.generator
        model.eval()
        x = request.retain[0]
        if 0 < p.samples < x.shape[0]:
            x = x[torch.randperm(x.shape[0], generator=generator, device=x.device)[: p.samples]]
        fisher = true_fisher_diag(model, x)
        params = [q for q in model.parameters() if q.requires_grad]
        with torch.no_grad():
            for q, f in zip(params, fisher, strict=True):
                var = p.alpha * torch.clamp(1.0 / (f + 1e-8), max=p.max_var)
                noise = torch.randn(q.shape, generator=generator, device=q.device)
                q.add_((var.sqrt() * noise).to(q.dtype))
        return model
