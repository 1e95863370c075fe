"""``run_audit``: config in, run directory out (docs/design.md, "Data flow").

Order: data -> plan -> original -> retrained reference -> controls, methods and
the caller's unlearned models -> shadow bank -> signals -> attacks -> metrics
-> verdicts -> files. Every trained model is cached in ``RUN/models`` under a
content hash, so an interrupted audit resumes and a repeated one trains nothing.
"""

from __future__ import annotations

import getpass
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
from tqdm.auto import tqdm

import unlearn_audit.attacks.registry as attack_registry
from unlearn_audit.audit import __version__
from unlearn_audit.audit.config import RESERVED, AuditConfig, ConfigError, to_toml
from unlearn_audit.audit.difficulty_audit import PoolData, run_difficulty
from unlearn_audit.audit.forgetting import retain_leakage, ulira_block
from unlearn_audit.audit.lock import RunLock
from unlearn_audit.audit.measure import (
    attack_metrics,
    attack_scores,
    forget_vs_nonmember,
    samples_csv,
)
from unlearn_audit.audit.plan import Plan, derive_seed
from unlearn_audit.audit.production import AuditInputs, Producer, resolve_methods
from unlearn_audit.audit.residual import (
    RECORD_ATTACK,
    effective_records,
    minimum_detectable_residual,
    record_evidence,
    record_weights,
)
from unlearn_audit.audit.rundir import ModelStore
from unlearn_audit.audit.verdict import (
    NEGATIVE_CONTROL,
    PLANTED_CONTROL,
    POSITIVE_CONTROL,
    ForgetEpsilons,
    Rule,
    apply_controls,
    judge,
)
from unlearn_audit.learning.data import Dataset
from unlearn_audit.learning.train import CrossEntropy
from unlearn_audit.runfiles import (
    CONFIG_FILE,
    MODELS_DIR,
    RESULTS_FILE,
    SAMPLES_FILE,
    SCHEMA_VERSION,
    SIGNALS_FILE,
    atomic_savez,
    atomic_write_json,
    atomic_write_text,
)

CONTROLS = (NEGATIVE_CONTROL, POSITIVE_CONTROL)


def planted_records(plan: Plan, fraction: float, seed: int) -> np.ndarray:
    """The forget records the planted control keeps: a seeded random ``fraction`` (sorted)."""
    k = int(round(fraction * plan.forget.size))
    rng = np.random.default_rng(derive_seed(seed, "planted-records"))
    return np.sort(rng.permutation(plan.forget)[:k])


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
    judged: list[str] = field(default_factory=list)
    planted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _check(cfg: AuditConfig, inputs: AuditInputs) -> list[str]:
    """Fail fast, before any data is loaded or model trained; return the judged names."""
    for name in (*cfg.attack.attacks, *cfg.verdict.judged_by, RECORD_ATTACK):
        attack_registry.get(name)
    for name in cfg.unlearn.methods:
        if name in CONTROLS:
            raise ConfigError(f"'{name}' is a control and always runs; remove it from methods")
    methods = resolve_methods(cfg, inputs)
    for m in methods:
        if cfg.paradigm not in m.paradigms:
            raise ConfigError(
                f"unlearner '{m.name}' does not support the {cfg.paradigm} paradigm "
                f"(it supports: {', '.join(sorted(m.paradigms))})"
            )
    names = [m.name for m in methods] + [*cfg.unlearn.checkpoints, *inputs.unlearned]
    dup = sorted({n for n in names if names.count(n) > 1} | (set(names[2:]) & set(RESERVED)))
    if dup:
        raise ConfigError(f"two audited models are both named '{dup[0]}'; rename one")
    return names


