"""Where the audit's model jobs run: in this process, or as Ray tasks.

Every model the audit trains or unlearns is a *job* named by its content key, the
key of the model store (:class:`audit.rundir.ModelStore`): a
:class:`audit.specs.ModelSpec` trains a model from scratch on pool samples, an
:class:`audit.specs.UnlearnSpec` applies a method to a model of the store, a
:class:`PackJob` trains several shadows at once with the batched engine. A job
reads the pool (shipped once per audit in a :class:`WorkerState`) and writes its
checkpoint and signals to the store, atomically; the driver then loads the model
from the store. A finished job is never redone,
whichever executor ran it, because both look in the same store first.

An :class:`Executor` has one method, ``run(jobs, desc) -> results`` (in job order):

- :class:`LocalExecutor` runs the jobs one after another in this process (the
  audit's behaviour before executors existed, bit for bit).
- :class:`RayExecutor` submits them as Ray tasks (``max_retries``: a job whose worker
  died is run again), reserves ``cpus_per_job`` / ``gpus_per_job`` per task, sets the
  worker's torch thread count to ``cpus_per_job`` and shows one progress bar over all
  the jobs of the audit. A job that raises stops its fan-out: the jobs after it are
  cancelled and the first failure in job order is raised, as the local loop would.

Seeds belong to jobs (:func:`audit.plan.derive_seed`), so both executors give the
same models when the torch thread counts agree (docs/performance.md, "Execution").
"""

from __future__ import annotations

import math
import os
import pickle
import socket
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from tqdm.auto import tqdm

from unlearn_audit.audit.config_types import ConfigError, ExecutionConfig
from unlearn_audit.audit.specs import ModelSpec, UnlearnSpec

if TYPE_CHECKING:
    from unlearn_audit.audit.config_types import AuditConfig

MAX_RETRIES = 3  # Ray re-runs a job whose worker process died this many times


@dataclass(frozen=True, eq=False)
class PackJob:
    """Train several shadows at once with the batched engine (one ensemble)."""

    jobs: tuple[ModelSpec, ...]

    @property
    def label(self) -> str:
        return self.jobs[0].label

    @property
    def key(self) -> str:
        return "+".join(j.key for j in self.jobs)


Job = ModelSpec | UnlearnSpec | PackJob


@dataclass(frozen=True)
class Receipt:
    """What a remote job sends back: the models are in the store, not in the reply."""

    key: str
    seconds: float
    host: str
    pid: int


@dataclass(frozen=True)
class Failure:
    """A job that raised: the exception itself, re-raised on the driver."""

    error: BaseException


@dataclass(frozen=True)
class WorkerState:
    """What a worker needs to re-create the audit's producer (sent once per audit).

    The pool travels as numpy arrays (Ray's object store shares them between the
    tasks of a node); ``base`` is the driver's cache-key base, so a worker computes
    the very keys the driver does. ``build`` makes the worker's producer from this
    state (:meth:`audit.production.Producer.for_worker`), so this module need not
    import the producer's.
    """

    build: Callable[[WorkerState], Any]
    token: str
    cfg: AuditConfig
    model_factory: Callable[[], Any] | None
    dataset: dict[str, Any]
    x: np.ndarray
    y: np.ndarray
    base: dict[str, Any]
    store_root: str
    threads: int = 1


class Executor(ABC):
    """Runs model jobs; ``run`` returns one result per job, in job order."""

    name: ClassVar[str]
    remote: ClassVar[bool]  # True: results are receipts, the models are in the store

    @abstractmethod
    def run(self, jobs: Sequence[Job], desc: str) -> list[Any]:
        """Run ``jobs`` (every one: the caller leaves out the finished ones if it wants)."""


class LocalExecutor(Executor):
    """One job after another in this process; ``runner`` does the work of one job."""

    name, remote = "local", False

    def __init__(self, runner: Callable[[Job], Any], progress: bool = False) -> None:
        self.runner, self.progress = runner, progress

    def run(self, jobs: Sequence[Job], desc: str) -> list[Any]:
        bar = tqdm(jobs, desc=desc, disable=not self.progress or not jobs, unit="model")
        out = [self.runner(job) for job in bar]
        bar.close()
        return out


