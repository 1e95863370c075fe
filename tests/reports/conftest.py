"""Fixtures that fabricate realistic run directories for the report tests.

``base_results`` is shaped like a schema_version 1 run; ``full_results`` adds the
sections other issues will fill (``forgetting``, ``retain_leakage``); ``v2_results`` is
``full_results`` as schema_version 2 writes it (residual estimates, per-record evidence,
the power block and the planted control). ``write_samples`` writes ``samples.csv``
(optionally with every per-sample column of the contract), ``add_record_columns`` adds
schema 2's ``pvalue.<model>``, ``recognisable.<model>`` and ``planted`` columns, and
``write_images`` writes ``signals.npz`` with the forget samples' images.
"""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

MODELS = ["original", "reference", "noop", "retrain", "finetune", "gradient_ascent"]
METHODS = ["finetune"]  # gradient_ascent failed in the fabricated run
# How far forget-set scores sit above non-member scores (in standard deviations).
SEPARATION = {"original": 2.5, "reference": 0.0, "noop": 2.5, "retrain": 0.0, "finetune": 0.6}
N_FORGET, N_RETAIN, N_NONMEMBER = 40, 80, 80


def _utility(forget: float, retain: float, test: float) -> dict[str, float]:
    return {"forget_acc": forget, "retain_acc": retain, "test_acc": test}


def _attack(auc: float, lo: float, hi: float) -> dict[str, Any]:
    block = {"auc": auc, "auc_ci": [lo, hi], "tpr_at_fpr": {"0.001": 0.02, "0.01": 0.09}}
    return {"forget_vs_nonmember": block, "retain_vs_nonmember": dict(block, auc_ci=None)}


def _evidence(auc: float, diff: float, lo: float, hi: float, **extra: Any) -> dict[str, Any]:
    return {
        "attack": "lira_online",
        "auc": auc,
        "reference_auc": 0.5,
        "auc_diff": diff,
        "ci": [lo, hi],
        "level": 0.95,
        "test_acc_gap": -0.009,
        "membership_ok": lo <= 0 <= hi,
        "utility_ok": True,
        **extra,
    }


def base_results() -> dict[str, Any]:
    """A results.json payload shaped like the pipeline's (schema_version 1)."""
    return {
        "schema_version": 1,
        "tool": {"name": "unlearn-audit", "version": "0.1.0"},
        "run": {
            "name": "demo",
            "created": "2026-11-30T08:00:00+00:00",
            "command": "unlearn-audit audit --out runs/demo",
            "device": "cpu",
            "seed": 0,
            "python": "3.11.7",
            "torch": "2.5.1",
            "numpy": "2.1.3",
        },
        "config": {
            "seed": 0,
            "data": {"dataset": "digits", "root": None},
            "model": {"arch": "mlp"},
            "train": {"epochs": 40},
            "attack": {"shadows": 16, "queries": 5},
            "verdict": {"attack": "lira_online", "level": 0.95},
        },
        "data": {
            "dataset": "digits",
            "n_pool": 1797,
            "n_members": 898,
            "n_forget": 89,
            "n_retain": 809,
            "n_nonmembers": 899,
            "forget_spec": "random:0.1",
            "classes": [str(i) for i in range(10)],
        },
        "models": {
            "original": {
                "role": "original",
                "utility": _utility(1.0, 1.0, 0.95),
                "seconds": 3.1,
                "checkpoint": "models/original-0123456789abcdef0123.pt",
            },
            "reference": {
                "role": "reference",
                "utility": _utility(0.94, 1.0, 0.95),
                "seconds": 2.9,
                "checkpoint": "models/reference-fedcba98765432100000.pt",
            },
            "noop": {"role": "control", "utility": _utility(1.0, 1.0, 0.95), "seconds": 0.0},
            "retrain": {"role": "control", "utility": _utility(0.93, 1.0, 0.948), "seconds": 2.8},
            "finetune": {
                "role": "unlearner",
                "utility": _utility(0.97, 0.99, 0.941),
                "seconds": 0.4,
                "params": {"epochs": 3, "lr": 0.01},
            },
            "gradient_ascent": {
                "role": "unlearner",
                "utility": None,
                "seconds": 0.1,
                "error": "diverged: loss became NaN at step 12",
            },
        },
        "attacks": {
            "original": {"lira_online": _attack(0.71, 0.65, 0.77)},
            "reference": {"lira_online": _attack(0.50, 0.44, 0.56)},
            "noop": {"lira_online": _attack(0.71, 0.65, 0.77), "loss": _attack(0.6, 0.55, 0.65)},
            "retrain": {"lira_online": _attack(0.51, 0.45, 0.57)},
            "finetune": {"lira_online": _attack(0.58, 0.52, 0.64)},
        },
        "forgetting": {},
        "verdicts": {
            "noop": {
                "status": "fail",
                "reasons": ["forget-set membership evidence exceeds the retrained reference"],
                "evidence": _evidence(0.71, 0.21, 0.15, 0.27),
            },
            "retrain": {
                "status": "pass",
                "reasons": ["indistinguishable from the reference"],
                "evidence": _evidence(0.51, 0.01, -0.05, 0.07),
            },
            "finetune": {
                "status": "pass",
                "reasons": ["membership evidence indistinguishable from the retrained reference"],
                "evidence": _evidence(0.58, 0.03, -0.02, 0.08),
            },
            "gradient_ascent": {
                "status": "fail",
                "reasons": ["the method failed: diverged: loss became NaN at step 12"],
                "evidence": {"attack": "lira_online"},
            },
        },
        "controls": {
            "separated": True,
            "reasons": ["noop control failed as it must", "retrain control passed as it must"],
        },
        "report": {"roc_attack": "lira_online"},
        "timings": {"total_seconds": 60.0, "targets": 9.1, "shadows": 40.2},
        "some_future_key": {"ignored": True},
    }


