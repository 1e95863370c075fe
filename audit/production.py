"""Producing the audit's models: train, unlearn or load them, cached by content hash.

:class:`Producer` holds the data on the device, the objective, the model
factory and the model store of one run. Every trained or unlearned model is
cached under ``RUN/models`` with a key built from everything that made it, so
a repeated audit trains nothing and an interrupted one resumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unlearn_audit import unlearners
from unlearn_audit.attacks.shadows import unlearning_request
from unlearn_audit.audit import __version__
from unlearn_audit.audit.config import AuditConfig, ConfigError
from unlearn_audit.audit.execution import (
    Job,
    PackJob,
    TrainJob,
    UnlearnJob,
    WorkerState,
    make_executor,
    threads_of,
)
from unlearn_audit.audit.paradigms import make_paradigm
from unlearn_audit.audit.plan import Plan, derive_seed, make_plan
from unlearn_audit.audit.rundir import ModelStore, cached, content_key, index_digest
from unlearn_audit.learning.checkpoints import check_finite_weights, file_digest, load_checkpoint
from unlearn_audit.learning.data import Dataset, default_size, load_dataset
from unlearn_audit.learning.models import ModelError, make_model
from unlearn_audit.learning.train import fit, make_generator, resolve_device
from unlearn_audit.unlearners import Unlearner


@dataclass
class AuditInputs:
    """In-memory objects a Python caller can hand to :func:`unlearn_audit.run_audit`.

    Attributes:
        dataset: Use this dataset instead of loading ``[data]``.
        model_factory: Builds a freshly initialised model (reference, shadows, retrain);
            called with no argument under a seeded RNG. Overrides ``[model]``.
        original: Your trained original model (it is not trained by the tool).
        unlearned: Your unlearned models to judge, by name.
        methods: Unlearner instances to run and judge (e.g. your own subclass).
    """

    dataset: Dataset | None = None
    model_factory: Callable[[], nn.Module] | None = None
    original: nn.Module | None = None
    unlearned: dict[str, nn.Module] = field(default_factory=dict)
    methods: list[Unlearner] = field(default_factory=list)


def state_digest(model: nn.Module) -> str:
    """A hash of a model's weights (the cache key of a model handed in memory)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


