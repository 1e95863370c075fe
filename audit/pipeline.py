"""``run_audit``: config in, run directory out (docs/design.md, "Data flow").

The audit is one linear script over typed intermediates, each step a function:

    load_setup -> produce_targets -> Producer.shadows -> attack_scores
    -> ulira_banks -> difficulty -> leakage_of -> judge_targets -> write_run

Every trained model is cached in ``RUN/models`` under a content hash, so an
interrupted audit resumes and a repeated one trains nothing. No value is written
to a file and read back inside a run.
"""

from __future__ import annotations

import getpass
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import unlearn_audit.attacks.registry as attack_registry
from unlearn_audit.audit.config import RESERVED, AuditConfig, ConfigError, to_toml
from unlearn_audit.audit.forgetting import UliraBank, measure_bank
from unlearn_audit.audit.inputs import AuditInputs, Setup, load_setup, resolve_methods
from unlearn_audit.audit.judging import (
    judge_targets,
    leakage_of,
    record_weights_of,
)
from unlearn_audit.audit.lock import RunLock
from unlearn_audit.audit.measure import attack_metrics, attack_scores
from unlearn_audit.audit.paradigms import difficulty_features, make_paradigm
from unlearn_audit.audit.plan import Plan, derive_seed
from unlearn_audit.audit.production import Producer
from unlearn_audit.audit.records import RECORD_ATTACK
from unlearn_audit.audit.rundir import ModelStore
from unlearn_audit.audit.serialise import Outcome, write_run
from unlearn_audit.audit.targets import CONTROLS, Targets, produce_targets
from unlearn_audit.difficulty import DifficultyResult, FeatureSet, PoolData, run_difficulty
from unlearn_audit.runfiles import CONFIG_FILE, MODELS_DIR, atomic_write_text
from unlearn_audit.unlearners import Unlearner


@dataclass
class AuditResult:
    """What :func:`run_audit` returns: the run directory and the results.json content."""

    run_dir: Path
    results: dict[str, Any]
    report: Path | None = None


def _check(cfg: AuditConfig, inputs: AuditInputs) -> list[Unlearner]:
    """Fail fast, before any data is loaded or model trained; return the methods to run
    (the controls first)."""
    for name in (*cfg.attack.attacks, *cfg.verdict.judged_by, RECORD_ATTACK):
        attack_registry.get(name)
    for name in cfg.unlearn.methods:
        if name in CONTROLS:
            raise ConfigError(f"'{name}' is a control and always runs; remove it from methods")
    methods = resolve_methods(cfg, inputs)
    paradigm = make_paradigm(cfg)
    for m in methods:
        if paradigm.unlearner_paradigm not in m.paradigms:  # what the unlearners see
            raise ConfigError(
                f"unlearner '{m.name}' does not support the {cfg.paradigm} paradigm "
                f"(it supports: {', '.join(sorted(m.paradigms))})"
            )
        if m.needs_negatives and not paradigm.negatives:
            raise ConfigError(
                f"unlearner '{m.name}' needs an objective with negative pairs, and this "
                f"{cfg.paradigm} objective has none (e.g. [contrastive] method = 'byol')"
            )
    names = [m.name for m in methods] + [*cfg.unlearn.checkpoints, *inputs.unlearned]
    dup = sorted({n for n in names if names.count(n) > 1} | (set(names[2:]) & set(RESERVED)))
    if dup:
        raise ConfigError(f"two audited models are both named '{dup[0]}'; rename one")
    return methods


def ulira_banks(
    p: Producer, plan: Plan, targets: Targets, methods: list[Unlearner]
) -> dict[str, UliraBank]:
    """U-LiRA bank of every method whose audited model exists (``attack.ulira``)."""
    cfg = p.cfg
    banks: dict[str, UliraBank] = {}
    if not cfg.attack.ulira:
        return banks
    signals = targets.signals
    for method in methods:
        name = method.name
        if name not in signals:  # the method itself failed: nothing to compare
            continue
        p.log(f"U-LiRA: {name} unlearns on every shadow model")
        try:
            bank = p.unlearned_bank(method, plan)
        except Exception as exc:  # recorded, the audit goes on
            banks[name] = UliraBank.failed(name, f"{type(exc).__name__}: {exc}")
            continue
        banks[name] = measure_bank(
            name,
            bank,
            plan,
            signals[name],
            signals["reference"],
            n_boot=cfg.verdict.n_boot,
            seed=derive_seed(cfg.seed, "ulira-ci"),
        )
    return banks


