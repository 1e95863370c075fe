"""Contrastive objectives: SimCLR (NT-Xent) and MoCo v2 (momentum encoder and queue).

Both follow the objective protocol of :mod:`learning.train` (``name`` and
``loss(model, x, y, generator)``, ``y`` ignored) and the contrastive protocol
the unlearners program against: ``views(x, generator) -> (x1, x2)``, two
independently augmented views of every image, and a ``temperature``. Both
declare ``paradigm = "contrastive"`` (what :func:`unlearners.paradigm_of` reads).

The model is the whole encoder: backbone ``f`` followed by a projection head
``g`` that is the model's *last* ``nn.Linear`` (for the built-in ``mlp``,
``cnn`` and ``resnet18`` that is the final layer, whose output size is the
projection dimension). The losses use the projection ``z = g(f(x))``;
downstream evaluation uses the representation ``h = f(x)``, the input of that
last linear layer (:func:`representation`), as SimCLR does (Sec. 4.2).
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.learning.views import ViewAugment


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross-entropy (NT-Xent), batch mean.

    Chen et al. 2020, eq. (1): with the ``2N`` L2-normalised projections
    ``u_1..u_2N`` of the two views (``u_i`` and ``u_{i+N}`` are a positive pair)
    and ``s_ij = u_i . u_j``,

        l(i, j) = -log( exp(s_ij / T) / sum_{k != i} exp(s_ik / T) ),
        L = 1/(2N) sum_{k=1..N} [ l(k, k+N) + l(k+N, k) ].
    """
    n = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = (u @ u.T) / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=u.device), float("-inf"))
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(u.device)
    return F.cross_entropy(sim, positive)


def projection_head(model: nn.Module) -> nn.Linear:
    """The model's last ``nn.Linear`` (its projection head's final layer)."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    if last is None:
        raise ValueError("a contrastive encoder needs an nn.Linear projection head as last layer")
    return last


@torch.no_grad()
def representation(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The representation ``h = f(x)``: the input of the model's last ``nn.Linear``."""
    seen: list[torch.Tensor] = []
    handle = projection_head(model).register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach())
    )
    try:
        model(x)
    finally:
        handle.remove()
    return seen[-1].flatten(1)


