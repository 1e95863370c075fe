"""Contrastive benchmark: a SimCLR encoder on real Fashion-MNIST, audited end to end.

Runs ``run_audit`` with ``paradigm = "contrastive"`` and every registered
unlearner that supports encoders, then measures, from the cached models of
that run, each membership signal the paradigm offers (``instance``,
``encodermi``, ``probe``) under the population attack and LiRA, so the choice
of the verdict's signal rests on numbers. Writes a Markdown report.

    nice .venv/bin/python benchmarks/contrastive.py                # ~20 min on 2 shared cores
    nice .venv/bin/python benchmarks/contrastive.py --limit 600 --epochs 5 --shadows 4  # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import unlearn_audit.attacks.registry as attack_registry
from unlearn_audit import (
    run_audit,
    unlearners,
)
from unlearn_audit.attacks.metrics import roc_metrics
from unlearn_audit.audit.config import from_dict
from unlearn_audit.audit.contrastive import Contrastive, fisher_z
from unlearn_audit.audit.inputs import AuditInputs, Setup, load_setup, resolve_methods
from unlearn_audit.audit.plan import Plan, derive_seed
from unlearn_audit.audit.production import Producer
from unlearn_audit.audit.rundir import ModelStore

FASHION = "/usr/share/datasets/fashion-mnist"
SIGNALS = ("instance", "encodermi", "probe")
ATTACKS = ("loss", "lira_online", "lira_offline")


def contrastive_methods() -> list[str]:
    """Registered unlearners that run on encoders, without the two controls."""
    return [
        n
        for n in unlearners.available()
        if "contrastive" in unlearners.get(n).paradigms and n not in ("noop", "retrain")
    ]


def config(a: argparse.Namespace) -> dict[str, Any]:
    # one U-LiRA bank per method would not fit the time budget
    attack: dict[str, Any] = {"shadows": a.shadows, "attacks": list(ATTACKS), "ulira": False}
    return {
        "name": "contrastive-benchmark",
        "paradigm": "contrastive",
        "device": "cpu",
        "data": {"dataset": "fashion-mnist", "root": a.root, "limit": a.limit},
        "model": {"arch": a.arch},
        "train": {"epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "augment": False},
        "forget": {"spec": f"random:{a.forget}"},
        "unlearn": {"methods": a.methods},
        "attack": attack,
        "verdict": {"n_boot": 1000},
        "contrastive": {"signal": a.signal},
    }


def models_of_run(cfg: Any, run: Path) -> tuple[Setup, Plan, dict[str, Any], list[Any]]:
    """The run's target models and shadows, loaded from its cache (nothing is retrained)."""
    setup, plan = load_setup(cfg, AuditInputs())
    p = Producer(setup, ModelStore(run / "models"), progress=False, log=lambda m: None)
    ospec, original = p.original(plan)
    targets = {"original": original.model}
    targets["reference"] = p.train(p.specs.reference(plan), False).model
    for method in resolve_methods(cfg, AuditInputs()):
        try:
            targets[method.name] = p.unlearn(
                p.specs.unlearned(method, ospec, plan), original.model
            ).model
        except Exception:  # a method that failed in the audit: left out here too
            continue
    shadows = [p.train(p.specs.shadow(plan, k), False).model for k in range(cfg.attack.shadows)]
    return setup, plan, targets, shadows