def ray_module() -> Any:
    """The ``ray`` package, or a one-line :class:`ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "execution.executor = 'ray' needs Ray, which is not installed: "
            'pip install "unlearn-audit[ray]" (or use --executor local)'
        ) from None
    return ray


def threads_of(settings: ExecutionConfig) -> int:
    """Torch threads of a job: ``cpus_per_job`` rounded down, at least 1."""
    return max(1, math.floor(settings.cpus_per_job))


class RayExecutor(Executor):
    """Each job a Ray task; connects (or starts a local Ray) when it is built.

    Args:
        settings: ``[execution]``.
        state: Builds the :class:`WorkerState` (called once, at the first job).
        progress: Show the progress bar.
        log: Receives one line when connected.
    """

    name, remote = "ray", True

    def __init__(
        self,
        settings: ExecutionConfig,
        state: Callable[[], WorkerState],
        progress: bool,
        log: Callable[[str], None],
    ) -> None:
        self.ray = ray_module()
        self.settings, self._make_state, self.progress = settings, state, progress
        self._state_ref: Any = None
        self._total = self._done = 0  # over every fan-out of the audit: one progress count
        self._connect(log)
        opts = {"num_cpus": settings.cpus_per_job, "num_gpus": settings.gpus_per_job}
        self._task = self.ray.remote(execute).options(
            **opts, max_retries=MAX_RETRIES, retry_exceptions=False
        )
        self._warm_up(opts)

    def _warm_up(self, opts: dict[str, float]) -> None:
        """Start the workers (torch and the audit imported) while the driver loads the data."""
        res = self.ray.cluster_resources()
        slots = [res.get("CPU", 0) / opts["num_cpus"]]
        if opts["num_gpus"]:
            slots.append(res.get("GPU", 0) / opts["num_gpus"])
        n = max(1, min(64, int(min(slots))))
        warm = self.ray.remote(warm_up).options(**opts)
        self._warming = [warm.remote() for _ in range(n)]  # never awaited: a head start only

    def _connect(self, log: Callable[[str], None]) -> None:
        ray, address = self.ray, self.settings.address
        if ray.is_initialized():
            log("ray: using this process's Ray connection")
            return
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            hint = "start one with `ray start --head`, or use address = 'local'"
            msg = " ".join(str(exc).split())[:300]
            raise ConfigError(
                f"execution.address = '{address}': no Ray cluster to join ({msg}); {hint}"
            ) from None
        res = ray.cluster_resources()
        log(
            f"ray: cluster of {res.get('CPU', 0):g} CPUs and {res.get('GPU', 0):g} GPUs; "
            f"{self.settings.cpus_per_job:g} CPU and {self.settings.gpus_per_job:g} GPU per job"
        )

    def _state(self) -> Any:
        if self._state_ref is None:
            self._state_ref = self.ray.put(self._make_state())
        return self._state_ref

    def _progress(self, n: int, desc: str) -> Any:
        """The bar of all the audit's jobs so far (its total grows with every fan-out)."""
        self._total += n
        return tqdm(
            total=self._total,
            initial=self._done,
            desc="model jobs (ray)",
            postfix=desc,
            disable=not self.progress,
            unit="job",
        )

    def run(self, jobs: Sequence[Job], desc: str) -> list[Any]:
        if not jobs:
            return []
        ray, state = self.ray, self._state()
        bar = self._progress(len(jobs), desc)
        refs = [self._task.remote(state, job) for job in jobs]
        where = {ref: i for i, ref in enumerate(refs)}
        out: list[Any] = [None] * len(jobs)
        pending, failed = list(refs), None
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                i = where[done[0]]
                try:
                    result = ray.get(done[0])
                except ray.exceptions.TaskCancelledError:
                    continue
                except ray.exceptions.RayError as exc:  # e.g. the worker died MAX_RETRIES + 1 times
                    result = Failure(RuntimeError(f"{desc}: job {i} failed in Ray ({exc})"))
                bar.update(1)
                self._done += 1
                out[i] = result
                if isinstance(result, Failure) and (failed is None or i < failed):
                    failed = i  # the jobs after it are not needed: the fan-out stops here
                    for ref in pending:
                        if where[ref] > i:
                            ray.cancel(ref)
                    pending = [ref for ref in pending if where[ref] < i]
        except BaseException:  # Ctrl-C: finished jobs are in the store, the rest is dropped
            for ref in pending:
                ray.cancel(ref)
            raise
        finally:
            bar.close()
            self._total = self._done  # what was cancelled is not counted as to come
        if failed is not None:
            raise out[failed].error
        return out


def make_executor(
    settings: ExecutionConfig,
    runner: Callable[[Job], Any],
    state: Callable[[], WorkerState],
    progress: bool,
    log: Callable[[str], None],
) -> Executor:
    """The executor ``[execution]`` asks for (:class:`ConfigError` when Ray is missing)."""
    if settings.executor == "ray":
        return RayExecutor(settings, state, progress, log)
    return LocalExecutor(runner, progress)


# -- the worker side ----------------------------------------------------------------------
_PRODUCERS: dict[str, Any] = {}  # this worker process's producer, by audit token


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (the driver re-raises it), else its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def warm_up() -> None:
    """Import what a job needs, so the first job of a worker does not wait for it."""
    import torch  # noqa: F401

    import unlearn_audit.learning.models  # noqa: F401
    import unlearn_audit.unlearners  # noqa: F401


def execute(state: WorkerState, job: Job) -> Receipt | Failure:
    """Run one job in a Ray worker: re-create the producer (once per audit) and run it."""
    import torch

    torch.set_num_threads(state.threads)
    producer = _PRODUCERS.get(state.token)
    if producer is None:
        _PRODUCERS.clear()  # one audit at a time per worker process
        producer = _PRODUCERS[state.token] = state.build(state)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():  # the job's index arrays are read-only views of
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            producer.run_job(job)  # the object store; they are only ever read
    except Exception as exc:  # the method's or the model's: the driver decides what it means
        return Failure(_portable(exc))
    return Receipt(job.key, time.perf_counter() - t0, socket.gethostname(), os.getpid())
