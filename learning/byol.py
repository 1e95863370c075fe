"""BYOL: bootstrap your own latent, a contrastive objective without negatives.

Grill, Strub, Altché, Tallec, Richemond, Buchatskaya, Doersch, Pires, Guo,
Azar, Piot, Kavukcuoglu, Munos & Valko 2020, "Bootstrap Your Own Latent: A New
Approach to Self-Supervised Learning" (NeurIPS), Sec. 3.1 and Algorithm 1.

The *online* network is the model, as for SimCLR and MoCo
(:mod:`learning.contrastive`): backbone ``f`` and projection head ``g`` (the
model's last ``nn.Linear``), ``z = g(f(x))``; a *predictor* MLP ``q`` sits on
top of the online projection; the *target* network ``xi`` is an exponential
moving average of the model's weights ``theta`` and gets no gradients. With
``v1``, ``v2`` two views of a sample, ``z_theta`` the online projection of a
view and ``z'_xi`` the target projection of the other view:

    L(v1, v2) = || q(z_theta(v1))/||q(z_theta(v1))|| - z'_xi(v2)/||z'_xi(v2)|| ||^2
              = 2 - 2 cos( q(z_theta(v1)), sg(z'_xi(v2)) ),
    L^BYOL    = L(v1, v2) + L(v2, v1)          (the paper's symmetrised loss),
    xi       <- tau xi + (1 - tau) theta       (after every step).

:meth:`BYOL.loss` is the batch mean of ``L^BYOL`` (``sg``: stop-gradient). There
is no temperature and no negative: nothing pushes two samples apart, which is
what the unlearners that rely on InfoNCE negatives need to know
(:data:`BYOL.negatives`, docs/unlearners.md).
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from unlearn_audit.learning.contrastive import ema_update, projection_head, state_of
from unlearn_audit.learning.views import ViewAugment

PREDICTOR_MOMENTUM = 0.9  # heavy-ball momentum of the predictor's own SGD step


def byol_pairs(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per-sample symmetrised BYOL losses ``(n,)`` of ``2n`` predictions and targets.

    Row ``i`` of ``p`` is the online prediction ``q(z_theta)`` of one view and row
    ``i`` of ``t`` the target projection ``z'_xi`` of the *other* view of the same
    sample; rows ``i`` and ``i + n`` are the two directions of sample ``i``:
    ``l_i = (2 - 2 cos(p_i, t_i)) + (2 - 2 cos(p_{i+n}, t_{i+n}))``, in ``[0, 8]``.
    """
    n = p.shape[0] // 2
    cos = (F.normalize(p.float(), dim=-1) * F.normalize(t.float(), dim=-1)).sum(-1)
    per_view = 2 - 2 * cos
    return per_view[:n] + per_view[n:]


def predictor_mlp(
    dim: int, hidden: int, generator: torch.Generator, device: torch.device
) -> nn.Sequential:
    """The predictor ``q``: ``Linear(dim, hidden) - BatchNorm - ReLU - Linear(hidden, dim)``.

    The paper's shape (its projector's). Linear weights and biases are drawn from
    ``generator`` (uniform in ``+-1/sqrt(fan_in)``, PyTorch's default ``nn.Linear``
    range), never from the global random state; batch norm starts at scale 1, shift 0.
    """
    net = nn.Sequential(
        nn.Linear(dim, hidden, device="meta"),
        nn.BatchNorm1d(hidden, device="meta"),
        nn.ReLU(),
        nn.Linear(hidden, dim, device="meta"),
    ).to_empty(device=device)
    with torch.no_grad():
        net[1].reset_parameters()
        for layer in (net[0], net[3]):
            bound = 1 / math.sqrt(layer.in_features)
            for param in (layer.weight, layer.bias):
                u = torch.rand(param.shape, generator=generator, device=generator.device)
                param.copy_(((2 * u - 1) * bound).to(device))
    return net