@dataclass(frozen=True)
class SimCLR:
    """SimCLR: NT-Xent over two augmented views of every sample in the batch.

    Chen, Kornblith, Norouzi & Hinton 2020 (ICML), Algorithm 1; every other view
    in the batch is a negative (``2(N - 1)`` negatives per anchor).

    Attributes:
        augment: The view distribution.
        temperature: ``T`` of NT-Xent (SimCLR's CIFAR-10 value is 0.5).
    """

    paradigm: ClassVar[str] = "contrastive"
    augment: ViewAugment
    temperature: float = 0.5
    name: str = "simclr"

    def views(
        self, x: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent random views of ``x``."""
        return self.augment(x, generator), self.augment(x, generator)

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        x1, x2 = self.views(x, generator)
        z = model(torch.cat([x1, x2]))
        return nt_xent(z[: x.shape[0]], z[x.shape[0] :], self.temperature)


S = TypeVar("S")


def state_of(
    states: weakref.WeakKeyDictionary[nn.Module, S], model: nn.Module, start: Callable[[], S]
) -> S:
    """``model``'s entry of a per-model state dictionary, ``start()``-ed on first use.

    The state of MoCo and BYOL (:mod:`learning.byol`) lives outside the model, keyed
    by the model object in a weak dictionary, so it vanishes with the model.
    """
    st = states.get(model)
    if st is None:
        st = states[model] = start()
    return st


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, m: float) -> None:
    """``xi <- m xi + (1 - m) theta`` for every parameter; buffers (BN statistics) are copied.

    The momentum (exponential moving average) update of MoCo's key encoder and of
    BYOL's target network (:mod:`learning.byol`).
    """
    for pt, po in zip(target.parameters(), online.parameters(), strict=True):
        pt.mul_(m).add_(po.detach(), alpha=1 - m)
    for bt, bo in zip(target.buffers(), online.buffers(), strict=True):
        bt.copy_(bo)


class MoCoState:
    """The per-model state of MoCo: the momentum (key) encoder and the queue of keys."""

    def __init__(self, model: nn.Module, queue: torch.Tensor) -> None:
        self.key_encoder = copy.deepcopy(model).eval().requires_grad_(False)
        self.queue = queue
        self.ptr = 0

    def momentum_update(self, model: nn.Module, m: float) -> None:
        """``theta_k <- m theta_k + (1 - m) theta_q``; buffers (BN statistics) are copied."""
        ema_update(self.key_encoder, model, m)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest entries of the ring buffer with ``keys``."""
        size = self.queue.shape[0]
        keys = keys[-size:]
        idx = (self.ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[idx] = keys.to(self.queue.dtype)
        self.ptr = int((self.ptr + keys.shape[0]) % size)


@dataclass(frozen=True)
class MoCo:
    """MoCo v2: InfoNCE of a query against its momentum-encoded key and a queue of keys.

    He, Fan, Wu, Xie & Girshick 2020 (CVPR), Algorithm 1, with the v2 changes of
    Chen, Fan, Girshick & He 2020 (arXiv:2003.04297): MLP head, stronger views,
    ``T = 0.2``. For query ``q = g(f_q(x1))`` and key ``k = g(f_k(x2))`` (both
    normalised) and queue ``K``,

        L = -log( exp(q.k / T) / (exp(q.k / T) + sum_{k- in K} exp(q.k- / T)) ),
        theta_k <- m theta_k + (1 - m) theta_q   (after every step).

    State: the key encoder and the queue belong to one trained model, so they are
    kept per model object (a weak dictionary: they vanish with the model). The
    first ``loss`` call on a model object that has none starts it: the key
    encoder is a copy of the model at that moment and the queue is filled with
    random unit vectors drawn from the call's generator (as the reference code
    does). Hence every :func:`learning.train.fit` of a fresh model (original,
    reference, shadows, ``retrain``) and every unlearning run (which works on a
    deep copy of the original) starts from its own state; nothing leaks between
    models. :meth:`reset` forgets a model's state (e.g. after re-initialising
    it in place). The state advances (momentum update, enqueue) only on calls in
    training mode with gradients enabled; an evaluation call (eval mode or
    ``no_grad``) reads it without changing it.

    Choices: the loss is symmetrised (both views serve as query and key, both
    keys are enqueued), as in the MoCo CIFAR-10 demo of the authors; the
    momentum update runs at the start of a training call (equivalent to after
    the previous step); the key encoder runs in eval mode with the query's
    batch-norm statistics copied (no "shuffling BN" is needed on one device).

    Attributes:
        augment: The view distribution.
        temperature: ``T`` (0.2 in MoCo v2).
        momentum: ``m`` of the key encoder (0.99 in the CIFAR demo).
        queue_size: Number of negative keys ``|K|``.
    """

    paradigm: ClassVar[str] = "contrastive"
    augment: ViewAugment
    temperature: float = 0.2
    momentum: float = 0.99
    queue_size: int = 1024
    name: str = "moco"
    _states: weakref.WeakKeyDictionary[nn.Module, MoCoState] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False, compare=False
    )

    def views(
        self, x: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent random views of ``x``."""
        return self.augment(x, generator), self.augment(x, generator)

    def state(self, model: nn.Module, generator: torch.Generator, dim: int) -> MoCoState:
        """The model's state, started on first use (see the class docstring)."""

        def start() -> MoCoState:
            queue = torch.randn(self.queue_size, dim, generator=generator, device=generator.device)
            return MoCoState(model, F.normalize(queue, dim=1))

        return state_of(self._states, model, start)

    def reset(self, model: nn.Module) -> None:
        """Forget ``model``'s state; its next training call starts a fresh one."""
        self._states.pop(model, None)

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        x1, x2 = self.views(x, generator)
        n = x.shape[0]
        q = F.normalize(model(torch.cat([x1, x2])).float(), dim=1)
        st = self.state(model, generator, q.shape[1])
        advance = model.training and torch.is_grad_enabled()
        if advance:
            st.momentum_update(model, self.momentum)
        with torch.no_grad():
            k = F.normalize(st.key_encoder(torch.cat([x2, x1])).float(), dim=1)
        queue = st.queue.to(q.device, q.dtype).clone()  # enqueue below writes in place
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], dim=1) / self.temperature
        target = torch.zeros(2 * n, dtype=torch.long, device=q.device)
        loss = F.cross_entropy(logits, target)
        if advance:
            st.enqueue(k)
        return loss
