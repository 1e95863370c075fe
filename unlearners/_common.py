"""Helpers shared by the unlearning methods (private to the package).

Conventions the methods rely on:

* The paradigm is ``ctx.paradigm`` (:func:`unlearners.request.paradigm_of`):
  ``contrastive`` when the objective has a ``views(x, generator)`` method (the
  protocol of :mod:`unlearners._contrastive`), else ``supervised``, where
  ``model(x)`` returns logits. :meth:`unlearners.Unlearner.unlearn` refuses a
  paradigm the method does not declare, so methods do not check it.
* A supervised objective may carry its training augmentation as an ``augment``
  attribute (``learning.CrossEntropy`` does); methods that need raw logits of
  augmented inputs (distillation, relabelling) apply it through :func:`augment`.
* Batches drawn besides the one :func:`learning.train.fit` iterates over come
  from :func:`draw`, which samples indices with the method's generator.
* A method that is one ``fit`` run derives from
  :class:`unlearners.tuning.FineTuneUnlearner`, which runs it and counts its budget.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.learning.train import Objective
from unlearn_audit.unlearners.base import UnlearnerError
from unlearn_audit.unlearners.request import Data

BOTH = frozenset({"supervised", "contrastive"})
SUPERVISED = frozenset({"supervised"})
CONTRASTIVE = frozenset({"contrastive"})


def positive(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value > 0`` (for ``Params.__post_init__``)."""
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def non_negative(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value >= 0``."""
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def in_unit(name: str, value: float, *, closed: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` lies in ``(0, 1)`` (``(0, 1]`` if ``closed``)."""
    ok = 0 < value <= 1 if closed else 0 < value < 1
    if not ok:
        raise ValueError(f"{name} must lie in (0, {'1]' if closed else '1)'}, got {value}")


def augment(objective: Objective, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Apply the supervised objective's training augmentation, if it has one."""
    aug = getattr(objective, "augment", None)
    return aug(x, generator) if aug is not None else x


def draw(data: Data, size: int, generator: torch.Generator) -> Data:
    """A batch of ``min(size, n)`` samples drawn without replacement from ``data``."""
    x, y = data
    n = x.shape[0]
    idx = torch.randperm(n, generator=generator, device=x.device)[: min(size, n)]
    return x[idx], y[idx]


def index_set(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(arange(n), zeros(n))``: a dataset of indices for ``fit`` to shuffle and batch.

    Methods whose loss needs more than ``(x, y)`` of one set (a flag, a second
    label, a partner sample) iterate over indices and look the data up themselves.
    """
    idx = torch.arange(n, device=device)
    return idx, torch.zeros(n, dtype=torch.long, device=device)


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with every parameter frozen (a teacher)."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def num_outputs(model: nn.Module) -> int:
    """Output size of the model's final ``nn.Linear`` (the number of classes of a classifier)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UnlearnerError("the model has no nn.Linear head; cannot tell its number of classes")
    return int(linears[-1].out_features)


def distill_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, averaged over the batch.

    Hinton et al. 2015 knowledge distillation; the ``T^2`` factor keeps gradient
    magnitudes comparable across temperatures (as SCRUB's reference code does).
    """
    t = temperature
    log_p_s = F.log_softmax(student.float() / t, dim=1)
    log_p_t = F.log_softmax(teacher.float() / t, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * t * t


def wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """For each label a uniformly random *different* class: ``(y + U{1..C-1}) mod C``."""
    if num_classes < 2:
        raise UnlearnerError("random relabelling needs at least 2 classes")
    shift = torch.randint(1, num_classes, y.shape, generator=generator, device=y.device)
    return (y + shift) % num_classes