def _difficulty(
    p: Producer,
    plan: Plan,
    targets: Targets,
    shadow: np.ndarray,
    banks: dict[str, UliraBank],
    features: FeatureSet | None,
) -> DifficultyResult:
    """Per-sample difficulty and feasibility of every method with a bank (docs/difficulty.md),
    with the features the paradigm supplies."""
    cfg, setup = p.cfg, p.setup
    bank_signals = {n: b.signals for n, b in banks.items() if b.signals is not None}
    if not (cfg.attack.ulira and cfg.difficulty.enabled and bank_signals):
        return DifficultyResult()
    original = targets.runs["original"].model
    if features is None:
        p.log(f"difficulty: skipped (the {setup.paradigm.name} paradigm supplies no features)")
        return DifficultyResult()
    if original is None:
        p.log("difficulty: skipped (no original model)")
        return DifficultyResult()

    def load(k: int) -> torch.nn.Module:
        return p.train(p.specs.shadow(plan, k), bar=False).model

    try:
        return run_difficulty(
            features=features,
            original=original,
            signals=targets.signals,
            banks=bank_signals,
            shadow=shadow,
            keep=plan.keep,
            pool=PoolData.of(setup.x, setup.y, plan.forget),
            forget=plan.forget,
            retain=plan.retain,
            load=load,
            bar=cfg.difficulty.bar,
            log=p.log,
        )
    except Exception as exc:  # an auxiliary analysis: recorded, the audit goes on
        msg = f"{type(exc).__name__}: {exc}"
        p.log(f"difficulty: FAILED ({msg})")
        return DifficultyResult.failed(bank_signals, msg)


def _provenance(cfg: AuditConfig, setup: Setup, command: str | None) -> dict[str, Any]:
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
        "device": str(setup.device),
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
    logger: Callable[[str], None],
    command: str | None,
    finish: Callable[[Path], Path] | None,
) -> AuditResult:
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    inputs = inputs or AuditInputs()
    run_dir = Path(out)
    methods = _check(cfg, inputs)
    setup, plan = _timed(timings, "load", lambda: load_setup(cfg, inputs))  # fails before files
    for warning in plan.warnings:
        logger(f"warning: {warning}")
    # the executor connects (Ray) here: a missing Ray or cluster fails before any file
    p = Producer(setup, ModelStore(run_dir / MODELS_DIR, log=logger), progress, logger)
    lock.acquire()  # before the first file (no-op when the directory existed)
    atomic_write_text(run_dir / CONFIG_FILE, to_toml(cfg.to_dict()))
    logger(
        f"{setup.ds.name}: pool {plan.n_pool}, members {plan.members.size}, "
        f"forget {plan.forget.size}, device {setup.device}"
    )
    targets = _timed(timings, "targets", lambda: produce_targets(p, plan, methods))
    logger(f"training {cfg.attack.shadows} shadow models")
    shadow = _timed(timings, "shadows", lambda: p.shadows(plan))
    names = list(dict.fromkeys([*cfg.attack.attacks, *cfg.verdict.judged_by, RECORD_ATTACK]))
    scores = attack_scores(targets.signals, shadow, plan.keep, names)
    targets.measure_utility(setup, plan)
    banks = _timed(timings, "ulira", lambda: ulira_banks(p, plan, targets, methods))
    features = difficulty_features(setup.paradigm, setup.ds, setup.recipe)
    difficulty = _timed(
        timings, "difficulty", lambda: _difficulty(p, plan, targets, shadow, banks, features)
    )
    provenance = _provenance(cfg, setup, command)
    attacks = attack_metrics(scores, plan, cfg.verdict.n_boot, derive_seed(cfg.seed, "ci"))
    leakage = leakage_of(cfg, plan, targets, scores)
    weights = record_weights_of(cfg, plan, shadow, logger)
    judgement = _timed(
        timings,
        "verdicts",
        lambda: judge_targets(cfg, plan, targets, scores, banks, weights, leakage),
    )
    outcome = Outcome(
        cfg=cfg,
        provenance=provenance,
        paradigm={
            "name": setup.paradigm.name,
            "signal": setup.paradigm.signal_description(),
            "signal_settings": setup.paradigm.signal_settings(),
            "has_classes": setup.paradigm.has_classes,
            "difficulty": features is not None,
        },
        ds=setup.ds,
        plan=plan,
        targets=targets,
        shadow=shadow,
        scores=scores,
        attacks=attacks,
        banks=banks,
        difficulty=difficulty,
        leakage=leakage,
        weights=weights,
        judgement=judgement,
        assumptions=_assumptions(cfg, inputs),
    )
    results = write_run(run_dir, outcome, timings, t_start)
    report = finish(run_dir) if finish is not None else None
    return AuditResult(run_dir, results, report)


def _assumptions(cfg: AuditConfig, inputs: AuditInputs) -> list[str]:
    if cfg.model.original or inputs.original is not None:
        return [
            "the original model was supplied by the user; the retrained reference and the "
            "shadow models were trained with the [train] recipe of this config, assumed to be "
            "how the original was trained"
        ]
    return []