def full_results() -> dict[str, Any]:
    """``base_results`` plus every optional section of the contract."""
    results = base_results()
    results["forgetting"] = {"finetune": {"forget_quality": 0.0123, "epsilon_median": 1.5}}
    results["retain_leakage"] = {
        "finetune": {
            "auc_before": 0.61,
            "auc_after": 0.66,
            "diff": 0.05,
            "ci": [0.02, 0.08],
            "increased": True,
        }
    }
    return results


# Schema 2: the forget records (pool indices; forget rows are 0..N_FORGET-1) each judged
# model still has recognisable, and the ones the planted control was trained on.
RECOGNISABLE = {
    "finetune": [17, 3],
    "noop": list(range(30)),
    "retrain": [],
    "planted": [0, 2, 4, 6, 9],
}
PLANTED_ROWS = list(range(0, N_FORGET, 2))
STATEMENT = (
    "This audit would catch a model that still remembers at least 40% of the deleted "
    "records (in 80% of audits); it could not reliably see less."
)
V2_ORDER = [
    "headline",
    "summary",
    "verdict",
    "records",
    "utility",
    "attacks",
    "signal",
    "forgetting",
    "retain-leakage",
    "difficulty",
    "samples",
    "provenance",
]


def residual(
    value: float | None, lo: float | None, hi: float | None, attack: str = "lira_online"
) -> dict[str, Any]:
    """An ``evidence.residual`` block with the default margin of 0.3."""
    return {
        "attack": attack,
        "value": value,
        "ci": [lo, hi],
        "level": 0.95,
        "max_residual": 0.3,
        "below_margin": hi is not None and hi < 0.3,
    }


def _records(model: str) -> dict[str, Any]:
    found = RECOGNISABLE[model]
    return {
        "attack": "lira_offline",
        "fdr": 0.1,
        "n_forget": N_FORGET,
        "n_recognisable": len(found),
        "recognisable": found,
    }


