"""The ``contrastive`` paradigm: audit unlearning in SimCLR / MoCo / BYOL encoders.

What the pipeline asks a paradigm (:class:`audit.paradigms.Paradigm`), for an encoder:

* objective: SimCLR (NT-Xent), MoCo v2 or BYOL (:mod:`learning.byol`; no
  negatives, so ``negatives`` is False) on views that suit the images
  (:func:`learning.views.default_views`); ``[contrastive]`` picks the method and
  temperature, and may override the ``[train]`` epochs, batch size and learning
  rate (:meth:`Contrastive.recipe`).
* model: the architecture of ``[model]`` with ``proj_dim`` outputs; its last
  linear layer is the projection head ``g``, its input the representation ``h``.
* signal (docs/contrastive.md, ``[contrastive] signal``): every signal queries
  every model (target and shadow) with the very same images, because the query
  augmentations are drawn from a fixed seed.

  - ``instance`` (default): the logit-scaled confidence of instance
    discrimination (:func:`learning.probe.instance_logit`) of ``views``
    augmentations of a sample against a fixed bank of other pool samples; on
    the Fashion-MNIST benchmark it gives LiRA the most power.
  - ``encodermi``: EncoderMI's (Liu et al. 2021) mean pairwise cosine
    similarity of the projections of ``views`` augmentations, as it is: its
    ``atanh`` (:func:`fisher_z`) did not make the shadow distributions any
    more Gaussian nor LiRA any stronger on the benchmark (docs/contrastive.md).
  - ``probe``: the logit-scaled confidence of a linear probe fitted on the
    representations of the whole pool (the same data for every model, so only
    the encoder differs).
* difficulty features (:class:`~unlearn_audit.difficulty.EncoderFeatures`,
  docs/difficulty.md "Encoders"): memorization and LiRA exposure of the signal,
  alignment of the views, the gradient norm of the encoder's own loss, entanglement,
  kNN label margin and density in representation space.
* utility: linear-probe and weighted-kNN accuracy on the representation; the
  probe is trained on the retain set and the kNN bank holds the retain set
  only (retain queries leave themselves out). ``forget_acc`` / ``retain_acc`` /
  ``test_acc`` repeat the probe accuracies, which the verdict's utility rule reads.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from unlearn_audit.attacks.signals import logit_scaled_confidence
from unlearn_audit.audit.config_types import AuditConfig, ContrastiveConfig
from unlearn_audit.audit.plan import Plan
from unlearn_audit.difficulty import EncoderFeatures
from unlearn_audit.learning.augment import query_views
from unlearn_audit.learning.byol import BYOL
from unlearn_audit.learning.contrastive import MoCo, SimCLR, representation
from unlearn_audit.learning.data import Dataset
from unlearn_audit.learning.probe import (
    QUERY_CHUNK,
    LinearProbe,
    encodermi_similarity,
    features,
    instance_logit,
    knn_predict,
    projection,
    query_features,
)
from unlearn_audit.learning.train import Objective, Recipe
from unlearn_audit.learning.views import ViewAugment, default_views

QUERY_SEED = 20210706  # seed of the query augmentations (the same for every model)
CHUNK = QUERY_CHUNK  # samples per chunk of query views; part of the query seed schedule
EPS = 1e-6  # fisher_z clips similarities to [-1 + EPS, 1 - EPS]
BANK = 1024  # pool samples whose projections serve as negatives of the instance signal


def fisher_z(similarity: np.ndarray) -> np.ndarray:
    """``atanh`` of similarities clipped into ``(-1, 1)`` (finite for a perfect 1).

    Fisher's z-transform, the logit-like map of a similarity; measured against
    the raw EncoderMI similarity in benchmarks/contrastive.py.
    """
    return np.arctanh(np.clip(similarity.astype(np.float64), -1 + EPS, 1 - EPS)).astype(np.float32)


def negative_bank(n: int, size: int = BANK) -> tuple[np.ndarray, torch.Tensor]:
    """A fixed, seeded subset of the pool (the negatives) and each sample's row in it."""
    rows = np.sort(np.random.default_rng(QUERY_SEED).permutation(n)[: min(n, size)])
    own = torch.full((n,), -1, dtype=torch.long)
    own[torch.as_tensor(rows)] = torch.arange(rows.size)
    return rows, own