def _targets(p: Producer, plan: Plan) -> _Models:
    cfg, out = p.cfg, _Models()
    original, meta, sig, okey = p.original(plan)
    out.signals["original"] = sig
    out.entries["original"] = {"role": "original", "model": original, "key": okey, **meta}
    p.log("training the retrained reference on the retain set")
    ref, meta, sig, rkey = p.train_cached(
        "reference", plan.retain, derive_seed(cfg.seed, "reference"), p.progress
    )
    out.signals["reference"] = sig
    out.entries["reference"] = {"role": "reference", "model": ref, "key": rkey, **meta}
    p.log("unlearning (controls first)")
    for method in resolve_methods(cfg, p.inputs):
        model, meta, usig = p.unlearn_cached(method, original, okey, plan)
        role = "control" if method.name in CONTROLS else "unlearner"
        out.entries[method.name] = {"role": role, "model": model, **meta}
        out.judged.append(method.name)
        if usig is not None:
            out.signals[method.name] = usig
    fraction = cfg.verdict.planted_fraction
    if fraction > 0:
        out.planted = planted_records(plan, fraction, cfg.seed)
        p.log(
            f"training the planted control on the retain set plus {out.planted.size} of the "
            f"{plan.forget.size} forget samples ({fraction:.0%})"
        )
        idx = np.union1d(plan.retain, out.planted)
        model, meta, sig, pkey = p.train_cached(
            PLANTED_CONTROL, idx, derive_seed(cfg.seed, "planted"), p.progress
        )
        out.signals[PLANTED_CONTROL] = sig
        out.entries[PLANTED_CONTROL] = {"role": "control", "model": model, "key": pkey, **meta}
        out.judged.append(PLANTED_CONTROL)
    for name, (model, meta, usig) in p.checkpoints().items():
        out.entries[name] = {"role": "unlearner", "model": model, **meta}
        out.judged.append(name)
        out.signals[name] = usig
    return out


def _model_block(p: Producer, models: _Models, plan: Plan) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for name, entry in models.entries.items():
        model = entry["model"]
        item: dict[str, Any] = {
            "role": entry["role"],
            "utility": p.paradigm.utility(model, p.x, p.y, plan) if model is not None else None,
            "seconds": round(float(entry.get("seconds", 0.0)), 3),
        }
        for key in ("error", "source"):
            if key in entry:
                item[key] = entry[key]
        if "method" in entry:
            item["params"] = entry["method"]["params"]
        if "key" in entry and "source" not in entry:
            item["checkpoint"] = f"models/{name}-{entry['key']}.pt"
        elif "key" in entry:
            item["content_hash"] = entry["key"]
        block[name] = item
    return block


def _rule(cfg: AuditConfig) -> Rule:
    v = cfg.verdict
    return Rule(
        primary=v.attack,
        level=v.level,
        n_boot=v.n_boot,
        utility_tolerance=v.utility_tolerance,
        correction=v.correction,
        min_forget_quality=v.min_forget_quality,
        max_residual=v.max_residual,
        seed=derive_seed(cfg.seed, "boot"),
    )


