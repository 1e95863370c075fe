"""The contrastive-objective protocol the methods program against, and NT-Xent pieces.

A contrastive objective (SimCLR-style) has ``loss(model, x, y, generator)``,
the InfoNCE loss over two augmented views of ``x`` (``y`` ignored), and
``views(x, generator) -> (x1, x2)``. The encoder ``model(x)`` returns features
(projection head included). ``temperature`` is read from the objective when it
has one (default 0.5, SimCLR's CIFAR value). An objective whose class attribute
``negatives`` is False (``learning.byol.BYOL``) has no negative pairs and no
temperature: the methods built on InfoNCE negatives refuse it
(:attr:`unlearners.Unlearner.needs_negatives`), and ``gradient_constraint``
takes per-sample gradients of its own loss instead of NT-Xent's.

NT-Xent (Chen et al. 2020, "A Simple Framework for Contrastive Learning of
Visual Representations", eq. 1): for ``2N`` L2-normalised features, the loss of
anchor ``i`` with positive ``p(i)`` is

    l_i = -log( exp(s_{i,p(i)}/T) / sum_{k != i} exp(s_{i,k}/T) ),   s = cosine similarity,

and the loss of pair ``i`` is the mean of its two directions.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_TEMPERATURE = 0.5


@runtime_checkable
class ViewObjective(Protocol):
    """What a contrastive objective offers (see the module docstring)."""

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor: ...

    def views(
        self, x: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def temperature_of(objective: object) -> float:
    """The objective's InfoNCE temperature, or :data:`DEFAULT_TEMPERATURE`."""
    t = getattr(objective, "temperature", DEFAULT_TEMPERATURE)
    return float(t)


def uses_negatives(objective: object) -> bool:
    """Whether the objective contrasts samples with negatives (absent attribute: yes)."""
    return bool(getattr(objective, "negatives", True))


def nt_xent_pairs(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-pair NT-Xent losses ``(N,)`` of anchors ``z1[i]`` with positives ``z2[i]``.

    Every other of the ``2N`` features in the batch is a negative. The mean of the
    result is SimCLR's batch loss.
    """
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T / temperature
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    pos = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    per_anchor = F.cross_entropy(sim, pos, reduction="none")
    return 0.5 * (per_anchor[:n] + per_anchor[n:])


def nt_xent_single(
    a: torch.Tensor,
    p: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """NT-Xent of one anchor ``a`` ``(d,)`` with positive ``p`` against fixed ``negatives``.

    Used per sample under ``torch.func.vmap``, where the other samples' features
    are computed once, detached, and passed as ``negatives`` ``(k, d)``; ``mask``
    ``(k,)`` (optional) says which rows count (the sample's own views do not).
    """
    a = F.normalize(a.float(), dim=0)
    p = F.normalize(p.float(), dim=0)
    neg = F.normalize(negatives.float(), dim=1) @ a
    if mask is not None:
        neg = torch.where(mask, neg, torch.full_like(neg, float("-inf")))
    logits = torch.cat([(a * p).sum()[None], neg]) / temperature
    return -F.log_softmax(logits, dim=0)[0]