class Producer:
    """Trains, unlearns and loads the models of one audit run."""

    def __init__(
        self, cfg: AuditConfig, inputs: AuditInputs, progress: bool, log: Callable[[str], None]
    ) -> None:
        self.cfg, self.inputs, self.progress, self.log = cfg, inputs, progress, log
        self.device = resolve_device(cfg.device)
        self.paradigm = make_paradigm(cfg)
        self.recipe = self.paradigm.recipe(cfg.train)  # what every model here trains with
        self.store: ModelStore | None = None
        self.seconds: dict[str, float] = {}
        self.executor = make_executor(  # where the model jobs run ([execution])
            cfg.execution, self.run_job, self.worker_state, progress, log
        )

    # -- data -------------------------------------------------------------------------
    def load(self) -> tuple[Dataset, Plan]:
        """Load the data and draw the plan (fails before any file is written)."""
        cfg = self.cfg
        self._check_inputs()
        ds = self.inputs.dataset or load_dataset(
            cfg.data.dataset, cfg.data.root or None, self._limit()
        )
        plan = make_plan(ds, cfg.forget.spec, cfg.seed, cfg.attack.shadows, cfg.data.members)
        _check_classes(ds, plan)
        self._adopt(ds)
        factory = self.inputs.model_factory
        arch = (
            f"{factory.__module__}.{factory.__qualname__}"
            if factory is not None
            else cfg.model.arch
        )
        self._preflight()
        self.base = {
            "data": ds.fingerprint(),
            "arch": arch,
            "kwargs": cfg.model.kwargs,
            "recipe": self.recipe.to_dict(),
            "outputs": self.paradigm.num_outputs(ds),
            "objective": repr(self.objective),
            "paradigm": self.paradigm.name,
            "version": __version__,
        }
        return ds, plan

    def _adopt(self, ds: Dataset) -> None:
        """Hold ``ds`` on the device, with the objective built for it."""
        self.ds, self.x, self.y = ds, ds.x.to(self.device), ds.y.to(self.device)
        self.labels = ds.y.numpy()
        self.objective = self.paradigm.objective(ds, self.recipe)

    def _limit(self) -> int | None:
        """``data.limit``; 0 = the dataset's default size when the audit trains its own
        original, else all of it (a model you bring was trained on ids of the whole set)."""
        cfg = self.cfg
        brought = bool(cfg.data.members or cfg.model.original) or self.inputs.original is not None
        return cfg.data.limit or (None if brought else default_size(cfg.data.dataset))

    def _check_inputs(self) -> None:
        """What the caller brings must fit together (checked before the data is loaded)."""
        brought = bool(self.cfg.model.original) or self.inputs.original is not None
        if (self.cfg.unlearn.checkpoints or self.inputs.unlearned) and not brought:
            raise ConfigError(
                "an unlearned checkpoint is judged against the original it was unlearned "
                "from: give --original (model.original) and --members (data.members)"
            )
        if brought and not self.cfg.data.members:
            raise ConfigError(
                "an original model you bring needs its training set: give --members "
                "file:PATH (data.members) with the ids it was trained on"
            )

    def _preflight(self) -> None:
        """Check the model factory and every checkpoint before anything is written."""
        from pathlib import Path

        self._check_forward(self.new_model(0))  # an architecture that does not fit the data
        paths = [self.cfg.model.original] if self.cfg.model.original else []
        for path in [*paths, *self.cfg.unlearn.checkpoints.values()]:
            load_checkpoint(self.new_model(0), Path(path))  # also refuses NaN/inf weights
        given = {"original": self.inputs.original} if self.inputs.original is not None else {}
        for name, model in {**given, **self.inputs.unlearned}.items():
            check_finite_weights(model.state_dict(), f"the in-memory model '{name}'")

    def _check_forward(self, model: nn.Module) -> None:
        """Run ``model`` once on two pool samples: it must map them to its output size."""
        factory = self.inputs.model_factory
        arch = self.cfg.model.arch
        if factory is not None:
            arch = getattr(factory, "__qualname__", repr(factory))
        want = (2, self.paradigm.num_outputs(self.ds))
        with torch.no_grad():
            try:
                out = model.eval()(self.x[:2])
            except Exception as exc:
                raise ModelError(
                    f"model '{arch}' cannot take this data's images of shape {self.ds.shape} "
                    f"({type(exc).__name__}: {exc}); choose another --model (mlp takes any size)"
                ) from None
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
            got = tuple(out.shape)[1:] if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError(
                f"model '{arch}' outputs {got} per sample; it must output ({want[1]},) "
                f"({self.paradigm.name} on {self.ds.name})"
            )

    def new_model(self, seed: int) -> nn.Module:
        factory = self.inputs.model_factory
        if factory is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = factory()
        else:
            model = make_model(
                self.cfg.model.arch,
                self.ds.shape,
                self.paradigm.num_outputs(self.ds),
                seed,
                **self.cfg.model.kwargs,
            )
        return model.to(self.device)

    @property
    def n_views(self) -> int:
        """Query views per sample (``attack.queries``; 0 = identity only without augmentation)."""
        return self.cfg.attack.queries or (5 if self.cfg.train.augment else 1)

    def signals_of(self, model: nn.Module) -> np.ndarray:
        """The paradigm's membership signal on every pool sample, ``(n, views)``."""
        return self.paradigm.signals(model, self.ds, self.x, self.n_views)

    @property
    def signal_key(self) -> str:
        """What the cached signals of a model depend on besides its weights."""
        return content_key(
            {
                "paradigm": self.paradigm.signal_settings(),
                "views": self.n_views,
                "version": __version__,
            }
        )

    def subset(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(x, y)`` of pool samples ``idx`` on the device (None when empty)."""
        if idx.size == 0:
            return None
        t = torch.as_tensor(idx, device=self.device)
        return self.x[t], self.y[t]

    def _store(self) -> ModelStore:
        if self.store is None:
            raise RuntimeError("Producer.store is set by run_audit after the plan is drawn")
        return self.store

    # -- models -----------------------------------------------------------------------
    def train_key(self, idx: np.ndarray, seed: int) -> str:
        """Cache key of a model trained from scratch on pool samples ``idx`` with ``seed``."""
        return content_key({**self.base, "role": "train", "idx": index_digest(idx), "seed": seed})

    def train_cached(
        self, label: str, idx: np.ndarray, seed: int, bar: bool
    ) -> tuple[nn.Module, dict[str, Any], np.ndarray, str]:
        """Train a fresh model on pool samples ``idx`` (or load it from the cache)."""
        key = self.train_key(idx, seed)
        if self.executor.remote and not self._store().has(label, key):
            self.executor.run([TrainJob(label, key, idx, seed)], label)  # into the store
        t_idx = torch.as_tensor(idx, device=self.device)

        def produce() -> tuple[nn.Module, dict[str, Any]]:
            t0 = time.perf_counter()
            model = fit(
                self.new_model(seed),
                self.x[t_idx],
                self.y[t_idx],
                self.objective.loss,
                self.recipe,
                make_generator(seed, self.device),
                progress=bar,
                desc=label,
            )
            return model, {"seconds": time.perf_counter() - t0}

        model, meta, sig, _ = cached(
            self._store(),
            label,
            key,
            self.new_model(seed),
            produce,
            self.signals_of,
            self.signal_key,
        )
        return model, meta, sig, key

    def original(self, plan: Plan) -> tuple[nn.Module, dict[str, Any], np.ndarray, str]:
        """The original model: the caller's (in memory or a checkpoint) or trained here."""
        given, path = self.inputs.original, self.cfg.model.original
        if given is not None:
            model = given.to(self.device).eval()
            return (
                model,
                {"seconds": 0.0, "source": "in-memory model"},
                self.signals_of(model),
                state_digest(model),
            )
        if path:
            from pathlib import Path

            model = load_checkpoint(self.new_model(0), Path(path)).eval()
            return (
                model,
                {"seconds": 0.0, "source": path},
                self.signals_of(model),
                file_digest(Path(path)),
            )
        seed = derive_seed(self.cfg.seed, "original")
        if self._store().has("original", self.train_key(plan.members, seed)):
            self.log("loading the original model (cached)")
        else:
            self.log("training the original model on the members")
        return self.train_cached("original", plan.members, seed, self.progress)

    def checkpoints(self) -> dict[str, tuple[nn.Module, dict[str, Any], np.ndarray]]:
        """The caller's unlearned models: in memory first, then ``unlearn.checkpoints``."""
        from pathlib import Path

        out = {}
        for name, model in self.inputs.unlearned.items():
            m = model.to(self.device).eval()
            out[name] = (m, {"seconds": 0.0, "source": "in-memory model"}, self.signals_of(m))
        for name, path in self.cfg.unlearn.checkpoints.items():
            m = load_checkpoint(self.new_model(0), Path(path)).eval()
            out[name] = (m, {"seconds": 0.0, "source": path}, self.signals_of(m))
        return out

    def unlearn_cached(
        self, method: Unlearner, original: nn.Module, orig_key: str, plan: Plan
    ) -> tuple[nn.Module | None, dict[str, Any], np.ndarray | None]:
        """Apply ``method`` to ``original``; a failure is returned as an ``error`` entry."""
        name = method.name
        seed = derive_seed(self.cfg.seed, "unlearn", name)
        key = content_key(
            {
                "original": orig_key,
                "method": name,
                "params": method.describe()["params"],
                "seed": seed,
            }
        )
        f, r = (torch.as_tensor(i, device=self.device) for i in (plan.forget, plan.retain))

        def produce() -> tuple[nn.Module, dict[str, Any]]:
            t0 = time.perf_counter()
            model = method.unlearn(
                original,
                (self.x[f], self.y[f]),
                (self.x[r], self.y[r]),
                objective=self.objective,
                recipe=self.recipe,
                generator=make_generator(seed, self.device),
                progress=self.progress,
                reference=self.subset(plan.public),
            )
            return model, {"seconds": time.perf_counter() - t0, "method": method.describe()}

        store = self._store()  # a job of the executor when the original is in the store
        remote = self.executor.remote and store.has("original", orig_key)
        remote = remote and not store.has(name, key)
        try:
            if remote:
                base = TrainJob(
                    "original", orig_key, plan.members, derive_seed(self.cfg.seed, "original")
                )
                job = UnlearnJob(
                    name, key, method, base, plan.forget, plan.retain, plan.public, seed
                )
                self.executor.run([job], name)
            model, meta, sig, hit = cached(
                self._store(),
                name,
                key,
                self.new_model(0),
                produce,
                self.signals_of,
                self.signal_key,
            )
        except Exception as exc:  # a method's failure is recorded, the audit goes on
            self.log(f"  {name}: FAILED ({type(exc).__name__}: {exc})")
            return None, {"seconds": 0.0, "error": f"{type(exc).__name__}: {exc}"}, None
        if not np.isfinite(sig).all():
            msg = "the unlearned model outputs non-finite values (diverged)"
            self.log(f"  {name}: FAILED ({msg})")
            return None, {"seconds": meta.get("seconds", 0.0), "error": msg}, None
        done = "cached" if hit and not remote else "{:.1f}s".format(meta["seconds"])
        self.log(f"  {name}: {done}")
        return model, {**meta, "key": key}, sig

    def shadows(self, plan: Plan) -> np.ndarray:
        """Signals of the shadow bank, ``(m, n, views)``; each trained on its keep row.

        ``attack.engine`` decides how the shadows not cached yet are trained: one by
        one (``fit``) or as batched ensembles (:func:`learning.ensemble.fit_ensemble`,
        the same models within float tolerance). Both cache each model under the key
        of :meth:`train_cached`, so the engines share a bank and growing it trains only
        the new models. Each shadow is a job of the executor (``[execution]``).
        """
        jobs = []
        for k in range(self.cfg.attack.shadows):
            idx, seed = np.flatnonzero(plan.keep[k]), derive_seed(self.cfg.seed, "shadow", k)
            jobs.append(TrainJob("shadow", self.train_key(idx, seed), idx, seed))
        return np.stack(self._signals(jobs, "shadow models", self._packs(jobs)))

    def _signals(
        self, jobs: Sequence[TrainJob | UnlearnJob], desc: str, packs: Sequence[PackJob] = ()
    ) -> list[np.ndarray]:
        """Each job's signals, in job order; ``packs`` train the batched engine's shadows.

        Locally the packs run first, then each job in turn (a finished one is loaded).
        A remote executor gets every job the store lacks at once, and the models are then
        loaded from the store: a finished job is never redone, whoever ran it.
        """
        if self.executor.remote:
            store = self._store()
            packed = {job.key for pack in packs for job in pack.jobs}
            todo: list[Job] = [*packs]
            todo += [j for j in jobs if j.key not in packed and not store.has(j.label, j.key)]
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
        if isinstance(job, TrainJob):
            return self.train_cached(job.label, job.idx, job.seed, bar=False)[2]
        return self._unlearn_job(job)

    @property
    def job_device(self) -> torch.device:
        """Where a job trains: this process's device, or a Ray worker's (GPU if it has one)."""
        if not self.executor.remote:
            return self.device
        return torch.device("cuda" if self.cfg.execution.gpus_per_job > 0 else "cpu")

    def _packs(self, jobs: Sequence[TrainJob]) -> list[PackJob]:
        """The uncached ``jobs`` in ensembles if the engine is batched (else none)."""
        from unlearn_audit.learning.ensemble import ENSEMBLE_SIZE, resolve_engine

        supported = self.paradigm.batched_trainable
        auto_ok = supported and self.inputs.model_factory is None
        device = self.job_device
        probe = auto_ok and device.type == "cuda" and self.cfg.attack.engine == "auto"
        size = sum(p.numel() for p in self.new_model(0).parameters()) if probe else 0
        engine = resolve_engine(self.cfg.attack.engine, device, batchable=auto_ok, n_params=size)
        if engine != "batched":
            return []
        if not supported:
            self.log("  attack.engine: batched trains cross-entropy models only; sequential here")
            return []
        store = self._store()
        todo = [job for job in jobs if not store.has(job.label, job.key)]
        step = ENSEMBLE_SIZE
        return [PackJob(tuple(todo[i : i + step])) for i in range(0, len(todo), step)]

    def _fit_pack(self, pack: PackJob) -> dict[str, np.ndarray]:
        """Train one ensemble of shadows with the batched engine, store each; their signals."""
        from unlearn_audit.learning.ensemble import fit_ensemble

        objective, jobs, store = self.objective, pack.jobs, self._store()
        if not self.paradigm.batched_trainable:
            raise TypeError("the batched engine trains cross-entropy models only")
        t0 = time.perf_counter()
        models = fit_ensemble(
            [self.new_model(job.seed) for job in jobs],
            self.x,
            self.y,
            [torch.as_tensor(job.idx, device=self.device) for job in jobs],
            self.recipe,
            [make_generator(job.seed, self.device) for job in jobs],
            augment=objective.augment,  # type: ignore[attr-defined]  # a CrossEntropy
            progress=self.progress,
            desc=f"{len(jobs)} shadows at once",
        )
        meta = {"seconds": (time.perf_counter() - t0) / len(jobs), "engine": "batched"}
        out = {}
        for job, model in zip(jobs, models, strict=True):
            out[job.key] = self.signals_of(model)
            store.save(
                job.label,
                job.key,
                model,
                {**meta, "ensemble": len(jobs), "signal_key": self.signal_key},
                out[job.key],
            )
        return out

    def unlearned_bank(self, method: Unlearner, plan: Plan) -> np.ndarray:
        """U-LiRA bank of ``method``: shadow ``k`` unlearns its request ``F_k``.

        ``F_k`` is ``IN_k ∩ forget`` padded with other samples of ``IN_k`` to the
        audited request's size and label counts (:func:`attacks.shadows.unlearning_request`).

        Returns the signals ``(m, n, views)`` of the unlearned shadows; each one is
        cached under a key of its shadow, the method, its parameters and ``F_k``, and is
        a job of the executor.

        Raises:
            Exception: whatever the method raises on a shadow (the caller records it).
        """
        params = method.describe()["params"]
        jobs = [self._ulira_job(method, params, plan, k) for k in range(self.cfg.attack.shadows)]
        return np.stack(self._signals(jobs, f"U-LiRA bank: {method.name}"))

    def _ulira_job(
        self, method: Unlearner, params: dict[str, Any], plan: Plan, k: int
    ) -> UnlearnJob:
        """Shadow ``k`` unlearns its request ``F_k`` with ``method`` (a job)."""
        keep_k = np.flatnonzero(plan.keep[k])
        forget_k = unlearning_request(
            keep_k,
            plan.forget,
            self.labels,
            np.random.default_rng(derive_seed(self.cfg.seed, "ulira-request", k)),
        )
        seed = derive_seed(self.cfg.seed, "shadow", k)
        shadow = TrainJob("shadow", self.train_key(keep_k, seed), keep_k, seed)
        useed = derive_seed(self.cfg.seed, "ulira", method.name, k)
        key = content_key(
            {
                "shadow": shadow.key,
                "method": method.name,
                "params": params,
                "forget": index_digest(forget_k),
                "seed": useed,
            }
        )
        retain_k = np.setdiff1d(keep_k, forget_k)
        public_k = np.setdiff1d(plan.public, keep_k)  # this shadow's own non-members
        label = f"ulira-{method.name}"
        return UnlearnJob(label, key, method, shadow, forget_k, retain_k, public_k, useed, k)

    def _unlearn_job(self, job: UnlearnJob) -> np.ndarray:
        """Run (or load) an unlearn job; its signals. A shadow that diverges raises."""
        f, r = (torch.as_tensor(i, device=self.device) for i in (job.forget, job.retain))
        base, target = job.base, job.index < 0

        def produce() -> tuple[nn.Module, dict[str, Any]]:
            model = self.train_cached(base.label, base.idx, base.seed, bar=False)[0]
            t0 = time.perf_counter()
            model = job.method.unlearn(
                model,
                (self.x[f], self.y[f]),
                (self.x[r], self.y[r]),
                objective=self.objective,
                recipe=self.recipe,
                generator=make_generator(job.seed, self.device),
                reference=self.subset(job.public),
            )
            meta: dict[str, Any] = {"seconds": time.perf_counter() - t0}
            if target:  # an audited model: results.json lists its parameters
                meta["method"] = job.method.describe()
            return model, meta

        _, _, sig, _ = cached(
            self._store(),
            job.label,
            job.key,
            self.new_model(0),
            produce,
            self.signals_of,
            self.signal_key,
        )
        if not target and not np.isfinite(sig).all():
            raise ValueError(f"shadow {job.index} diverged (non-finite outputs) after unlearning")
        return sig

    # -- the worker side of a remote executor ---------------------------------------------
    def worker_state(self) -> WorkerState:
        """What a Ray worker needs to run this audit's jobs (:meth:`for_worker`)."""
        ds = self.ds
        return WorkerState(
            token=uuid.uuid4().hex,
            cfg=self.cfg,
            model_factory=self.inputs.model_factory,
            dataset={"name": ds.name, "classes": tuple(ds.classes), "flippable": ds.flippable},
            x=ds.x.numpy(),
            y=ds.y.numpy(),
            base=self.base,
            store_root=str(self._store().root.resolve()),
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
        p = cls(cfg, AuditInputs(model_factory=state.model_factory), False, _worker_log)
        x, y = (torch.from_numpy(np.array(a)) for a in (state.x, state.y))  # writable copies
        p._adopt(Dataset(x=x, y=y, **state.dataset))
        p.base = state.base
        p.store = ModelStore(Path(state.store_root), log=p.log)
        return p


def _worker_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _check_classes(ds: Dataset, plan: Plan) -> None:
    """The audit trains classifiers on the members: the pool and they need 2 classes."""
    from unlearn_audit.audit.plan import PlanError

    labels = ds.y.numpy()
    for what, idx in (("the audited pool", np.arange(len(ds))), ("the members", plan.members)):
        present = np.unique(labels[idx])
        if present.size < 2:
            only = ds.classes[int(present[0])] if present.size else "none"
            raise PlanError(
                f"{ds.name}: every sample of {what} has class '{only}'; a classifier audit "
                "needs samples of at least 2 classes there (check y, data.limit and "
                "data.members)"
            )


def resolve_methods(cfg: AuditConfig, inputs: AuditInputs) -> list[Unlearner]:
    """The controls, then the configured methods, then the caller's instances."""
    methods = [unlearners.create("noop"), unlearners.create("retrain")]
    for spec in cfg.unlearn.methods:
        methods.append(unlearners.create(spec, **cfg.unlearn.params.get(spec, {})))
    methods.extend(inputs.methods)
    return methods