def _verdicts(
    cfg: AuditConfig,
    models: dict[str, Any],
    judged: list[str],
    scores: dict[str, Any],
    plan: Plan,
    extra: dict[str, np.ndarray],
    forgetting: dict[str, Any],
    planted: np.ndarray,
    weights: np.ndarray | None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Verdicts, the controls block and the power block (MDR, planted control).

    ``weights``: per pool sample, its weight in the residual (:func:`_record_weights`;
    None = equal).
    """
    v = cfg.verdict
    rule = _rule(cfg)
    w = None if weights is None else forget_vs_nonmember(plan, weights)[0]

    def forget_vs_non(name: str) -> dict[str, np.ndarray]:
        return {a: forget_vs_nonmember(plan, scores[name][a])[0] for a in v.judged_by}

    is_forget = forget_vs_nonmember(plan, scores["reference"][v.attack])[1]
    reference, original = forget_vs_non("reference"), forget_vs_non("original")
    ref_acc = models["reference"]["utility"]["test_acc"]
    out = {}
    for name in judged:
        entry = models[name]
        out[name] = judge(
            forget_vs_non(name) if name in scores else None,
            reference,
            original,
            is_forget,
            test_acc=(entry["utility"] or {}).get("test_acc"),
            reference_test_acc=ref_acc,
            rule=rule,
            epsilons=_epsilons(name, plan, extra, forgetting),
            error=entry.get("error"),
            weights=w,
        )
        if name in scores:
            rec = record_evidence(
                RECORD_ATTACK,
                forget_vs_nonmember(plan, scores[name][RECORD_ATTACK])[0],
                is_forget,
                v.fdr,
            )
            out[name].evidence["records"] = rec.to_dict(plan.forget)
            for label, values in (("pvalue", rec.pvalues), ("recognisable", rec.recognisable)):
                col = np.full(plan.n_pool, np.nan)
                col[plan.forget] = values
                extra[f"{label}.{name}"] = col
    if PLANTED_CONTROL in out:
        out[PLANTED_CONTROL].evidence["planted_fraction"] = v.planted_fraction
    controls = apply_controls(out)
    power = minimum_detectable_residual(
        original,
        forget_vs_non(POSITIVE_CONTROL),
        reference,
        is_forget,
        level=rule.attack_level(len(v.judged_by)),
        seed=derive_seed(cfg.seed, "mdr"),
        weights=w,
    ).to_dict()
    power["weighting"] = {
        "scheme": v.weighting if weights is not None else "uniform",
        "effective_forget_records": round(
            effective_records(None if weights is None else weights[plan.forget], plan.forget.size),
            1,
        ),
        "n_forget": int(plan.forget.size),
    }
    if PLANTED_CONTROL in out:
        pv = out[PLANTED_CONTROL]
        power["planted"] = {
            "fraction": v.planted_fraction,
            "n_planted": int(planted.size),
            "status": pv.status,
            "residual": pv.evidence.get("residual"),
        }
        col = np.full(plan.n_pool, np.nan)
        col[plan.forget] = np.isin(plan.forget, planted)
        extra["planted"] = col
    return {k: vd.to_dict() for k, vd in out.items()}, controls, power


def _record_weights(
    cfg: AuditConfig, plan: Plan, shadow: np.ndarray, log: Callable[[str], None]
) -> np.ndarray | None:
    """Every pool sample's weight in the residual (``verdict.weighting``), or None (equal).

    ``separation`` weighs each record by its membership's visibility in the shadows
    (:func:`audit.residual.record_weights`); when no forget record or no non-member
    shows any, the residual falls back to equal weights, and the log says so.
    """
    if cfg.verdict.weighting == "uniform":
        return None
    w = record_weights(shadow, plan.keep)
    if not (w[plan.forget].sum() > 0 and w[plan.nonmembers].sum() > 0):
        log(
            "warning: no record's membership is visible in the shadow models; "
            "the residual weighs every record equally"
        )
        return None
    return w


def _epsilons(
    name: str, plan: Plan, extra: dict[str, np.ndarray], forgetting: dict[str, Any]
) -> ForgetEpsilons | None:
    """Per-forget-sample ε of ``name``'s and the retrain control's U-LiRA banks, if both ran."""
    cols = (f"epsilon.{name}", f"epsilon.{POSITIVE_CONTROL}")
    if not all(c in extra for c in cols) or "n_bank" not in forgetting.get(name, {}):
        return None
    eps_m, eps_r = (extra[c][plan.forget] for c in cols)
    return ForgetEpsilons(eps_m, eps_r, n_models=forgetting[name]["n_bank"] // 2)


def _unlearning_aware(
    p: Producer, plan: Plan, models: _Models, banks: dict[str, np.ndarray] | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """U-LiRA banks of every method that ran: ``forgetting`` block and per-sample columns.

    ``banks``, when given, receives each method's bank (the difficulty index learns on it).
    """
    cfg = p.cfg
    forgetting: dict[str, Any] = {}
    extra: dict[str, np.ndarray] = {}
    if not cfg.attack.ulira:
        return forgetting, extra
    for method in resolve_methods(cfg, p.inputs):
        name = method.name
        if name not in models.signals:  # the method itself failed: nothing to compare
            continue
        p.log(f"U-LiRA: {name} unlearns on every shadow model")
        try:
            bank = p.unlearned_bank(method, plan)
        except Exception as exc:  # recorded, the audit goes on
            forgetting[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        entry, per_sample = ulira_block(
            bank,
            plan.keep,
            plan,
            models.signals[name],
            models.signals["reference"],
            n_boot=cfg.verdict.n_boot,
            seed=derive_seed(cfg.seed, "ulira-ci"),
        )
        forgetting[name] = entry
        if banks is not None:
            banks[name] = bank
        for label, values in (("ulira", per_sample[0]), ("epsilon", per_sample[1])):
            col = np.full(plan.n_pool, np.nan)
            col[plan.forget] = values
            extra[f"{label}.{name}"] = col
    return forgetting, extra


def _difficulty(
    p: Producer, plan: Plan, models: _Models, shadow: np.ndarray, banks: dict[str, np.ndarray]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Per-sample difficulty and feasibility of every method with a bank (docs/difficulty.md)."""
    cfg = p.cfg
    if not (cfg.attack.ulira and cfg.difficulty.enabled and banks):
        return {}, {}
    if not isinstance(p.objective, CrossEntropy) or models.entries["original"]["model"] is None:
        p.log("difficulty: skipped (its features need a classifier trained with cross-entropy)")
        return {}, {}

    def load(k: int) -> torch.nn.Module:
        keep_k = np.flatnonzero(plan.keep[k])
        return p.train_cached("shadow", keep_k, derive_seed(cfg.seed, "shadow", k), bar=False)[0]

    try:
        return run_difficulty(
            original=models.entries["original"]["model"],
            signals=models.signals,
            banks=banks,
            shadow=shadow,
            keep=plan.keep,
            pool=PoolData.of(p.x, p.y, plan.forget),
            forget=plan.forget,
            retain=plan.retain,
            load=load,
            bar=cfg.difficulty.bar,
            log=p.log,
        )
    except Exception as exc:  # an auxiliary analysis: recorded, the audit goes on
        msg = f"{type(exc).__name__}: {exc}"
        p.log(f"difficulty: FAILED ({msg})")
        return {name: {"error": msg} for name in banks}, {}


def _leakage(
    cfg: AuditConfig, plan: Plan, models: _Models, scores: dict[str, dict[str, np.ndarray]]
) -> dict[str, Any]:
    """Retain-set exposure of each judged model against the original's (verdict attack)."""
    attack = cfg.verdict.attack
    return {
        name: retain_leakage(
            scores["original"][attack],
            scores[name][attack],
            plan,
            level=cfg.verdict.level,
            n_boot=cfg.verdict.n_boot,
            seed=derive_seed(cfg.seed, "leak"),
        )
        for name in models.judged
        if name in scores
    }


def _note_leakage(results: dict[str, Any]) -> None:
    """Say in the verdict when unlearning exposed the retained samples more."""
    for name, leak in results["retain_leakage"].items():
        if leak["increased"] and name in results["verdicts"]:
            results["verdicts"][name]["reasons"].append(
                "note: the retain set became MORE exposed to membership inference "
                f"(retain-vs-non-member AUC {leak['auc_before']:.3f} -> {leak['auc_after']:.3f}, "
                f"CI of the change {leak['ci'][0]:+.3f}..{leak['ci'][1]:+.3f})"
            )


def _provenance(cfg: AuditConfig, p: Producer, command: str | None) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment (e.g. some containers)
        user = ""
    return {
        "name": cfg.name,
        "user": user,
        "host": platform.node(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command or "",
        "device": str(p.device),
        "seed": cfg.seed,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def _timed(timings: dict[str, float], phase: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    value = fn()
    timings[phase] = round(time.perf_counter() - t0, 3)
    return value


def run_audit(
    cfg: AuditConfig,
    out: str | Path,
    *,
    inputs: AuditInputs | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    command: str | None = None,
    finish: Callable[[Path], Path] | None = None,
) -> AuditResult:
    """Run a complete audit and write the run directory (see docs/design.md).

    One audit writes a run directory at a time (:class:`audit.lock.RunLock`): a second
    one raises :class:`audit.lock.RunLockedError`. Most callers want
    :func:`unlearn_audit.run_audit`, which also renders the report.

    Args:
        cfg: The validated configuration.
        out: The run directory (created; cached models in it are reused).
        inputs: In-memory dataset, model factory, original / unlearned models and
            unlearner instances that replace or extend the config (see docs/python-api.md).
        progress: Show progress bars.
        log: Receives one line per step (default: tqdm-safe print to stderr).
        command: The command line that reproduces the run (recorded in provenance).
        finish: Called with the run directory once every file is written, while the
            lock is still held; what it returns is the result's ``report``
            (:func:`unlearn_audit.run_audit` passes the report renderer).
    """
    logger = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    with RunLock(Path(out), log=logger) as lock:  # held until the last file is written
        return _run_audit(cfg, out, lock, inputs, progress, logger, command, finish)


def _run_audit(
    cfg: AuditConfig,
    out: str | Path,
    lock: RunLock,
    inputs: AuditInputs | None,
    progress: bool,
    log: Callable[[str], None] | None,
    command: str | None,
    finish: Callable[[Path], Path] | None,
) -> AuditResult:
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    inputs = inputs or AuditInputs()
    run_dir = Path(out)
    logger = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    _check(cfg, inputs)
    p = Producer(cfg, inputs, progress, logger)
    ds, plan = _timed(timings, "load", p.load)  # bad data or requests fail before any file
    for warning in plan.warnings:
        logger(f"warning: {warning}")
    lock.acquire()  # before the first file (no-op when the directory existed)
    p.store = ModelStore(run_dir / MODELS_DIR, log=logger)
    atomic_write_text(run_dir / CONFIG_FILE, to_toml(cfg.to_dict()))
    logger(
        f"{ds.name}: pool {plan.n_pool}, members {plan.members.size}, "
        f"forget {plan.forget.size}, device {p.device}"
    )
    models = _timed(timings, "targets", lambda: _targets(p, plan))
    logger(f"training {cfg.attack.shadows} shadow models")
    shadow = _timed(timings, "shadows", lambda: p.shadows(plan))
    names = list(dict.fromkeys([*cfg.attack.attacks, *cfg.verdict.judged_by, RECORD_ATTACK]))
    scores = attack_scores(models.signals, shadow, plan.keep, names)
    block = _model_block(p, models, plan)
    banks: dict[str, np.ndarray] = {}
    forgetting, extra = _timed(timings, "ulira", lambda: _unlearning_aware(p, plan, models, banks))
    difficulty, hard_cols = _timed(
        timings, "difficulty", lambda: _difficulty(p, plan, models, shadow, banks)
    )
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "unlearn-audit", "version": __version__},
        "run": _provenance(cfg, p, command),
        "config": cfg.to_dict(),
        "paradigm": {
            "name": p.paradigm.name,
            "signal": p.paradigm.signal_description(),
            "signal_settings": p.paradigm.signal_settings(),
        },
        "data": {
            "dataset": ds.name,
            **plan.summary(),
            "classes": list(ds.classes),
            "warnings": list(plan.warnings),
        },
        "models": block,
        "attacks": attack_metrics(scores, plan, cfg.verdict.n_boot, derive_seed(cfg.seed, "ci")),
        "forgetting": forgetting,
        "difficulty": difficulty,
        "retain_leakage": _leakage(cfg, plan, models, scores),
        "report": {"roc_attack": cfg.verdict.attack},
    }
    if cfg.model.original or inputs.original is not None:
        results["assumptions"] = [
            "the original model was supplied by the user; the retrained reference and the "
            "shadow models were trained with the [train] recipe of this config, assumed to be "
            "how the original was trained"
        ]
    weights = _record_weights(cfg, plan, shadow, logger)
    if weights is not None:
        extra["weight"] = weights
    results["verdicts"], results["controls"], results["power"] = _timed(
        timings,
        "verdicts",
        lambda: _verdicts(
            cfg, block, models.judged, scores, plan, extra, forgetting, models.planted, weights
        ),
    )
    _note_leakage(results)
    _write(run_dir, plan, ds, models, shadow, scores, {**extra, **hard_cols})
    results["timings"] = {**timings, "total_seconds": round(time.perf_counter() - t_start, 3)}
    atomic_write_json(run_dir / RESULTS_FILE, results)
    report = finish(run_dir) if finish is not None else None
    return AuditResult(run_dir, results, report)


def _write(
    run_dir: Path,
    plan: Plan,
    ds: Dataset,
    models: _Models,
    shadow: np.ndarray,
    scores: dict[str, dict[str, np.ndarray]],
    extra: dict[str, np.ndarray],
) -> None:
    labels = ds.y.numpy()
    atomic_write_text(
        run_dir / SAMPLES_FILE, samples_csv(plan, labels, ds.ids, models.signals, scores, extra)
    )
    names = list(models.signals)
    keep_rows = {
        "reference": plan.retain,
        POSITIVE_CONTROL: plan.retain,
        PLANTED_CONTROL: np.union1d(plan.retain, models.planted),
    }
    target_keep = np.stack([plan.mask(keep_rows.get(n, plan.members)) for n in names])
    atomic_savez(
        run_dir / SIGNALS_FILE,
        signals=np.concatenate([shadow, np.stack([models.signals[n] for n in names])]),
        keep=np.concatenate([plan.keep, target_keep]),
        model_names=np.array([f"shadow{k}" for k in range(len(shadow))] + names),
        n_shadows=np.array(len(shadow)),
        label=labels,
        split=plan.split_labels().astype(str),
        forget_index=plan.forget,
        forget_images=ds.x.numpy()[plan.forget].astype(np.float16),
    )
