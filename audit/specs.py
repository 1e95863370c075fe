"""The identity of every model the audit trains or unlearns, in one place.

A model trained from scratch is a :class:`ModelSpec`: its store label, the pool
samples it trains on, its seed and its content key (the model store's file name,
:class:`audit.rundir.ModelStore`). A model made by unlearning is an
:class:`UnlearnSpec`: the spec of the model it starts from, the method, the
request (forget, retain, public samples) and its seed. Both keys hash everything
that made the model, so a cached model is reused only when it would come out the
same; in particular the forget request is part of an unlearned model's key (an
audit of another request in the same run directory unlearns again).

:class:`Specs` builds them for one audit: the original, the reference, the planted
control, shadow ``k``, a method's unlearned model and shadow ``k``'s unlearned
model of a U-LiRA bank. Nothing else derives a seed or an index set for a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from unlearn_audit.attacks.shadows import unlearning_request
from unlearn_audit.audit.plan import Plan, derive_seed
from unlearn_audit.audit.rundir import content_key, index_digest
from unlearn_audit.audit.verdict import PLANTED_CONTROL

if TYPE_CHECKING:
    from unlearn_audit.unlearners import Unlearner


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """Train a fresh model on pool samples ``idx`` with ``seed`` (store entry ``label-key``)."""

    label: str
    key: str
    idx: np.ndarray
    seed: int


@dataclass(frozen=True, eq=False)
class UnlearnSpec:
    """``method`` unlearns ``forget`` from the model ``base`` (store entry ``label-key``).

    ``index``: the shadow's number in a U-LiRA bank (its error names it), -1 for an
    audited model. ``public``: the third-party samples the method may use as reference.
    """

    label: str
    key: str
    method: Unlearner
    base: ModelSpec
    forget: np.ndarray
    retain: np.ndarray
    public: np.ndarray
    seed: int
    index: int = -1


class Specs:
    """The specs of one audit's models, from its cache-key base and its seed.

    ``base``: what every model of the audit depends on (data fingerprint, model,
    recipe, objective, paradigm, tool version; :meth:`audit.production.Producer`
    builds it).
    """

    def __init__(self, base: dict[str, Any], seed: int) -> None:
        self.base, self.seed = base, seed

    def train(self, label: str, idx: np.ndarray, seed: int) -> ModelSpec:
        """A model trained from scratch on pool samples ``idx``."""
        key = content_key({**self.base, "role": "train", "idx": index_digest(idx), "seed": seed})
        return ModelSpec(label, key, idx, seed)

    def original(self, plan: Plan) -> ModelSpec:
        return self.train("original", plan.members, derive_seed(self.seed, "original"))

    def reference(self, plan: Plan) -> ModelSpec:
        return self.train("reference", plan.retain, derive_seed(self.seed, "reference"))

    def planted(self, plan: Plan, kept: np.ndarray) -> ModelSpec:
        """Retrained on the retain set plus the forget records ``kept``."""
        idx = np.union1d(plan.retain, kept)
        return self.train(PLANTED_CONTROL, idx, derive_seed(self.seed, "planted"))

    def shadow(self, plan: Plan, k: int) -> ModelSpec:
        """Shadow ``k``: trained on its keep row."""
        idx = np.flatnonzero(plan.keep[k])
        return self.train("shadow", idx, derive_seed(self.seed, "shadow", k))

    @staticmethod
    def brought(label: str, key: str, idx: np.ndarray) -> ModelSpec:
        """A model the audit did not train (the caller's original): its key is the digest
        of its weights or file, its seed -1; no job ever trains it."""
        return ModelSpec(label, key, idx, -1)

    def unlearn(
        self,
        label: str,
        method: Unlearner,
        base: ModelSpec,
        forget: np.ndarray,
        retain: np.ndarray,
        public: np.ndarray,
        seed: int,
        index: int = -1,
    ) -> UnlearnSpec:
        """``method`` unlearns ``forget`` from the model of ``base``: one key schema for
        every unlearned model, with every input of the method in it."""
        key = content_key(
            {
                "base": base.key,
                "method": method.name,
                "params": method.describe()["params"],
                "forget": index_digest(forget),
                "retain": index_digest(retain),
                "public": index_digest(public),
                "seed": seed,
            }
        )
        return UnlearnSpec(label, key, method, base, forget, retain, public, seed, index)

    def unlearned(self, method: Unlearner, original: ModelSpec, plan: Plan) -> UnlearnSpec:
        """The audited model of ``method``: the original unlearns the forget request."""
        seed = derive_seed(self.seed, "unlearn", method.name)
        return self.unlearn(
            method.name, method, original, plan.forget, plan.retain, plan.public, seed
        )

    def ulira(self, method: Unlearner, plan: Plan, labels: np.ndarray, k: int) -> UnlearnSpec:
        """Shadow ``k`` of ``method``'s U-LiRA bank unlearns its request ``F_k``.

        ``F_k`` is ``IN_k ∩ forget`` padded with other samples of ``IN_k`` to the
        audited request's size and label counts (:func:`attacks.shadows.unlearning_request`).
        """
        shadow = self.shadow(plan, k)
        keep_k = shadow.idx
        forget_k = unlearning_request(
            keep_k,
            plan.forget,
            labels,
            np.random.default_rng(derive_seed(self.seed, "ulira-request", k)),
        )
        retain_k = np.setdiff1d(keep_k, forget_k)
        public_k = np.setdiff1d(plan.public, keep_k)  # this shadow's own non-members
        seed = derive_seed(self.seed, "ulira", method.name, k)
        return self.unlearn(
            f"ulira-{method.name}", method, shadow, forget_k, retain_k, public_k, seed, k
        )