def auc(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    s = np.concatenate([scores[pos], scores[neg]])
    y = np.concatenate([np.ones(pos.size, bool), np.zeros(neg.size, bool)])
    return float(roc_metrics(s, y)["auc"])


def out_skew(shadow: np.ndarray, keep: np.ndarray) -> float:
    """Mean |skewness| over samples of the OUT shadows' signal (0 for a Gaussian)."""
    from scipy.stats import skew

    vals = np.where(~keep, shadow[:, :, 0], np.nan)
    return float(np.nanmean(np.abs(skew(vals, axis=0, nan_policy="omit"))))


def all_signals(
    p: Setup, targets: dict[str, Any], shadows: list[Any]
) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray], float]]:
    """Per signal: shadow array ``(m, n, 1)``, target signals, seconds per model."""
    base = p.paradigm.settings  # type: ignore[attr-defined]
    out = {}
    for name in SIGNALS:
        para = Contrastive(dataclasses.replace(base, signal=name))
        t0 = time.perf_counter()
        sh = np.stack([para.signals(m, p.ds, p.x, 1) for m in shadows])
        per = (time.perf_counter() - t0) / len(shadows)
        out[name] = (sh, {k: para.signals(m, p.ds, p.x, 1) for k, m in targets.items()}, per)
        if name == "encodermi":  # the logit-like transform it could take: Fisher's z
            sig = {k: fisher_z(v) for k, v in out[name][1].items()}
            out["encodermi, atanh"] = (fisher_z(sh), sig, per)
    return out


