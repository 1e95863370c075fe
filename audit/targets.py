"""The audited ("target") models: original, reference, controls, methods, the caller's.

:func:`produce_targets` makes every one of them through the :class:`Producer` and
returns :class:`Targets`: one :class:`ModelRun` per model, in the order the run
files list them (original, reference, the controls and methods, the planted
control, the caller's unlearned models). A method that fails (raises, or outputs
non-finite values) is a run with an ``error`` and no model: the audit goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from unlearn_audit.audit.inputs import Setup
from unlearn_audit.audit.plan import Plan, derive_seed
from unlearn_audit.audit.production import Made, Producer
from unlearn_audit.audit.specs import UnlearnSpec
from unlearn_audit.audit.verdict import NEGATIVE_CONTROL, PLANTED_CONTROL, POSITIVE_CONTROL
from unlearn_audit.unlearners import Unlearner

CONTROLS = (NEGATIVE_CONTROL, POSITIVE_CONTROL)


@dataclass
class ModelRun:
    """One target model and what is known of it.

    Attributes:
        name: Its name in the run files (``original``, ``retrain``, a method's name...).
        role: ``original``, ``reference``, ``control`` or ``unlearner``.
        model: The model, None when it failed.
        signals: Its membership signals on every pool sample ``(n, views)``, None when
            it failed.
        seconds: Time it took to make (its cached time when it was loaded).
        key: Its content key in the model store (a digest for a brought original).
        source: Where a model the caller brought came from.
        error: Why it failed.
        params: A method's parameters.
        checkpoint: Its file in the run directory, for a model the audit made.
        utility: The paradigm's utility metrics (:meth:`measure_utility`).
    """

    name: str
    role: str
    model: nn.Module | None
    signals: np.ndarray | None
    seconds: float = 0.0
    key: str | None = None
    source: str | None = None
    error: str | None = None
    params: dict[str, Any] | None = None
    utility: dict[str, float] | None = None

    @classmethod
    def of(cls, name: str, role: str, made: Made, key: str | None = None) -> ModelRun:
        meta = made.meta
        return cls(
            name,
            role,
            made.model,
            made.signals,
            seconds=float(meta.get("seconds", 0.0)),
            key=key,
            source=meta.get("source"),
            params=meta["method"]["params"] if "method" in meta else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """Its entry of results.json's ``models`` block."""
        item: dict[str, Any] = {
            "role": self.role,
            "utility": self.utility,
            "seconds": round(self.seconds, 3),
        }
        if self.error is not None:
            item["error"] = self.error
        if self.source is not None:
            item["source"] = self.source
        if self.params is not None:
            item["params"] = self.params
        if self.key is not None and self.source is None:
            item["checkpoint"] = f"models/{self.name}-{self.key}.pt"
        elif self.key is not None:
            item["content_hash"] = self.key
        return item


@dataclass
class Targets:
    """Every target model of the audit, by name, in the run files' order."""

    runs: dict[str, ModelRun] = field(default_factory=dict)
    planted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def add(self, run: ModelRun) -> None:
        self.runs[run.name] = run

    @property
    def signals(self) -> dict[str, np.ndarray]:
        """The signals of every model that did not fail."""
        return {n: r.signals for n, r in self.runs.items() if r.signals is not None}

    @property
    def judged(self) -> list[str]:
        """The models that get a verdict: controls, methods and the caller's models."""
        return [n for n, r in self.runs.items() if r.role in ("control", "unlearner")]

    def measure_utility(self, setup: Setup, plan: Plan) -> None:
        """The paradigm's utility of every model that did not fail."""
        for run in self.runs.values():
            if run.model is not None:
                run.utility = setup.paradigm.utility(run.model, setup.x, setup.y, plan)

    def block(self) -> dict[str, Any]:
        """results.json's ``models`` block."""
        return {name: run.to_dict() for name, run in self.runs.items()}


def planted_records(plan: Plan, fraction: float, seed: int) -> np.ndarray:
    """The forget records the planted control keeps: a seeded random ``fraction`` (sorted)."""
    k = int(round(fraction * plan.forget.size))
    rng = np.random.default_rng(derive_seed(seed, "planted-records"))
    return np.sort(rng.permutation(plan.forget)[:k])


def produce_targets(p: Producer, plan: Plan, methods: list[Unlearner]) -> Targets:
    """Make (or load) every target model; ``methods``: the controls first, then the rest."""
    cfg, out = p.cfg, Targets()
    ospec, original = p.original(plan)
    out.add(ModelRun.of("original", "original", original, ospec.key))
    p.log("training the retrained reference on the retain set")
    rspec = p.specs.reference(plan)
    out.add(ModelRun.of("reference", "reference", p.train(rspec, p.progress), rspec.key))
    p.log("unlearning (controls first)")
    for method in methods:
        role = "control" if method.name in CONTROLS else "unlearner"
        out.add(_unlearned(p, p.specs.unlearned(method, ospec, plan), original.model, role))
    fraction = cfg.verdict.planted_fraction
    if fraction > 0:
        out.planted = planted_records(plan, fraction, cfg.seed)
        p.log(
            f"training the planted control on the retain set plus {out.planted.size} of the "
            f"{plan.forget.size} forget samples ({fraction:.0%})"
        )
        pspec = p.specs.planted(plan, out.planted)
        out.add(ModelRun.of(PLANTED_CONTROL, "control", p.train(pspec, p.progress), pspec.key))
    for name, made in p.checkpoints().items():
        out.add(ModelRun.of(name, "unlearner", made))
    return out


def _unlearned(p: Producer, spec: UnlearnSpec, original: nn.Module, role: str) -> ModelRun:
    """The audited model of one method; a failure is a run with an ``error``."""
    name = spec.method.name
    try:
        made = p.unlearn(spec, original)
    except Exception as exc:  # a method's failure is recorded, the audit goes on
        return _failed(p, name, role, f"{type(exc).__name__}: {exc}", 0.0)
    if not np.isfinite(made.signals).all():
        msg = "the unlearned model outputs non-finite values (diverged)"
        return _failed(p, name, role, msg, float(made.meta.get("seconds", 0.0)))
    done = "cached" if made.cached else "{:.1f}s".format(made.meta["seconds"])
    p.log(f"  {name}: {done}")
    return ModelRun.of(name, role, made, spec.key)


def _failed(p: Producer, name: str, role: str, error: str, seconds: float) -> ModelRun:
    p.log(f"  {name}: FAILED ({error})")
    return ModelRun(name, role, None, None, seconds=seconds, error=error)