class Contrastive:
    """Encoders trained with SimCLR, MoCo v2 or BYOL (see the module docstring)."""

    name = "contrastive"
    has_classes = False  # an encoder's outputs are features, not class logits
    batched_trainable = False  # the batched engine trains cross-entropy only
    utility_metrics: tuple[str, ...] = (  # probe and kNN per part, then the probe's again
        "probe_forget_acc",
        "knn_forget_acc",
        "probe_retain_acc",
        "knn_retain_acc",
        "probe_test_acc",
        "knn_test_acc",
        "forget_acc",
        "retain_acc",
        "test_acc",
    )
    unlearner_paradigm = "contrastive"
    #: What ``paradigm = "contrastive"`` changes in the built-in defaults (your keys win).
    #: Encoders memorise single samples far less per epoch than classifiers memorise
    #: labels: on the embedded digits, 40 epochs left the controls inseparable, and 200
    #: epochs at lr 0.1 with 32 shadows separate them on seeds 0-2 in half the time 64
    #: shadows take (benchmarks/contrastive_default.py; docs/contrastive.md, "Defaults").
    DEFAULTS: dict[str, dict[str, object]] = {
        "train": {"epochs": 200, "lr": 0.1},
        "attack": {"shadows": 32},
    }

    def __init__(self, settings: ContrastiveConfig | None = None) -> None:
        self.settings = settings or ContrastiveConfig()

    @property
    def negatives(self) -> bool:
        """SimCLR and MoCo contrast negatives; BYOL has none."""
        return self.settings.method != "byol"

    @classmethod
    def from_config(cls, cfg: AuditConfig) -> Contrastive:
        return cls(cfg.contrastive)

    def recipe(self, train: Recipe) -> Recipe:
        """``[train]`` with the non-zero ``[contrastive]`` epochs, batch size and lr."""
        s = self.settings
        return dataclasses.replace(
            train,
            epochs=s.epochs or train.epochs,
            batch_size=s.batch_size or train.batch_size,
            lr=s.lr or train.lr,
        )

    def augment(self, ds: Dataset) -> ViewAugment:
        return default_views(ds.shape, ds.flippable)

    def objective(self, ds: Dataset, recipe: Recipe) -> Objective:
        s, aug = self.settings, self.augment(ds)
        if s.method == "byol":
            return BYOL(aug, momentum=s.momentum)
        if s.method == "moco":
            batch = self.recipe(recipe).batch_size
            queue = s.queue_size or min(4096, max(batch, len(ds) // 4 // batch * batch))
            return MoCo(aug, s.temperature, s.momentum, queue)
        return SimCLR(aug, s.temperature)

    def num_outputs(self, ds: Dataset) -> int:
        return self.settings.proj_dim

    def difficulty_features(self, ds: Dataset, recipe: Recipe) -> EncoderFeatures:
        """An encoder's features; NT-Xent's fixed negatives are a training batch's others.

        ``recipe`` is the recipe the models train with (this paradigm's, so its batch size
        is the ``[contrastive]`` one when set).
        """
        s = self.settings
        return EncoderFeatures(
            self.objective(ds, recipe),
            self.augment(ds),
            views=s.views,
            k=s.knn_k,
            negatives=max(1, recipe.batch_size - 1),
        )

    def signal_description(self) -> str:
        s = self.settings
        return {
            "instance": f"the encoder's logit-scaled confidence of instance discrimination "
            f"({s.views} augmented views against a fixed bank of other samples)",
            "encodermi": f"EncoderMI: the mean cosine similarity of the encoder's "
            f"projections of {s.views} augmented views",
            "probe": "the logit-scaled confidence of a linear probe on the encoder's "
            "representation in the true label",
        }[s.signal]

    def signal_settings(self) -> dict[str, object]:
        s = self.settings
        out: dict[str, object] = {"paradigm": self.name, "signal": s.signal}
        if s.signal != "probe":
            out.update(views=s.views, query_seed=QUERY_SEED, chunk=CHUNK)
        if s.signal == "instance":
            out.update(temperature=s.temperature, bank=BANK)
        return out

    def signals(self, model: nn.Module, ds: Dataset, x: torch.Tensor, n_views: int) -> np.ndarray:
        """``(n, n_views)``: column ``j`` is the signal under query seed ``j``."""
        model.eval()
        if self.settings.signal == "probe":
            return self._probe_signal(model, ds, x, n_views)
        aug, s = self.augment(ds), self.settings
        rows, own = negative_bank(x.shape[0])
        bank = features(model, x[torch.as_tensor(rows, device=x.device)], projection)
        cols = []
        for j in range(n_views):
            feats = query_features(model, x, aug, s.views, QUERY_SEED + 7919 * j, CHUNK)
            if s.signal == "encodermi":
                cols.append(encodermi_similarity(feats).cpu().numpy())
            else:
                cols.append(instance_logit(feats, bank, own, s.temperature).cpu().numpy())
        return np.stack(cols, axis=1)

    def _probe_signal(
        self, model: nn.Module, ds: Dataset, x: torch.Tensor, n_views: int
    ) -> np.ndarray:
        y = ds.y.to(x.device)
        probe = LinearProbe.fit(features(model, x), y, ds.num_classes)
        logits = torch.stack(
            [probe.logits(features(model, v)).cpu() for v in query_views(x, n_views, ds.flippable)],
            dim=1,
        )
        return logit_scaled_confidence(logits.numpy(), ds.y.numpy()[:, None])

    def utility(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: Plan
    ) -> dict[str, float]:
        h = features(model, x, representation)
        classes = int(y.max()) + 1
        t = {k: torch.as_tensor(v, device=x.device) for k, v in plan_parts(plan).items()}
        probe = LinearProbe.fit(h[t["retain"]], y[t["retain"]], classes)
        bank, labels = h[t["retain"]], y[t["retain"]]
        out: dict[str, float] = {}
        for part, idx in t.items():
            out[f"probe_{part}_acc"] = probe.accuracy(h[idx], y[idx])
            own = torch.arange(idx.numel(), device=x.device) if part == "retain" else None
            out[f"knn_{part}_acc"] = knn_accuracy(
                h[idx], y[idx], bank, labels, classes, self.settings.knn_k, own
            )
        for part in t:
            out[f"{part}_acc"] = out[f"probe_{part}_acc"]
        return out


def plan_parts(plan: Plan) -> dict[str, np.ndarray]:
    """Forget, retain and test (= non-member) indices of the plan."""
    return {"forget": plan.forget, "retain": plan.retain, "test": plan.nonmembers}


def knn_accuracy(
    query: torch.Tensor,
    y: torch.Tensor,
    bank: torch.Tensor,
    labels: torch.Tensor,
    classes: int,
    k: int,
    exclude: torch.Tensor | None = None,
) -> float:
    """Accuracy of :func:`learning.probe.knn_predict`; NaN for no query or an empty bank."""
    if query.shape[0] == 0 or bank.shape[0] <= (1 if exclude is not None else 0):
        return float("nan")
    pred = knn_predict(query, bank, labels, classes, k=k, exclude=exclude)
    return float((pred == y).float().mean())
