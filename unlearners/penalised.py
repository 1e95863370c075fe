"""Fine-tuning baselines with an extra term: ``neggrad_plus`` and ``l1_sparse``.

Both iterate over the retain set with :func:`learning.train.fit` and use the
training objective itself, so they work for supervised classifiers and
contrastive encoders alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unlearn_audit.unlearners._common import BOTH, draw, non_negative
from unlearn_audit.unlearners.base import register
from unlearn_audit.unlearners.request import ForgetRequest, UnlearnContext
from unlearn_audit.unlearners.tuning import FineTuneUnlearner, TuneParams, Tuning


@dataclass(frozen=True)
class NegGradPlusParams(TuneParams):
    """NegGrad+ hyper-parameters.

    Attributes:
        epochs: Passes over the retain set; each step also draws a forget batch.
        lr_scale: Learning rate as a multiple of the recipe's ``lr``.
        forget_weight: Weight ``w`` of the (subtracted) forget loss.
    """

    epochs: float = 1.0
    lr_scale: float = 0.5
    forget_weight: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        non_negative("forget_weight", self.forget_weight)


@register
class NegGradPlus(FineTuneUnlearner):
    """NegGrad+: descend on the retain loss while ascending on the forget loss.

    Kurmanji et al. 2023, "Towards Unbounded Machine Unlearning" (NeurIPS), the
    NegGrad+ baseline. Each step minimises

        L = L(f; B_retain) - w * L(f; B_forget),

    with ``B_retain`` the batch ``fit`` draws from the retain set and ``B_forget``
    a batch of the same size drawn at random from the forget set. The paper writes
    the weights as ``beta`` and ``1 - beta``; one free weight ``w`` is equivalent up
    to the learning rate. The forget term is unbounded, so a large ``w`` diverges:
    the non-finite loss surfaces as :class:`learning.DivergenceError`.
    """

    name = "neggrad_plus"
    paradigms = BOTH
    summary = "retain loss minus weighted forget loss (NegGrad+)"
    Params = NegGradPlusParams

    def tuning(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Tuning:
        p: NegGradPlusParams = self.params
        objective = ctx.objective

        def loss(
            m: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator
        ) -> torch.Tensor:
            xf, yf = draw(request.forget, x.shape[0], g)
            return objective.loss(m, x, y, g) - p.forget_weight * objective.loss(m, xf, yf, g)

        return Tuning(loss)


@dataclass(frozen=True)
class L1SparseParams(TuneParams):
    """l1-sparse fine-tuning hyper-parameters.

    Attributes:
        epochs: Passes over the retain set.
        lr_scale: Learning rate as a multiple of the recipe's ``lr``.
        l1: Initial weight ``gamma_0`` of the l1 penalty (decays linearly to 0).
    """

    epochs: float = 3.0
    lr_scale: float = 0.5
    l1: float = 2e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        non_negative("l1", self.l1)


def l1_norm(model: nn.Module) -> torch.Tensor:
    """``||theta||_1``: the sum of absolute values of every trainable parameter."""
    return torch.stack([q.abs().sum() for q in model.parameters() if q.requires_grad]).sum()


@register
class L1Sparse(FineTuneUnlearner):
    """Fine-tune on the retain set with a linearly decaying l1 penalty.

    Jia et al. 2023, "Model Sparsity Can Simplify Machine Unlearning" (NeurIPS),
    "l1-sparse MU". Step ``t`` of ``T`` minimises

        L(f; B_retain) + gamma_t * ||theta||_1,   gamma_t = gamma_0 * (1 - t / T).

    The paper's schedule decays per epoch; we decay per step (the same line,
    without the staircase). The norm sums over every trainable parameter, biases
    included, as in the reference code.
    """

    name = "l1_sparse"
    paradigms = BOTH
    summary = "fine-tune on retain with a linearly decaying l1 penalty (sparsity-aided MU)"
    Params = L1SparseParams

    def tuning(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Tuning:
        p: L1SparseParams = self.params
        objective = ctx.objective
        total = max(1, self.max_steps(request.n_forget, request.n_retain, ctx.recipe))
        step = [0]

        def loss(
            m: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator
        ) -> torch.Tensor:
            gamma = p.l1 * (1.0 - step[0] / total)
            return objective.loss(m, x, y, g) + gamma * l1_norm(m)

        def advance(_: nn.Module) -> None:
            step[0] += 1

        return Tuning(loss, after_step=advance)