def v2_results() -> dict[str, Any]:
    """``full_results`` as schema_version 2 writes it (finetune passes, planted fails)."""
    results = full_results()
    results["schema_version"] = 2
    data = results["data"]
    data["n_forget"] = N_FORGET  # a consistent data block: the readers check samples.csv by it
    data["n_members"] = N_FORGET + data["n_retain"]
    data["n_pool"] = data["n_members"] + data["n_nonmembers"]
    results["config"]["verdict"].update(
        max_residual=0.3, fdr=0.1, record_attack="lira_offline", planted_fraction=0.5
    )
    results["models"]["planted"] = {
        "role": "control",
        "utility": _utility(0.97, 1.0, 0.951),
        "seconds": 2.7,
        "checkpoint": "models/planted-00112233445566778899.pt",
    }
    results["attacks"]["planted"] = {"lira_online": _attack(0.6, 0.54, 0.66)}
    verdicts = results["verdicts"]
    verdicts["planted"] = {
        "status": "fail",
        "reasons": [
            "residual membership: the forget set is more recognisable than under the "
            "retrained reference"
        ],
        "evidence": _evidence(0.6, 0.1, 0.04, 0.16, planted_fraction=0.5),
    }
    blocks = {
        "noop": residual(1.0, 1.0, 1.0),
        "retrain": residual(0.02, -0.21, 0.18),
        "finetune": residual(0.05, -0.08, 0.12),
        "planted": residual(0.52, 0.31, 0.74),
    }
    for model, block in blocks.items():
        evidence = verdicts[model]["evidence"]
        evidence["residual"] = block
        evidence["records"] = _records(model)
        evidence["per_attack"] = {
            "lira_online": {
                "auc": evidence["auc"],
                "reference_auc": 0.5,
                "original_auc": 0.71,
                "auc_diff": evidence["auc_diff"],
                "ci": evidence["ci"],
                "residual": block["value"],
                "residual_ci": block["ci"],
            },
            "rmia_online": {
                "auc_diff": 0.01,
                "ci": [-0.03, 0.05],
                "original_auc": 0.7,
                "residual": 0.04,
                "residual_ci": [-0.1, 0.1],
            },
        }
    results["controls"]["reasons"].append(
        "planted control (retrained with 50% of the request kept) was caught, as it must"
    )
    results["power"] = {
        "mdr": 0.4,
        "statement": STATEMENT,
        "power": 0.8,
        "n_sim": 100,
        "curve": {"0.1": 0.31, "0.2": 0.52, "0.3": 0.7, "0.4": 0.85},
        "planted": {
            "fraction": 0.5,
            "n_planted": len(PLANTED_ROWS),
            "status": "fail",
            "residual": blocks["planted"],
        },
    }
    return results


def add_record_columns(run_dir: Path, results: dict[str, Any]) -> None:
    """Adds ``pvalue.<model>``, ``recognisable.<model>`` and ``planted`` to samples.csv.

    The recognisable records get p-values ``0.001 * (k + 1)`` in the order of their
    ``recognisable`` list; the others ``0.2 + 0.01 * index``. Non-forget rows are blank.
    """
    path = run_dir / "samples.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    models = [m for m, v in results["verdicts"].items() if "records" in v.get("evidence", {})]
    for row in rows:
        pool = int(row["index"])
        forget = row["split"] == "forget"
        for model in models:
            found = results["verdicts"][model]["evidence"]["records"]["recognisable"]
            p = 0.001 * (found.index(pool) + 1) if pool in found else 0.2 + 0.01 * pool
            row[f"pvalue.{model}"] = f"{p:.6g}" if forget else ""
            row[f"recognisable.{model}"] = str(int(pool in found)) if forget else ""
        row["planted"] = str(int(pool in PLANTED_ROWS)) if forget else ""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def unseparated(results: dict[str, Any]) -> dict[str, Any]:
    """The same run as the pipeline writes it when the noop control was not caught."""
    results["controls"] = {
        "separated": False,
        "reasons": ["noop control was not caught: more shadow models would give power"],
    }
    noop = results["verdicts"]["noop"]
    noop["evidence"]["membership_ok"] = True
    for verdict in results["verdicts"].values():
        verdict["evidence"]["raw_status"] = verdict["status"]
        verdict["status"] = "inconclusive"
    noop["evidence"]["raw_status"] = "pass"
    return results


