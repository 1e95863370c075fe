"""Learning paradigms: what "training", "membership signal" and "utility" mean.

The pipeline never branches on the paradigm's name or type: it builds the configured
:class:`Paradigm` with :func:`make_paradigm` and asks it for the training objective,
the model's output size, the per-sample membership signal and the utility metrics,
and reads what it can do from its declared capabilities:

* ``has_classes``: the model's outputs are per-class logits, so class-wise forgetting
  and a utility without a probe apply;
* ``difficulty_features(ds, recipe)``: the per-sample difficulty features it supplies
  (a :class:`~unlearn_audit.difficulty.FeatureSet`: the classifier's for ``supervised``,
  the encoder's for ``contrastive``), or None when it supplies none: then the
  difficulty index is skipped (docs/difficulty.md);
* ``batched_trainable``: its objective is :class:`learning.train.CrossEntropy`, which
  the batched ensemble engine (:mod:`learning.ensemble`) trains;
* ``utility_metrics``: the keys of :meth:`Paradigm.utility` (``forget_acc``,
  ``retain_acc`` and ``test_acc`` always among them: the verdict reads ``test_acc``);
* ``unlearner_paradigm``: the paradigm its objective declares to the unlearners
  (``Unlearner.paradigms``, ``UnlearnContext.paradigm``);
* ``negatives``: its objective contrasts negative pairs, so a method built on
  InfoNCE negatives (``Unlearner.needs_negatives``) applies (False for BYOL and for a
  classifier).

A paradigm may also register *defaults*: a partial, TOML-shaped table that
``paradigm = "NAME"`` lays over the built-in defaults before the user's file and
flags (:func:`paradigm_defaults`; read by :func:`audit.config.from_dict`). The
contrastive paradigm uses it for the recipe and shadow count that give an encoder
audit power in its time budget (``Contrastive.DEFAULTS``, docs/contrastive.md).

``supervised`` lives here; ``contrastive`` (SimCLR / MoCo encoders) registers beside
it. results.json's ``paradigm`` block records ``has_classes`` and ``difficulty``
(whether it supplies difficulty features) for the readers of a finished run (the
report, ``unlearn-audit rank``), which do not import this module.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from unlearn_audit.attacks.signals import logit_scaled_confidence
from unlearn_audit.audit.config_types import AuditConfig, ConfigError
from unlearn_audit.audit.contrastive import Contrastive
from unlearn_audit.audit.plan import Plan
from unlearn_audit.difficulty import ClassifierFeatures, FeatureSet
from unlearn_audit.learning.augment import Augment, default_padding, query_views
from unlearn_audit.learning.data import Dataset
from unlearn_audit.learning.train import CrossEntropy, Objective, Recipe, accuracy, predict_logits


class Paradigm(Protocol):
    """What the pipeline needs to know about a way of learning (see the module docstring)."""

    name: str
    has_classes: bool
    batched_trainable: bool
    utility_metrics: tuple[str, ...]
    unlearner_paradigm: str
    negatives: bool

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

    def difficulty_features(self, ds: Dataset, recipe: Recipe) -> FeatureSet | None:
        """The per-sample difficulty features of its models (None: it supplies none)."""
        ...


class Supervised:
    """Classifiers trained with cross-entropy; signal = logit-scaled confidence."""

    name = "supervised"
    has_classes = True
    batched_trainable = True
    utility_metrics: tuple[str, ...] = ("forget_acc", "retain_acc", "test_acc")
    unlearner_paradigm = "supervised"
    negatives = False

    def recipe(self, train: Recipe) -> Recipe:
        return train

    def signal_description(self) -> str:
        return "the model's logit-scaled confidence in the true label"

    def signal_settings(self) -> dict[str, object]:
        return {"paradigm": self.name, "signal": "logit_scaled_confidence"}

    def objective(self, ds: Dataset, recipe: Recipe) -> Objective:
        aug = Augment(default_padding(ds.shape[1]), ds.flippable) if recipe.augment else None
        return CrossEntropy(aug)

    def difficulty_features(self, ds: Dataset, recipe: Recipe) -> FeatureSet | None:
        """A classifier's seven features (loss, margin, gradient norm, Stein score, ...)."""
        return ClassifierFeatures()

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


def difficulty_features(paradigm: Paradigm, ds: Dataset, recipe: Recipe) -> FeatureSet | None:
    """The difficulty features ``paradigm`` supplies for ``ds`` trained with ``recipe``.

    None when it supplies none, also for a paradigm registered before this capability
    existed (an object without ``difficulty_features``).
    """
    supply = getattr(paradigm, "difficulty_features", None)
    return supply(ds, recipe) if supply is not None else None


ParadigmFactory = Callable[[AuditConfig], Paradigm]

# name -> the factory that builds it from the whole config (a paradigm reads its table)
_FACTORIES: dict[str, ParadigmFactory] = {
    "supervised": lambda cfg: Supervised(),
    "contrastive": Contrastive.from_config,
}
# name -> the defaults ``paradigm = NAME`` lays under the user's keys (none: the built-in)
_DEFAULTS: dict[str, dict[str, Any]] = {"contrastive": Contrastive.DEFAULTS}


def register_paradigm(
    name: str, factory: ParadigmFactory, defaults: dict[str, Any] | None = None
) -> None:
    """Make ``paradigm = "NAME"`` build ``factory(cfg)``; the paradigm it builds names
    itself ``name`` and declares the capabilities of :class:`Paradigm`. ``defaults``, a
    partial TOML-shaped table (``{"train": {"epochs": 100}}``), replaces built-in
    defaults for audits of this paradigm; the user's own keys still win."""
    if not name or not isinstance(name, str):
        raise ValueError(f"a paradigm needs a non-empty name, got {name!r}")
    if defaults is not None and not isinstance(defaults, dict):
        raise ValueError(f"a paradigm's defaults must be a table (dict), got {defaults!r}")
    _FACTORIES[name] = factory
    if defaults:
        _DEFAULTS[name] = defaults
    else:
        _DEFAULTS.pop(name, None)


def paradigm_defaults(name: str) -> dict[str, Any]:
    """A copy of the defaults ``paradigm = name`` lays over the built-in ones (``{}``:
    none, also for a name nobody registered, which the config's checks refuse)."""
    return copy.deepcopy(_DEFAULTS.get(name, {}))


def available_paradigms() -> list[str]:
    """The registered paradigm names, sorted."""
    return sorted(_FACTORIES)


def check_paradigm(name: str) -> None:
    """Refuse a paradigm name nobody registered (the config's validation asks this)."""
    if name not in _FACTORIES:
        raise ConfigError(f"unknown paradigm '{name}'; valid: {', '.join(available_paradigms())}")


def make_paradigm(cfg: AuditConfig) -> Paradigm:
    """The paradigm ``cfg.paradigm`` names, set up from ``cfg`` (``contrastive`` reads
    its ``[contrastive]`` table)."""
    check_paradigm(cfg.paradigm)
    return _FACTORIES[cfg.paradigm](cfg)


def get_paradigm(name: str, cfg: AuditConfig | None = None) -> Paradigm:
    """The paradigm registered as ``name``, set up from ``cfg``, or from the defaults
    (``AuditConfig()``) when ``cfg`` is None."""
    check_paradigm(name)
    return _FACTORIES[name](cfg if cfg is not None else AuditConfig())
