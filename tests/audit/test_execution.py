"""Executors (audit/execution.py): `ray` gives the models `local` gives, survives a dead
worker, and shares the run directory's store with `local` both ways.

The Ray tests start one local Ray cluster of 2 CPUs for the module. Float results depend
on the torch thread count, so every audit here runs with one torch thread: the local ones
in this process (``one_thread``), the Ray jobs in their workers (``cpus_per_job = 1``).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import unlearn_audit.audit.production as production
import unlearn_audit.unlearners.tuning as tuning
from unlearn_audit import run_audit
from unlearn_audit.audit import execution
from unlearn_audit.audit.config import ConfigError, from_dict
from unlearn_audit.audit.inputs import AuditInputs
from unlearn_audit.audit.specs import ModelSpec
from unlearn_audit.cli import main
from unlearn_audit.unlearners.basic import Finetune

TINY = {
    "data": {"limit": 240},
    "train": {"epochs": 4},
    "attack": {"shadows": 4, "ulira": True},
    "unlearn": {"methods": ["finetune"]},
    "verdict": {"n_boot": 200},
}
RAY = {**TINY, "execution": {"executor": "ray", "cpus_per_job": 1.0}}
QUIET = {"progress": False, "log": lambda m: None, "render_report": False}


def _stable(results):
    """results.json without what differs between any two runs (times, provenance)."""
    out = json.loads(json.dumps(results))
    for key in ("run", "timings"):
        out.pop(key)
    out["config"].pop("execution")
    for model in out["models"].values():
        model.pop("seconds")
    return out


def _store(run: Path) -> dict[str, int]:
    """Every finished model of a run: its metadata file and when it was written."""
    return {p.name: p.stat().st_mtime_ns for p in (run / "models").glob("*.json")}


@pytest.fixture(scope="module")
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_results(threads, tmp_path_factory):
    """The reference: the tiny audit under `local`, one torch thread."""
    run = tmp_path_factory.mktemp("local") / "run"
    return _stable(run_audit(from_dict(TINY), run, **QUIET).results)


class DyingFinetune(Finetune):
    """`finetune` whose first call kills its worker process (marker file absent)."""

    def __init__(self, marker: str, **params):
        super().__init__(**params)
        self.marker = marker

    def unlearn(self, *args, **kwargs):
        marker = Path(self.marker)
        with marker.with_suffix(".calls").open("a") as fh:
            fh.write(f"{os.getpid()}\n")
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)  # the worker dies mid-job, as a killed or crashed process would
        return super().unlearn(*args, **kwargs)


@pytest.mark.slow
def test_ray_gives_the_results_of_local(ray_cluster, local_results, tmp_path):
    res = run_audit(from_dict(RAY), tmp_path / "run", **QUIET)
    assert _stable(res.results) == local_results
    assert len(_store(tmp_path / "run")) == 6 + 4 + 3 * 4  # 6 targets, 4 shadows, 3 banks


@pytest.mark.slow
def test_a_job_whose_worker_dies_is_retried(ray_cluster, local_results, tmp_path):
    marker = tmp_path / "died"
    cfg = from_dict({**RAY, "unlearn": {"methods": []}})
    inputs = AuditInputs(methods=[DyingFinetune(str(marker))])
    res = run_audit(cfg, tmp_path / "run", inputs=inputs, **QUIET)
    assert int(marker.read_text()) != os.getpid()  # it died in a worker, not here
    calls = marker.with_suffix(".calls").read_text().split()
    assert len(calls) == 1 + 4 + 1  # the audited model, its bank of 4, and the retry
    got, want = _stable(res.results), json.loads(json.dumps(local_results))
    assert got["config"].pop("unlearn")["methods"] == []  # finetune came as an instance
    want["config"].pop("unlearn")
    assert got == want


def _interrupt_at(text):
    def log(msg):
        if msg.startswith(text):
            raise KeyboardInterrupt

    return log


def _spy(monkeypatch):
    """The jobs each call of RayExecutor.run receives: ``[(desc, [label, ...])]``."""
    calls = []
    real = execution.RayExecutor.run

    def run(self, jobs, desc):
        calls.append((desc, [job.label for job in jobs]))
        return real(self, jobs, desc)

    monkeypatch.setattr(execution.RayExecutor, "run", run)
    return calls


@pytest.mark.slow
def test_interrupted_under_ray_resumes_under_local(
    ray_cluster, local_results, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    opts = {**QUIET, "log": _interrupt_at("U-LiRA: finetune")}
    with pytest.raises(KeyboardInterrupt):
        run_audit(from_dict(RAY), run, **opts)
    assert not (run / "results.json").exists()
    finished = _store(run)
    assert len(finished) == 6 + 4 + 2 * 4  # targets, shadows, the noop and retrain banks
    fits = []
    real = production.fit

    def counting(*args, **kwargs):
        fits.append(kwargs.get("desc"))
        return real(*args, **kwargs)

    monkeypatch.setattr(production, "fit", counting)
    monkeypatch.setattr(tuning, "fit", counting)  # retrain and the fine-tuning methods
    res = run_audit(from_dict(TINY), run, **QUIET)
    assert not {"original", "reference", "planted", "shadow"} & set(fits)  # trained nothing
    after = _store(run)
    assert {k: after[k] for k in finished} == finished  # nothing finished was redone
    assert sorted(set(after) - set(finished)) == sorted(
        k for k in after if k.startswith("ulira-finetune-")
    )
    assert len(after) - len(finished) == 4
    assert _stable(res.results) == local_results


@pytest.mark.slow
def test_interrupted_under_local_resumes_under_ray(
    ray_cluster, local_results, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    real = production.fit
    shadows = []

    def dying(*args, **kwargs):
        if kwargs.get("desc") == "shadow":
            if len(shadows) == 2:  # dies in the 3rd shadow
                raise KeyboardInterrupt
            shadows.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(production, "fit", dying)
    with pytest.raises(KeyboardInterrupt):
        run_audit(from_dict(TINY), run, **QUIET)
    monkeypatch.setattr(production, "fit", real)
    finished = _store(run)
    assert sum(k.startswith("shadow-") for k in finished) == 2
    calls = _spy(monkeypatch)
    res = run_audit(from_dict(RAY), run, **QUIET)
    assert calls[0] == ("shadow models", ["shadow", "shadow"])  # only the 2 missing ones
    assert all(not desc.startswith(("original", "reference")) for desc, _ in calls)
    after = _store(run)
    assert {k: after[k] for k in finished} == finished
    assert _stable(res.results) == local_results


@pytest.mark.slow
def test_batched_shadows_go_to_ray_as_packs(ray_cluster, threads, tmp_path, monkeypatch):
    table = {
        **TINY,
        "attack": {"shadows": 4, "ulira": False, "engine": "batched"},
        "unlearn": {"methods": []},
        "verdict": {"n_boot": 200, "planted_fraction": 0.0},
    }
    run_audit(from_dict(table), tmp_path / "local", **QUIET)
    calls = _spy(monkeypatch)
    run_audit(from_dict({**table, "execution": RAY["execution"]}), tmp_path / "ray", **QUIET)
    assert ("shadow models", ["shadow"]) in calls  # one pack of the 4 shadows
    a, b = (np.load(tmp_path / run / "signals.npz") for run in ("local", "ray"))
    assert np.array_equal(a["signals"], b["signals"])
    meta = [json.loads(p.read_text()) for p in (tmp_path / "ray" / "models").glob("shadow-*.json")]
    assert [m.get("ensemble") for m in meta if "ensemble" in m] == [4] * 4


# -- configuration and a missing Ray ---------------------------------------------------------
@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"executor": "dask"}, "execution.executor .*'local' or 'ray', got 'dask'"),
        ({"address": " "}, "execution.address must be"),
        ({"gpus_per_job": -0.5}, "execution.gpus_per_job must be >= 0"),
        ({"cpus_per_job": 0}, "execution.cpus_per_job must be > 0"),
        ({"gpus_per_job": 1.5}, "gpus_per_job above 1 must be a whole number"),
        ({"cpus_per_job": "two"}, "execution.cpus_per_job' must be a number"),
        ({"workers": 2}, "unknown config key 'execution.workers'"),
    ],
)
def test_invalid_execution_values_name_the_key(table, match):
    with pytest.raises(ConfigError, match=match):
        from_dict({"execution": table})


def test_ray_jobs_on_a_gpu_device_must_reserve_gpus():
    with pytest.raises(ConfigError, match="needs execution.gpus_per_job > 0"):
        from_dict({"device": "cuda", "execution": {"executor": "ray"}})
    with pytest.raises(ConfigError, match="reserves GPUs that device = 'cpu' does not use"):
        from_dict({"device": "cpu", "execution": {"executor": "ray", "gpus_per_job": 0.25}})
    cfg = from_dict({"device": "cuda", "execution": {"executor": "ray", "gpus_per_job": 0.25}})
    assert cfg.execution.gpus_per_job == 0.25
    assert execution.threads_of(from_dict({"execution": {"cpus_per_job": 2.0}}).execution) == 2
    assert execution.threads_of(from_dict({"execution": {"cpus_per_job": 0.5}}).execution) == 1


def test_asking_for_ray_without_ray_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    with pytest.raises(ConfigError, match=r'needs Ray.*pip install "unlearn-audit\[ray\]"'):
        run_audit(from_dict(RAY), tmp_path / "lib", **QUIET)
    assert not (tmp_path / "lib").exists()  # failed before any file was written
    out = tmp_path / "cli"
    args = ["audit", "--out", str(out), "--executor", "ray", "--limit", "200", "--quiet"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: execution.executor = 'ray' needs Ray")
    assert not out.exists()


def test_no_cluster_at_the_address_is_one_line(monkeypatch):
    class NoCluster:
        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(**kwargs):
            raise ConnectionError("Could not find any running Ray instance")

    monkeypatch.setitem(sys.modules, "ray", NoCluster)
    cfg = from_dict({"execution": {"executor": "ray", "address": "auto"}}).execution
    with pytest.raises(ConfigError, match="address = 'auto': no Ray cluster to join .*ray start"):
        execution.RayExecutor(cfg, lambda: None, progress=False, log=lambda m: None)


def test_the_local_executor_runs_jobs_in_order_in_this_process():
    seen = []
    ex = execution.make_executor(
        from_dict({}).execution, lambda job: seen.append(job) or len(seen), None, False, print
    )
    jobs = [ModelSpec("shadow", str(k), torch.arange(3).numpy(), k) for k in range(3)]
    assert not ex.remote and ex.run(jobs, "x") == [1, 2, 3] and seen == jobs