def write_samples(
    run_dir: Path,
    models: list[str],
    seed: int = 0,
    full: bool = False,
    data: dict[str, Any] | None = None,
) -> None:
    """Writes samples.csv; SEPARATION sets how far forget scores sit above non-members.

    The split sizes are ``data``'s (results.json's ``data`` block: ``n_forget``,
    ``n_retain``, ``n_nonmembers``), so the file agrees with the results (the readers
    check it), else N_FORGET, N_RETAIN and N_NONMEMBER.

    With ``full`` every optional per-sample column of the contract is added: ``signal``,
    ``epsilon``, ``ulira`` and ``residual`` per model, ``difficulty``, ``difficulty_rank``,
    ``feature.*`` and ``flags``.
    """
    rng = np.random.default_rng(seed)
    data = data or {}
    n_forget = data.get("n_forget", N_FORGET)
    n_retain, n_non = data.get("n_retain", N_RETAIN), data.get("n_nonmembers", N_NONMEMBER)
    splits = ["forget"] * n_forget + ["retain"] * n_retain + ["nonmember"] * n_non
    n = len(splits)
    columns: dict[str, np.ndarray] = {}
    for model in models:
        shift = SEPARATION.get(model, 0.0)
        columns[f"signal.{model}"] = rng.normal(size=n) + shift
        scores = rng.normal(size=n)
        scores[:n_forget] += shift
        columns[f"lira_online.{model}"] = scores
    columns["loss.noop"] = rng.normal(size=n)
    if not full:
        columns = {k: v for k, v in columns.items() if not k.startswith("signal.")}
    flags = [""] * n
    if full:
        difficulty = rng.uniform(size=n)
        for model in METHODS:
            columns[f"epsilon.{model}"] = np.abs(rng.normal(size=n))
            columns[f"ulira.{model}"] = rng.normal(size=n)
            columns[f"residual.{model}"] = difficulty + rng.normal(scale=0.2, size=n)
        columns["difficulty"] = difficulty
        rank = np.full(n, np.nan)
        rank[:n_forget] = np.argsort(np.argsort(-difficulty[:n_forget])) + 1
        columns["difficulty_rank"] = rank
        columns["feature.loss"] = rng.exponential(size=n)
        columns["feature.margin"] = rng.normal(size=n)
        flags[int(np.nanargmin(rank))] = "infeasible at budget; rare class"
    with (run_dir / "samples.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "id", "label", "split", *columns, "flags", "unrelated"])
        for i, split in enumerate(splits):
            values = ["" if np.isnan(columns[c][i]) else f"{columns[c][i]:.6g}" for c in columns]
            writer.writerow([i, i, i % 10, split, *values, flags[i], "x"])


def write_images(run_dir: Path, seed: int = 0) -> np.ndarray:
    """Writes signals.npz with ``forget_images`` (k, 1, 8, 8) and ``forget_index`` (k,).

    ``k`` is the run's forget count (``data.n_forget`` of its results.json, else N_FORGET).
    """
    rng = np.random.default_rng(seed)
    results = run_dir / "results.json"
    data = json.loads(results.read_text()).get("data", {}) if results.is_file() else {}
    k = data.get("n_forget", N_FORGET)
    images = rng.uniform(size=(k, 1, 8, 8)).astype(np.float32)
    np.savez(
        run_dir / "signals.npz",
        forget_images=images,
        forget_index=np.arange(k, dtype=np.int64),
        signals=np.zeros((2, 3), dtype=np.float32),
    )
    return images


RunFactory = Callable[..., Path]


@pytest.fixture
def make_run(tmp_path: Path) -> RunFactory:
    """Factory: ``make_run(results=None, samples=True, full=False, name="run")``.

    ``full`` writes every optional section: full results, all per-sample columns and
    the forget images.
    """

    def factory(
        results: dict[str, Any] | None = None,
        samples: bool = True,
        full: bool = False,
        name: str = "run",
    ) -> Path:
        """Writes the run; schema 2 results get their record columns in samples.csv."""
        run_dir = tmp_path / name
        run_dir.mkdir()
        if results is None:
            results = full_results() if full else base_results()
        payload = copy.deepcopy(results)
        (run_dir / "results.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
        if samples:
            models = payload.get("models", {})
            names = [m for m, e in models.items() if not e.get("error")]
            write_samples(run_dir, names, full=full, data=payload.get("data"))
            if payload.get("schema_version") == 2:
                add_record_columns(run_dir, payload)
        if full:
            write_images(run_dir)
        return run_dir

    return factory


def _rendered(run_dir: Path, full: bool, v2: bool = False) -> tuple[Path, str]:
    from unlearn_audit.reports import render

    results = v2_results() if v2 else full_results() if full else base_results()
    (run_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    names = [m for m, e in results["models"].items() if not e.get("error")]
    write_samples(run_dir, names, full=full, data=results["data"])
    if v2:
        add_record_columns(run_dir, results)
    if full:
        write_images(run_dir)
    return run_dir, render(run_dir).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def base_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Today's pipeline output (``base_results``) rendered once: ``(run_dir, html)``.

    Read-only: tests that change the run use ``make_run``.
    """
    return _rendered(tmp_path_factory.mktemp("base"), full=False)


@pytest.fixture(scope="session")
def v2_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A schema_version 2 run with every section rendered once: ``(run_dir, html)``."""
    return _rendered(tmp_path_factory.mktemp("v2"), full=True, v2=True)


@pytest.fixture(scope="session")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A run with every optional section rendered once: ``(run_dir, html)`` (read-only)."""
    return _rendered(tmp_path_factory.mktemp("full"), full=True)