class BYOLState:
    """The per-model state of BYOL: the target network, the predictor and its velocity."""

    def __init__(self, model: nn.Module, predictor: nn.Module) -> None:
        self.target = copy.deepcopy(model).eval().requires_grad_(False)
        self.predictor = predictor
        self.velocity = [torch.zeros_like(q) for q in predictor.parameters()]

    def update_target(self, model: nn.Module, tau: float) -> None:
        """``xi <- tau xi + (1 - tau) theta``; buffers (BN statistics) are copied."""
        ema_update(self.target, model, tau)

    def frozen_predictor(self, train: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        """``z -> q(z)`` with a snapshot of the predictor's current weights and statistics.

        ``train``: batch norm normalises with the batch's statistics (a training
        call), else with the running ones (evaluation, per-sample uses). Gradients
        flow to ``z`` only; the predictor's running statistics are not updated, and
        later steps of the predictor (in place) leave a graph built with the
        snapshot intact.
        """
        snapshot = {k: v.detach().clone() for k, v in self.predictor.named_parameters()}
        snapshot.update({k: v.clone() for k, v in self.predictor.named_buffers()})

        def q(z: torch.Tensor) -> torch.Tensor:
            self.predictor.train(train)
            out: torch.Tensor = functional_call(self.predictor, snapshot, (z,))
            return out

        return q

    def fit_predictor(self, z: torch.Tensor, t: torch.Tensor, lr: float) -> None:
        """One SGD step (momentum :data:`PREDICTOR_MOMENTUM`) of the predictor on the
        BYOL loss of the online projections ``z`` (detached) against the targets ``t``;
        its batch norm's running statistics move once, here."""
        params = list(self.predictor.parameters())
        self.predictor.train()
        with torch.enable_grad():
            loss = byol_pairs(self.predictor(z.detach()), t).mean()
            grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for q, v, g in zip(params, self.velocity, grads, strict=True):
                v.mul_(PREDICTOR_MOMENTUM).add_(g)
                q.sub_(v, alpha=lr)


@dataclass(frozen=True)
class BYOL:
    """BYOL: an online network predicts an EMA target network's projection of another view.

    See the module docstring for the loss and the update (Grill et al. 2020).
    It follows the objective protocol of :mod:`learning.train` and the
    contrastive protocol of the unlearners (``views``, ``loss``); it has no
    ``temperature`` and ``negatives`` is False.

    State: the target network, the predictor and the predictor's velocity belong
    to one trained model and are kept per model object in a weak dictionary, as
    MoCo's key encoder and queue (:class:`learning.contrastive.MoCo`). The first
    ``loss`` call on a model starts them: the target is a copy of the model then,
    the predictor is drawn from the call's generator (:func:`predictor_mlp`).
    Every :func:`learning.train.fit` of a fresh model and every unlearning run
    (on its deep copy of the original) thus starts its own target and predictor;
    the original's predictor is not handed over (it is not part of the model or
    of its checkpoint, and a model loaded from the cache must give the same run).
    :meth:`reset` forgets a model's state. Only calls in training mode with
    gradients enabled advance it; an evaluation call (eval mode or ``no_grad``)
    reads it without changing it.

    Choices (the paper's settings in brackets):

    * The predictor is trained *inside* each training call, by one SGD step with
      momentum 0.9 at the constant rate ``predictor_lr`` on this batch's BYOL
      loss (the online projections detached), after the encoder's loss has been
      built with a snapshot of its weights. For plain training this is the joint
      SGD step of the paper (both gradients at the same weights). It is not left
      to :func:`learning.train.fit`'s optimizer because (a) that optimizer is
      built over ``model.parameters()`` before the first loss call, which is
      where the predictor is created, and (b) the predictor is part of the
      *loss*, like MoCo's key encoder: an unlearner that ascends or penalises
      the loss (``gradient_ascent``, ``neggrad_plus``, ``gradient_constraint``)
      must move the encoder, not a predictor that could absorb the ascent by
      turning its output around. The step is written out rather than a
      ``torch.optim`` optimizer, so optimizer hooks (the unlearners' budget
      count) see only the model's steps. A constant predictor rate follows
      SimSiam (Chen & He 2021, CVPR, Sec. 4.2), where it did as well as or
      better than a decayed one. [LARS over all online weights.]
    * The predictor is the paper's shape, ``Linear - BN - ReLU - Linear``, with
      ``predictor_hidden`` hidden units [4096 for a 256-d projection]. Its batch
      norm is what keeps small encoders without batch norm of their own (the
      ``mlp``) from collapsing: on 64 random 8x8 images (model seed 0), 400
      steps left the projections of different samples at mean cosine 0.999
      without it and 0.61 with it (0.89 at initialisation; docs/contrastive.md).
      A training call normalises with the batch's statistics and moves the
      running ones once (in the predictor's step); evaluation calls and
      per-sample uses (``gradient_constraint``) use the running statistics.
    * ``tau`` is constant, ``momentum`` (default 0.99, for runs of tens of
      epochs) [``tau_base = 0.996`` raised to 1 over training as
      ``1 - (1 - tau_base)(cos(pi k / K) + 1) / 2``: the loss does not know the
      run's step count ``K``]. The update runs at the start of a training call
      (equivalent to after the previous step, as for MoCo); a method that
      evaluates the loss twice per step (``neggrad_plus``) moves the target and
      the predictor twice per step.
    * The target network runs in eval mode with the online network's batch-norm
      statistics copied (as MoCo's key encoder here) [train-mode BN].

    Attributes:
        augment: The view distribution.
        momentum: ``tau``, the target network's EMA decay.
        predictor_hidden: Hidden units of the predictor MLP.
        predictor_lr: Constant learning rate of the predictor's SGD step.
    """

    augment: ViewAugment
    momentum: float = 0.99
    predictor_hidden: int = 256
    predictor_lr: float = 0.05
    name: str = "byol"
    paradigm: ClassVar[str] = "contrastive"  # what unlearners.paradigm_of reads
    negatives: ClassVar[bool] = False  # no negative pairs: InfoNCE-based unlearners refuse it
    _states: weakref.WeakKeyDictionary[nn.Module, BYOLState] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"momentum must lie in [0, 1], got {self.momentum}")
        if self.predictor_hidden < 1 or not self.predictor_lr > 0:
            raise ValueError("predictor_hidden must be >= 1 and predictor_lr > 0")

    def views(
        self, x: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent random views of ``x`` (the paper's ``t`` and ``t'``)."""
        return self.augment(x, generator), self.augment(x, generator)

    def state(
        self, model: nn.Module, generator: torch.Generator, dim: int | None = None
    ) -> BYOLState:
        """The model's state, started on first use (see the class docstring).

        ``dim`` is the projection size (default: the projection head's output size).
        """

        def start() -> BYOLState:
            d = projection_head(model).out_features if dim is None else dim
            device = next(model.parameters()).device
            return BYOLState(model, predictor_mlp(d, self.predictor_hidden, generator, device))

        return state_of(self._states, model, start)

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        x1, x2 = self.views(x, generator)
        z = model(torch.cat([x1, x2]))
        st = self.state(model, generator, z.shape[1])
        advance = model.training and torch.is_grad_enabled()
        if advance:
            st.update_target(model, self.momentum)
        with torch.no_grad():
            t = st.target(torch.cat([x2, x1])).float()  # row i: the other view's target
        loss = byol_pairs(st.frozen_predictor(advance)(z), t).mean()
        if advance:
            st.fit_predictor(z, t, self.predictor_lr)
        return loss

    def reset(self, model: nn.Module) -> None:
        """Forget ``model``'s state; its next call starts a fresh one."""
        self._states.pop(model, None)
