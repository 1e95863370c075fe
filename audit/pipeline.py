"""``run_audit``: config in, run directory out (DESIGN.md, "Data flow").

Order: data -> plan -> original -> retrained reference -> controls and methods
-> shadow bank -> signals -> attacks -> metrics -> verdicts -> files. Every
trained model is cached in ``RUN/models`` under a content hash, so an
interrupted audit resumes and a repeated one trains nothing.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

import attacks.registry as attack_registry
import unlearners
from attacks.signals import logit_scaled_confidence
from audit import __version__
from audit.config import AuditConfig, ConfigError, to_toml
from audit.measure import (
    attack_metrics,
    attack_scores,
    forget_vs_nonmember,
    samples_csv,
    utility,
)
from audit.plan import Plan, derive_seed, make_plan
from audit.rundir import (
    ModelStore,
    atomic_savez,
    atomic_write_json,
    atomic_write_text,
    cached,
    content_key,
    index_digest,
)
from audit.verdict import NEGATIVE_CONTROL, POSITIVE_CONTROL, apply_controls, judge
from learning.augment import Augment, default_padding, query_views
from learning.data import Dataset, load_dataset
from learning.models import available_archs, make_model
from learning.train import CrossEntropy, fit, make_generator, predict_logits, resolve_device

CONTROLS = (NEGATIVE_CONTROL, POSITIVE_CONTROL)


@dataclass
class AuditResult:
    """What :func:`run_audit` returns: the run directory and the results.json content."""

    run_dir: Path
    results: dict[str, Any]
    report: Path | None = None


@dataclass
class _Models:
    """Everything measured about the target models (not the shadows)."""

    signals: dict[str, np.ndarray] = field(default_factory=dict)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)


def check_config(cfg: AuditConfig) -> None:
    """Fail fast, before any data is loaded or model trained, on unknown names."""
    if cfg.model.arch not in available_archs():
        raise ConfigError(
            f"unknown model '{cfg.model.arch}'; valid: {', '.join(available_archs())}"
        )
    for name in (*cfg.attack.attacks, cfg.verdict.attack):
        attack_registry.get(name)
    for name in cfg.unlearn.methods:
        if name in CONTROLS:
            raise ConfigError(f"'{name}' is a control and always runs; remove it from methods")
        method = unlearners.create(name, **cfg.unlearn.params.get(name, {}))
        if "supervised" not in method.paradigms:
            raise ConfigError(f"unlearner '{name}' does not support supervised classifiers")


class _Auditor:
    """Holds the shared state of one audit run (kept private: use :func:`run_audit`)."""

    def __init__(
        self, cfg: AuditConfig, out: Path, progress: bool, log: Callable[[str], None]
    ) -> None:
        self.cfg, self.out, self.progress, self.log = cfg, out, progress, log
        self.device = resolve_device(cfg.device)
        self.timings: dict[str, float] = {}
        self.store: ModelStore

    def load(self) -> tuple[Dataset, Plan]:
        cfg = self.cfg
        ds = load_dataset(cfg.data.dataset, cfg.data.root or None, cfg.data.limit or None)
        plan = make_plan(ds, cfg.forget.spec, cfg.seed, cfg.attack.shadows)
        self.ds = ds
        self.x = ds.x.to(self.device)
        self.y = ds.y.to(self.device)
        aug = Augment(default_padding(ds.shape[1]), ds.flippable) if cfg.train.augment else None
        self.objective = CrossEntropy(aug)
        self.base = {
            "data": ds.fingerprint(),
            "arch": cfg.model.arch,
            "recipe": cfg.train.to_dict(),
            "objective": self.objective.name,
            "augment": repr(aug),
            "version": __version__,
        }
        return ds, plan

    def new_model(self, seed: int) -> nn.Module:
        return make_model(self.cfg.model.arch, self.ds.shape, self.ds.num_classes, seed).to(
            self.device
        )

    def signals_of(self, model: nn.Module) -> np.ndarray:
        def views(xb: torch.Tensor) -> list[torch.Tensor]:
            return query_views(xb, self.cfg.attack.queries, self.ds.flippable)

        logits = predict_logits(model, self.x, views=views).numpy()
        return logit_scaled_confidence(logits, self.ds.y.numpy()[:, None])

    def train_cached(
        self, label: str, idx: np.ndarray, seed: int, bar: bool
    ) -> tuple[nn.Module, dict[str, Any], np.ndarray, str]:
        key = content_key({**self.base, "role": "train", "idx": index_digest(idx), "seed": seed})
        t_idx = torch.as_tensor(idx, device=self.device)

        def produce() -> tuple[nn.Module, dict[str, Any]]:
            t0 = time.perf_counter()
            model = fit(
                self.new_model(seed),
                self.x[t_idx],
                self.y[t_idx],
                self.objective.loss,
                self.cfg.train,
                make_generator(seed, self.device),
                progress=bar,
                desc=label,
            )
            return model, {"seconds": time.perf_counter() - t0}

        model, meta, sig, _ = cached(
            self.store, label, key, self.new_model(seed), produce, self.signals_of
        )
        return model, meta, sig, key

    def unlearn_cached(
        self, name: str, original: nn.Module, orig_key: str, plan: Plan
    ) -> tuple[nn.Module | None, dict[str, Any], np.ndarray | None]:
        params = self.cfg.unlearn.params.get(name, {})
        method = unlearners.create(name, **params)
        seed = derive_seed(self.cfg.seed, "unlearn", name)
        key = content_key(
            {
                "original": orig_key,
                "method": name,
                "params": method.describe()["params"],
                "seed": seed,
            }
        )
        f = torch.as_tensor(plan.forget, device=self.device)
        r = torch.as_tensor(plan.retain, device=self.device)

        def produce() -> tuple[nn.Module, dict[str, Any]]:
            t0 = time.perf_counter()
            model = method.unlearn(
                original,
                (self.x[f], self.y[f]),
                (self.x[r], self.y[r]),
                objective=self.objective,
                recipe=self.cfg.train,
                generator=make_generator(seed, self.device),
                progress=self.progress,
            )
            return model, {"seconds": time.perf_counter() - t0, "method": method.describe()}

        try:
            model, meta, sig, hit = cached(
                self.store, name, key, self.new_model(0), produce, self.signals_of
            )
        except Exception as exc:  # a method's failure is recorded, the audit goes on
            self.log(f"  {name}: FAILED ({type(exc).__name__}: {exc})")
            return None, {"seconds": 0.0, "error": f"{type(exc).__name__}: {exc}"}, None
        if not np.isfinite(sig).all():
            msg = "the unlearned model outputs non-finite values (diverged)"
            self.log(f"  {name}: FAILED ({msg})")
            return None, {"seconds": meta.get("seconds", 0.0), "error": msg}, None
        took = "cached" if hit else f"{meta['seconds']:.1f}s"
        self.log(f"  {name}: {took}")
        return model, meta, sig

    def shadows(self, plan: Plan) -> np.ndarray:
        m = self.cfg.attack.shadows
        out = []
        bar = tqdm(range(m), desc="shadow models", disable=not self.progress, unit="model")
        for k in bar:
            idx = np.flatnonzero(plan.keep[k])
            _, _, sig, _ = self.train_cached(
                "shadow", idx, derive_seed(self.cfg.seed, "shadow", k), bar=False
            )
            out.append(sig)
        bar.close()
        return np.stack(out)


def _timed(auditor: _Auditor, phase: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    value = fn()
    auditor.timings[phase] = round(time.perf_counter() - t0, 3)
    return value


def _targets(a: _Auditor, plan: Plan) -> _Models:
    cfg, out = a.cfg, _Models()
    a.log("training the original model on the members")
    original, meta, sig, okey = a.train_cached(
        "original", plan.members, derive_seed(cfg.seed, "original"), a.progress
    )
    out.signals["original"], out.keys["original"] = sig, okey
    out.entries["original"] = {"role": "original", "model": original, **meta}
    a.log("training the retrained reference on the retain set")
    ref, meta, sig, rkey = a.train_cached(
        "reference", plan.retain, derive_seed(cfg.seed, "reference"), a.progress
    )
    out.signals["reference"], out.keys["reference"] = sig, rkey
    out.entries["reference"] = {"role": "reference", "model": ref, **meta}
    a.log("unlearning (controls first)")
    for name in (*CONTROLS, *cfg.unlearn.methods):
        model, meta, usig = a.unlearn_cached(name, original, okey, plan)
        role = "control" if name in CONTROLS else "unlearner"
        out.entries[name] = {"role": role, "model": model, **meta}
        if usig is not None:
            out.signals[name] = usig
    return out


def _model_block(a: _Auditor, models: _Models, plan: Plan) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for name, entry in models.entries.items():
        model = entry["model"]
        item: dict[str, Any] = {
            "role": entry["role"],
            "utility": utility(model, a.x, a.y, plan) if model is not None else None,
            "seconds": round(float(entry.get("seconds", 0.0)), 3),
        }
        if "error" in entry:
            item["error"] = entry["error"]
        if "method" in entry:
            item["params"] = entry["method"]["params"]
        if name in models.keys:
            item["checkpoint"] = f"models/{name}-{models.keys[name]}.pt"
        block[name] = item
    return block


def _verdicts(
    cfg: AuditConfig, models: dict[str, Any], scores: dict[str, Any], plan: Plan
) -> tuple[dict[str, Any], dict[str, Any]]:
    v = cfg.verdict
    ref_scores, is_forget = forget_vs_nonmember(plan, scores["reference"][v.attack])
    ref_acc = models["reference"]["utility"]["test_acc"]
    out = {}
    for name in (*CONTROLS, *cfg.unlearn.methods):
        entry = models[name]
        s = forget_vs_nonmember(plan, scores[name][v.attack])[0] if name in scores else None
        out[name] = judge(
            s,
            ref_scores,
            is_forget,
            test_acc=(entry["utility"] or {}).get("test_acc"),
            reference_test_acc=ref_acc,
            attack=v.attack,
            level=v.level,
            n_boot=v.n_boot,
            utility_tolerance=v.utility_tolerance,
            seed=derive_seed(cfg.seed, "boot"),
            error=entry.get("error"),
        )
    controls = apply_controls(out)
    return {k: vd.to_dict() for k, vd in out.items()}, controls


def _provenance(cfg: AuditConfig, a: _Auditor, command: str | None) -> dict[str, Any]:
    return {
        "name": cfg.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command or "",
        "device": str(a.device),
        "seed": cfg.seed,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "argv": list(sys.argv),
    }


def run_audit(
    cfg: AuditConfig,
    out: str | Path,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    command: str | None = None,
    render_report: bool = True,
) -> AuditResult:
    """Run a complete audit and write the run directory (see docs/design.md).

    Args:
        cfg: The validated configuration.
        out: The run directory (created; cached models in it are reused).
        progress: Show progress bars.
        log: Receives one line per step (default: tqdm-safe print to stderr).
        command: The command line that reproduces the run (recorded in provenance).
        render_report: Also render ``report.html``.
    """
    t_start = time.perf_counter()
    run_dir = Path(out)
    logger = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    check_config(cfg)
    a = _Auditor(cfg, run_dir, progress, logger)
    ds, plan = _timed(a, "load", a.load)  # bad data or forget spec fail before any file
    a.store = ModelStore(run_dir / "models")
    atomic_write_text(run_dir / "config.toml", to_toml(cfg.to_dict()))
    logger(
        f"{ds.name}: pool {plan.n_pool}, members {plan.members.size}, "
        f"forget {plan.forget.size}, device {a.device}"
    )
    models = _timed(a, "targets", lambda: _targets(a, plan))
    logger(f"training {cfg.attack.shadows} shadow models")
    shadow = _timed(a, "shadows", lambda: a.shadows(plan))
    names = list(dict.fromkeys([*cfg.attack.attacks, cfg.verdict.attack]))
    scores = attack_scores(models.signals, shadow, plan.keep, names)
    model_block = _model_block(a, models, plan)
    results: dict[str, Any] = {
        "schema_version": 1,
        "tool": {"name": "unlearn-audit", "version": __version__},
        "run": _provenance(cfg, a, command),
        "config": cfg.to_dict(),
        "data": {"dataset": ds.name, **plan.summary(), "classes": list(ds.classes)},
        "models": model_block,
        "attacks": attack_metrics(scores, plan, cfg.verdict.n_boot, derive_seed(cfg.seed, "ci")),
        "forgetting": {},
        "report": {"roc_attack": cfg.verdict.attack},
    }
    results["verdicts"], results["controls"] = _verdicts(cfg, model_block, scores, plan)
    _write(run_dir, plan, ds, models, shadow, scores)
    results["timings"] = {**a.timings, "total_seconds": round(time.perf_counter() - t_start, 3)}
    atomic_write_json(run_dir / "results.json", results)
    report = None
    if render_report:
        from reports import render

        report = render(run_dir)
    return AuditResult(run_dir, results, report)


def _write(
    run_dir: Path,
    plan: Plan,
    ds: Dataset,
    models: _Models,
    shadow: np.ndarray,
    scores: dict[str, dict[str, np.ndarray]],
) -> None:
    labels = ds.y.numpy()
    atomic_write_text(
        run_dir / "samples.csv", samples_csv(plan, labels, ds.ids, models.signals, scores)
    )
    names = list(models.signals)
    keep_rows = {"reference": plan.retain, POSITIVE_CONTROL: plan.retain}
    target_keep = np.stack([plan.mask(keep_rows.get(n, plan.members)) for n in names])
    atomic_savez(
        run_dir / "signals.npz",
        signals=np.concatenate([shadow, np.stack([models.signals[n] for n in names])]),
        keep=np.concatenate([plan.keep, target_keep]),
        model_names=np.array([f"shadow{k}" for k in range(len(shadow))] + names),
        n_shadows=np.array(len(shadow)),
        label=labels,
        split=plan.split_labels().astype(str),
    )
