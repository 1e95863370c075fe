"""Learning paradigms: what "training", "membership signal" and "utility" mean.

The pipeline never branches on the paradigm's name: it asks the configured
:class:`Paradigm` for the training objective, the model's output size, the
per-sample membership signal and the utility metrics. ``supervised`` lives
here; ``contrastive`` (SimCLR / MoCo encoders) registers beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from torch import nn

from unlearn_audit.attacks.signals import logit_scaled_confidence
from unlearn_audit.audit.contrastive import Contrastive
from unlearn_audit.audit.plan import Plan
from unlearn_audit.learning.augment import Augment, default_padding, query_views
from unlearn_audit.learning.data import Dataset
from unlearn_audit.learning.train import CrossEntropy, Objective, Recipe, accuracy, predict_logits

if TYPE_CHECKING:
    from unlearn_audit.audit.config import AuditConfig


class Paradigm(Protocol):
    """What the pipeline needs to know about a way of learning."""

    name: str

    def recipe(self, train: Recipe) -> Recipe:
        """The recipe models of this paradigm train with, given ``[train]``."""
        ...

    def objective(self, ds: Dataset, recipe: Recipe) -> Objective:
        """The training objective (does its own augmentation)."""
        ...

    def num_outputs(self, ds: Dataset) -> int:
        """Output size of a model built for ``ds`` (classes, or feature dimension)."""
        ...

    def signals(self, model: nn.Module, ds: Dataset, x: torch.Tensor, n_views: int) -> np.ndarray:
        """Per-sample membership signal on every pool sample, float32 ``(n, views)``."""
        ...

    def utility(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: Plan
    ) -> dict[str, float]:
        """Utility on forget, retain and non-members (the ``utility`` of results.json)."""
        ...

    def signal_description(self) -> str:
        """One phrase naming the membership signal (for results.json and the report)."""
        ...

    def signal_settings(self) -> dict[str, object]:
        """The settings the membership signal depends on (part of its cache key)."""
        ...


class Supervised:
    """Classifiers trained with cross-entropy; signal = logit-scaled confidence."""

    name = "supervised"

    def recipe(self, train: Recipe) -> Recipe:
        return train

    def signal_description(self) -> str:
        return "the model's logit-scaled confidence in the true label"

    def signal_settings(self) -> dict[str, object]:
        return {"paradigm": self.name, "signal": "logit_scaled_confidence"}

    def objective(self, ds: Dataset, recipe: Recipe) -> Objective:
        aug = Augment(default_padding(ds.shape[1]), ds.flippable) if recipe.augment else None
        return CrossEntropy(aug)

    def num_outputs(self, ds: Dataset) -> int:
        return ds.num_classes

    def signals(self, model: nn.Module, ds: Dataset, x: torch.Tensor, n_views: int) -> np.ndarray:
        def views(xb: torch.Tensor) -> list[torch.Tensor]:
            return query_views(xb, n_views, ds.flippable)

        logits = predict_logits(model, x, views=views).numpy()
        return logit_scaled_confidence(logits, ds.y.numpy()[:, None])

    def utility(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: Plan
    ) -> dict[str, float]:
        def acc(idx: np.ndarray) -> float:
            t = torch.as_tensor(idx, device=x.device)
            return accuracy(model, x[t], y[t])

        return {
            "forget_acc": acc(plan.forget),
            "retain_acc": acc(plan.retain),
            "test_acc": acc(plan.nonmembers),
        }


PARADIGMS: dict[str, type] = {"supervised": Supervised, "contrastive": Contrastive}


def get_paradigm(name: str, cfg: AuditConfig | None = None) -> Paradigm:
    """The paradigm registered as ``name``, set up from ``cfg`` when it reads settings.

    A paradigm class with a ``from_config(cfg)`` constructor (``contrastive`` reads
    its ``[contrastive]`` table) is built with it when ``cfg`` is given; otherwise
    with no argument (its defaults).
    """
    if name not in PARADIGMS:
        from unlearn_audit.audit.config import ConfigError

        raise ConfigError(f"unknown paradigm '{name}'; valid: {', '.join(sorted(PARADIGMS))}")
    cls = PARADIGMS[name]
    make = getattr(cls, "from_config", None)
    paradigm: Paradigm = make(cfg) if make is not None and cfg is not None else cls()
    return paradigm
