"""Producing the audit's models: train, unlearn or load them, cached by content hash.

:class:`Producer` makes the models of one run from its :class:`audit.inputs.Setup`
(pool, paradigm, model factory) into its model store. Every trained or unlearned
model is a spec (:mod:`audit.specs`) cached under ``RUN/models`` by its content
key, so a repeated audit trains nothing and an interrupted one resumes; every one
is a job of the executor (``[execution]``: this process or Ray tasks).
"""

from __future__ import annotations

import dataclasses
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unlearn_audit.audit.execution import (
    Job,
    PackJob,
    WorkerState,
    make_executor,
    threads_of,
)
from unlearn_audit.audit.inputs import AuditInputs, Setup, state_digest
from unlearn_audit.audit.plan import Plan
from unlearn_audit.audit.rundir import ModelStore, cached
from unlearn_audit.audit.specs import ModelSpec, UnlearnSpec
from unlearn_audit.learning.checkpoints import file_digest, load_checkpoint
from unlearn_audit.learning.data import Dataset
from unlearn_audit.learning.train import fit, make_generator
from unlearn_audit.unlearners import Unlearner


@dataclass(frozen=True)
class Made:
    """A model of the audit with its metadata and its signals on every pool sample."""

    model: nn.Module
    meta: dict[str, Any]
    signals: np.ndarray
    cached: bool = False


