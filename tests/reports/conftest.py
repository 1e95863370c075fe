"""Fixtures that fabricate realistic run directories for the report tests."""

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
# How far forget-set scores sit above non-member scores (in standard deviations).
SEPARATION = {"original": 2.5, "reference": 0.0, "noop": 2.5, "retrain": 0.0, "finetune": 0.6}


def _utility(forget: float, retain: float, test: float) -> dict[str, float]:
    return {"forget_acc": forget, "retain_acc": retain, "test_acc": test}


def _attack(auc: float, lo: float, hi: float) -> dict[str, Any]:
    block = {"auc": auc, "auc_ci": [lo, hi], "tpr_at_fpr": {"0.001": 0.02, "0.01": 0.09}}
    return {"forget_vs_nonmember": block, "retain_vs_nonmember": dict(block, auc_ci=None)}


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
        },
        "config": {"data": {"dataset": "digits", "root": None}, "model": {"arch": "mlp"}},
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
            "original": {"role": "original", "utility": _utility(1.0, 1.0, 0.95), "seconds": 3.1},
            "reference": {
                "role": "reference",
                "utility": _utility(0.94, 1.0, 0.95),
                "seconds": 2.9,
            },
            "noop": {"role": "control", "utility": _utility(1.0, 1.0, 0.95), "seconds": 0.0},
            "retrain": {"role": "control", "utility": _utility(0.93, 1.0, 0.948), "seconds": 2.8},
            "finetune": {
                "role": "unlearner",
                "utility": _utility(0.97, 0.99, 0.941),
                "seconds": 0.4,
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
        "forgetting": {"finetune": {"forget_quality": 0.0123, "epsilon_median": 1.5}},
        "verdicts": {
            "noop": {
                "status": "fail",
                "reasons": ["forget-set membership evidence exceeds the retrained reference"],
                "evidence": {"attack": "lira_online", "auc": 0.71},
            },
            "retrain": {"status": "pass", "reasons": ["indistinguishable from the reference"]},
            "finetune": {"status": "inconclusive", "reasons": ["the interval includes zero"]},
        },
        "controls": {
            "separated": True,
            "reasons": ["noop control failed as it must", "retrain control passed as it must"],
        },
        "timings": {"total_seconds": 60.0, "train_original": 3.1, "shadows": 40.2},
        "some_future_key": {"ignored": True},
    }


def write_samples(run_dir: Path, models: list[str], seed: int = 0) -> None:
    """Writes samples.csv with scores where SEPARATION sets forget-vs-nonmember overlap."""
    rng = np.random.default_rng(seed)
    splits = ["forget"] * 89 + ["retain"] * 200 + ["nonmember"] * 200
    columns = {}
    for model in models:
        shift = SEPARATION.get(model, 0.0)
        scores = rng.normal(size=len(splits))
        scores[: splits.count("forget")] += shift
        columns[f"lira_online.{model}"] = scores
    columns["loss.noop"] = rng.normal(size=len(splits))
    with (run_dir / "samples.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "label", "split", *columns, "unrelated_extra"])
        for i, split in enumerate(splits):
            values = [f"{columns[c][i]:.6f}" for c in columns]
            writer.writerow([i, i % 10, split, *values, "x"])


RunFactory = Callable[..., Path]


@pytest.fixture
def make_run(tmp_path: Path) -> RunFactory:
    """Factory: ``make_run(results=None, samples=True, name="run")`` -> run directory."""

    def factory(
        results: dict[str, Any] | None = None, samples: bool = True, name: str = "run"
    ) -> Path:
        run_dir = tmp_path / name
        run_dir.mkdir()
        payload = copy.deepcopy(results) if results is not None else base_results()
        (run_dir / "results.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
        if samples:
            models = payload.get("models", {})
            write_samples(run_dir, [m for m, e in models.items() if not e.get("error")])
        return run_dir

    return factory