def signal_tables(
    p: Setup, plan: Plan, targets: dict[str, Any], shadows: list[Any]
) -> tuple[list[str], list[str]]:
    """Each signal under each attack (original / noop / reference), and per model."""
    att = [
        "| signal | attack | original: members vs non | noop: forget vs non "
        "| reference: forget vs non | OUT-shadow mean abs skew | seconds / model |",
        "|---|---|---|---|---|---|---|",
    ]
    names = [k for k in targets if k != "original"]
    per_model = [
        "| signal | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for name, (sh, sig, per) in all_signals(p, targets, shadows).items():
        sk = out_skew(sh, plan.keep)
        for attack in ATTACKS:
            a = attack_registry.get(attack)
            sc = {
                k: np.asarray(a.fn(s, sh if a.needs_shadows else None, plan.keep))
                for k, s in sig.items()
            }
            att.append(
                f"| {name} | {attack} | {auc(sc['original'], plan.members, plan.nonmembers):.3f} "
                f"| {auc(sc['noop'], plan.forget, plan.nonmembers):.3f} "
                f"| {auc(sc['reference'], plan.forget, plan.nonmembers):.3f} | {sk:.2f} "
                f"| {per:.1f} |"
            )
            if attack == "lira_online":
                cells = [f"{auc(sc[k], plan.forget, plan.nonmembers):.3f}" for k in names]
                per_model.append(f"| {name} | " + " | ".join(cells) + " |")
    return att, per_model


def encoder_rows(p: Setup, plan: Plan, original: Any, seconds: float) -> list[str]:
    """Utility and population MIA of the SimCLR original and of a MoCo v2 encoder."""
    from unlearn_audit.learning.train import fit, make_generator

    base = p.paradigm.settings  # type: ignore[attr-defined]
    moco = Contrastive(dataclasses.replace(base, method="moco", temperature=0.2))
    t0 = time.perf_counter()
    idx = torch.as_tensor(plan.members)
    model = fit(
        p.new_model(derive_seed(p.cfg.seed, "original")),
        p.x[idx],
        p.y[idx],
        moco.objective(p.ds, p.cfg.train).loss,
        p.cfg.train,
        make_generator(derive_seed(p.cfg.seed, "original"), p.device),
    )
    encoders = {
        "SimCLR (the original)": (original, seconds),
        "MoCo v2 (same recipe, T 0.2)": (model, time.perf_counter() - t0),
    }
    rows = [
        "| encoder | probe test | kNN test | instance AUC | EncoderMI AUC | train seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name, (m, sec) in encoders.items():
        u = p.paradigm.utility(m, p.x, p.y, plan)
        aucs = []
        for signal in ("instance", "encodermi"):
            para = Contrastive(dataclasses.replace(base, signal=signal))
            sig = para.signals(m, p.ds, p.x, 1)[:, 0]
            aucs.append(auc(sig, plan.members, plan.nonmembers))
        rows.append(
            f"| {name} | {u['probe_test_acc']:.3f} | {u['knn_test_acc']:.3f} "
            f"| {aucs[0]:.3f} | {aucs[1]:.3f} | {sec:.0f} |"
        )
    return rows


def model_table(r: dict[str, Any]) -> list[str]:
    att = r["verdicts"]["noop"].get("evidence", {}).get("attack", "lira_online")
    ref_auc = r["attacks"]["reference"][att]["forget_vs_nonmember"]["auc"]
    rows = [
        f"| model | probe forget | probe retain | probe test | kNN forget | kNN retain "
        f"| kNN test | forget AUC ({att}) | gap to reference | verdict | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in r["models"].items():
        u = m.get("utility")
        if u is None:
            rows.append(f"| {name} | failed: {m.get('error', '')} |||||||||")
            continue
        a = r["attacks"].get(name, {}).get(att, {}).get("forget_vs_nonmember", {})
        auc_f = a.get("auc", float("nan"))
        verdict = r["verdicts"].get(name, {}).get("status", "—")
        rows.append(
            f"| {name} | {u['probe_forget_acc']:.3f} | {u['probe_retain_acc']:.3f} "
            f"| {u['probe_test_acc']:.3f} | {u['knn_forget_acc']:.3f} | {u['knn_retain_acc']:.3f} "
            f"| {u['knn_test_acc']:.3f} | {auc_f:.3f} | {auc_f - ref_auc:+.3f} | {verdict} "
            f"| {m['seconds']:.1f} |"
        )
    return rows


def trained_seconds(run: Path) -> float:
    """Seconds recorded by every model in the run's cache (what a cold run spends training)."""
    import json

    return sum(json.loads(f.read_text()).get("seconds", 0.0) for f in run.glob("models/*.json"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=FASHION)
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--forget", type=float, default=0.2)
    ap.add_argument("--shadows", type=int, default=16)
    ap.add_argument("--signal", default="instance")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on shared cores)")
    ap.add_argument("--methods", nargs="*", default=contrastive_methods())
    ap.add_argument("--run", type=Path, default=Path("/tmp/unlearn-audit-contrastive-bench"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/contrastive.txt"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = from_dict(config(a))
    t0 = time.perf_counter()
    res = run_audit(cfg, a.run, progress=False, log=print, render_report=False)
    audit_s = time.perf_counter() - t0
    r = res.results
    p, plan, targets, shadows = models_of_run(cfg, a.run)
    sig_rows, per_model = signal_tables(p, plan, targets, shadows)
    enc_rows = encoder_rows(p, plan, targets["original"], r["models"]["original"]["seconds"])
    d = r["data"]
    lines = [
        f"# contrastive benchmark ({datetime.now():%Y-%m-%d %H:%M}); {platform.machine()}, "
        f"torch threads {torch.get_num_threads()}",
        f"# Fashion-MNIST pool n={d['n_pool']} (first n training images): members "
        f"{d['n_members']}, forget {d['n_forget']} (random), non-members {d['n_nonmembers']}",
        f"# SimCLR (T={p.paradigm.settings.temperature}), arch {a.arch}, "  # type: ignore[attr-defined]
        f"{a.epochs} epochs, batch {a.batch_size}, SGD lr {a.lr}; {a.shadows} shadows; "
        f"verdict signal: {a.signal}",
        f"# audit took {audit_s:.0f}s (models trained or unlearned for it, cached runs "
        f"included: {trained_seconds(a.run):.0f}s); controls separated: "
        f"{r['controls']['separated']} "
        f"{r['controls'].get('reasons', [])}",
        "",
        "## Encoders (linear probe / kNN on the representation; threshold AUC of the raw "
        "signal on members vs non-members, no shadows)",
        *enc_rows,
        "",
        "## Models (utility on the representation; forget AUC of the verdict's attack)",
        *model_table(r),
        "",
        "## Membership signals of encoders (AUC; LiRA over the same shadow encoders)",
        *sig_rows,
        "",
        "## Forget vs non-member AUC of lira_online per model and signal",
        *per_model,
        "",
        f"# total {time.perf_counter() - t0:.0f}s",
    ]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