class Producer:
    """Trains, unlearns and loads the models of one audit run into ``store``."""

    def __init__(
        self,
        setup: Setup,
        store: ModelStore,
        progress: bool,
        log: Callable[[str], None],
    ) -> None:
        self.setup, self.store, self.progress, self.log = setup, store, progress, log
        self.cfg, self.specs = setup.cfg, setup.specs
        self.device = setup.device
        self.executor = make_executor(  # where the model jobs run ([execution])
            self.cfg.execution, self.run_job, self.worker_state, progress, log
        )

    # -- models trained from scratch -------------------------------------------------------
    def train(self, spec: ModelSpec, bar: bool) -> Made:
        """Train a fresh model on ``spec.idx`` (or load it from the store)."""
        s = self.setup
        if self.executor.remote and not self.store.has(spec.label, spec.key):
            self.executor.run([spec], spec.label)  # into the store
        t_idx = torch.as_tensor(spec.idx, device=self.device)

        def produce() -> tuple[nn.Module, dict[str, Any]]:
            t0 = time.perf_counter()
            model = fit(
                s.new_model(spec.seed),
                s.x[t_idx],
                s.y[t_idx],
                s.objective.loss,
                s.recipe,
                make_generator(spec.seed, self.device),
                progress=bar,
                desc=spec.label,
            )
            return model, {"seconds": time.perf_counter() - t0}

        model, meta, sig, hit = cached(
            self.store,
            spec.label,
            spec.key,
            s.new_model(spec.seed),
            produce,
            s.signals_of,
            s.signal_key,
        )
        return Made(model, meta, sig, hit)

    def original(self, plan: Plan) -> tuple[ModelSpec, Made]:
        """The original model: the caller's (in memory or a checkpoint) or trained here."""
        s = self.setup
        given, path = s.inputs.original, self.cfg.model.original
        if given is not None:
            model = given.to(self.device).eval()
            spec = self.specs.brought("original", state_digest(model), plan.members)
            return spec, Made(
                model, {"seconds": 0.0, "source": "in-memory model"}, s.signals_of(model)
            )
        if path:
            model = load_checkpoint(s.new_model(0), Path(path)).eval()
            spec = self.specs.brought("original", file_digest(Path(path)), plan.members)
            return spec, Made(model, {"seconds": 0.0, "source": path}, s.signals_of(model))
        spec = self.specs.original(plan)
        if self.store.has(spec.label, spec.key):
            self.log("loading the original model (cached)")
        else:
            self.log("training the original model on the members")
        return spec, self.train(spec, self.progress)

    def checkpoints(self) -> dict[str, Made]:
        """The caller's unlearned models: in memory first, then ``unlearn.checkpoints``."""
        s, out = self.setup, {}
        for name, model in s.inputs.unlearned.items():
            m = model.to(self.device).eval()
            out[name] = Made(m, {"seconds": 0.0, "source": "in-memory model"}, s.signals_of(m))
        for name, path in self.cfg.unlearn.checkpoints.items():
            m = load_checkpoint(s.new_model(0), Path(path)).eval()
            out[name] = Made(m, {"seconds": 0.0, "source": path}, s.signals_of(m))
        return out

    # -- models made by unlearning ---------------------------------------------------------
    def unlearn(self, spec: UnlearnSpec, original: nn.Module) -> Made:
        """Apply ``spec.method`` to ``original`` (an audited model; a job when the original
        is in the store). Raises what the method raises; a diverged model is returned."""
        store = self.store
        remote = self.executor.remote and store.has(spec.base.label, spec.base.key)
        remote = remote and not store.has(spec.label, spec.key)
        if remote:
            self.executor.run([spec], spec.label)
        model, meta, sig, hit = cached(
            store,
            spec.label,
            spec.key,
            self.setup.new_model(0),
            lambda: self._unlearned(spec, original, progress=self.progress),
            self.setup.signals_of,
            self.setup.signal_key,
        )
        return Made(model, meta, sig, hit and not remote)

    def _unlearned(
        self, spec: UnlearnSpec, model: nn.Module, progress: bool = False
    ) -> tuple[nn.Module, dict[str, Any]]:
        """Run the method of ``spec`` on ``model``: the unlearned model and its metadata."""
        s = self.setup
        f, r = (torch.as_tensor(i, device=self.device) for i in (spec.forget, spec.retain))
        t0 = time.perf_counter()
        out = spec.method.unlearn(
            model,
            (s.x[f], s.y[f]),
            (s.x[r], s.y[r]),
            objective=s.objective,
            recipe=s.recipe,
            generator=make_generator(spec.seed, self.device),
            progress=progress,
            reference=s.subset(spec.public),
        )
        meta: dict[str, Any] = {"seconds": time.perf_counter() - t0}
        if spec.index < 0:  # an audited model: results.json lists its parameters
            meta["method"] = spec.method.describe()
        return out, meta

    # -- banks of models -------------------------------------------------------------------
    def shadows(self, plan: Plan) -> np.ndarray:
        """Signals of the shadow bank, ``(m, n, views)``; each trained on its keep row.

        ``attack.engine`` decides how the shadows not cached yet are trained: one by
        one (``fit``) or as batched ensembles (:func:`learning.ensemble.fit_ensemble`,
        the same models within float tolerance). Both cache each model under its
        spec's key, so the engines share a bank and growing it trains only the new
        models. Each shadow is a job of the executor (``[execution]``).
        """
        specs = [self.specs.shadow(plan, k) for k in range(self.cfg.attack.shadows)]
        return np.stack(self._signals(specs, "shadow models", self._packs(specs)))

    def unlearned_bank(self, method: Unlearner, plan: Plan) -> np.ndarray:
        """U-LiRA bank of ``method``: shadow ``k`` unlearns its request ``F_k``
        (:meth:`audit.specs.Specs.ulira`).

        Returns the signals ``(m, n, views)`` of the unlearned shadows; each one is
        cached under its spec's key and is a job of the executor.

        Raises:
            Exception: whatever the method raises on a shadow (the caller records it).
        """
        specs = [
            self.specs.ulira(method, plan, self.setup.labels, k)
            for k in range(self.cfg.attack.shadows)
        ]
        return np.stack(self._signals(specs, f"U-LiRA bank: {method.name}"))

    def _signals(
        self,
        jobs: Sequence[ModelSpec | UnlearnSpec],
        desc: str,
        packs: Sequence[PackJob] = (),
    ) -> list[np.ndarray]:
        """Each job's signals, in job order; ``packs`` train the batched engine's shadows.

        Locally the packs run first, then each job in turn (a finished one is loaded).
        A remote executor gets every job the store lacks at once, and the models are then
        loaded from the store: a finished job is never redone, whoever ran it.
        """
        if self.executor.remote:
            packed = {job.key for pack in packs for job in pack.jobs}
            todo: list[Job] = [*packs]
            todo += [j for j in jobs if j.key not in packed and not self.store.has(j.label, j.key)]
            self.executor.run(todo, desc)
            return [self.run_job(job) for job in jobs]  # in the store now: loaded
        fresh: dict[str, np.ndarray] = {}
        for pack in packs:
            fresh.update(self.run_job(pack))
        done = iter(self.executor.run([j for j in jobs if j.key not in fresh], desc))
        return [fresh[job.key] if job.key in fresh else next(done) for job in jobs]

    def run_job(self, job: Job) -> Any:
        """Do one job in this process, or load it from the store when it is finished.

        Returns the signals of a train or unlearn job, ``{key: signals}`` of a pack.
        Ray workers call it too (:func:`audit.execution.execute`).
        """
        if isinstance(job, PackJob):
            return self._fit_pack(job)
        if isinstance(job, ModelSpec):
            return self.train(job, bar=False).signals
        return self._unlearn_job(job)

    def _unlearn_job(self, spec: UnlearnSpec) -> np.ndarray:
        """Run (or load) an unlearn job; its signals. A shadow that diverges raises."""

        def produce() -> tuple[nn.Module, dict[str, Any]]:
            return self._unlearned(spec, self.train(spec.base, bar=False).model)

        _, _, sig, _ = cached(
            self.store,
            spec.label,
            spec.key,
            self.setup.new_model(0),
            produce,
            self.setup.signals_of,
            self.setup.signal_key,
        )
        if spec.index >= 0 and not np.isfinite(sig).all():
            raise ValueError(f"shadow {spec.index} diverged (non-finite outputs) after unlearning")
        return sig

    @property
    def job_device(self) -> torch.device:
        """Where a job trains: this process's device, or a Ray worker's (GPU if it has one)."""
        if not self.executor.remote:
            return self.device
        return torch.device("cuda" if self.cfg.execution.gpus_per_job > 0 else "cpu")

    def _packs(self, jobs: Sequence[ModelSpec]) -> list[PackJob]:
        """The uncached ``jobs`` in ensembles if the engine is batched (else none)."""
        from unlearn_audit.learning.ensemble import ENSEMBLE_SIZE, resolve_engine

        s = self.setup
        supported = s.paradigm.batched_trainable
        auto_ok = supported and s.inputs.model_factory is None
        device = self.job_device
        probe = auto_ok and device.type == "cuda" and self.cfg.attack.engine == "auto"
        size = sum(p.numel() for p in s.new_model(0).parameters()) if probe else 0
        engine = resolve_engine(self.cfg.attack.engine, device, batchable=auto_ok, n_params=size)
        if engine != "batched":
            return []
        if not supported:
            self.log("  attack.engine: batched trains cross-entropy models only; sequential here")
            return []
        todo = [job for job in jobs if not self.store.has(job.label, job.key)]
        step = ENSEMBLE_SIZE
        return [PackJob(tuple(todo[i : i + step])) for i in range(0, len(todo), step)]

    def _fit_pack(self, pack: PackJob) -> dict[str, np.ndarray]:
        """Train one ensemble of shadows with the batched engine, store each; their signals."""
        from unlearn_audit.learning.ensemble import fit_ensemble

        s, jobs = self.setup, pack.jobs
        objective = s.objective
        if not s.paradigm.batched_trainable:
            raise TypeError("the batched engine trains cross-entropy models only")
        t0 = time.perf_counter()
        models = fit_ensemble(
            [s.new_model(job.seed) for job in jobs],
            s.x,
            s.y,
            [torch.as_tensor(job.idx, device=self.device) for job in jobs],
            s.recipe,
            [make_generator(job.seed, self.device) for job in jobs],
            augment=objective.augment,  # type: ignore[attr-defined]  # a CrossEntropy
            progress=self.progress,
            desc=f"{len(jobs)} shadows at once",
        )
        meta = {"seconds": (time.perf_counter() - t0) / len(jobs), "engine": "batched"}
        out = {}
        for job, model in zip(jobs, models, strict=True):
            out[job.key] = s.signals_of(model)
            self.store.save(
                job.label,
                job.key,
                model,
                {**meta, "ensemble": len(jobs), "signal_key": s.signal_key},
                out[job.key],
            )
        return out

    # -- the worker side of a remote executor ---------------------------------------------
    def worker_state(self) -> WorkerState:
        """What a Ray worker needs to run this audit's jobs (:meth:`for_worker`)."""
        s = self.setup
        ds = s.ds
        return WorkerState(
            build=Producer.for_worker,
            token=uuid.uuid4().hex,
            cfg=self.cfg,
            model_factory=s.inputs.model_factory,
            dataset={"name": ds.name, "classes": tuple(ds.classes), "flippable": ds.flippable},
            x=ds.x.numpy(),
            y=ds.y.numpy(),
            base=s.base,
            store_root=str(self.store.root.resolve()),
            threads=threads_of(self.cfg.execution),
        )

    @classmethod
    def for_worker(cls, state: WorkerState) -> Producer:
        """The producer of a Ray worker: the driver's pool, cache keys and store, run here.

        A job that reserves no GPU runs on the CPU (under ``device = "auto"``).
        """
        cfg, ex = state.cfg, state.cfg.execution
        device = "cpu" if cfg.device == "auto" and not ex.gpus_per_job else cfg.device
        local = dataclasses.replace(ex, executor="local")
        cfg = dataclasses.replace(cfg, device=device, execution=local)
        x, y = (torch.from_numpy(np.array(a)) for a in (state.x, state.y))  # writable copies
        ds = Dataset(x=x, y=y, **state.dataset)
        setup = Setup(cfg, AuditInputs(model_factory=state.model_factory), ds, base=state.base)
        store = ModelStore(Path(state.store_root), log=_worker_log)
        return cls(setup, store, False, _worker_log)


def _worker_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
