"""Contrastive unlearners on real Fashion-MNIST, judged by the audit (issue #15, item 5).

Per seed, one ``run_audit`` (``paradigm = "contrastive"``, SimCLR, 20% of the members
forgotten at random, as in Chen, Wang & Mi 2024) with the controls ``retrain`` and
``noop`` and the methods ``finetune``, ``gradient_ascent``, ``neggrad_plus``,
``l1_sparse``, ``ssd``, ``gradient_constraint`` (its two variants: ``member_only``, the
registry default, and ``matched``, which the audit hands its public non-member set as
``reference``; run as ``gradient_constraint_matched``, an in-memory instance) and
``alignment_calibration``, at their default parameters. Per model and seed:

* the audit's own numbers, from ``results.json``: the residual membership with its
  interval (``verdicts.<model>.evidence.residual``; 0 = as if retrained, 1 = the
  original) and the verdict, LiRA's forget-vs-non-member AUC, linear-probe and kNN
  test accuracy (``models.<model>.utility``), and the time as a fraction of the
  ``retrain`` control's;
* the seed paper's own metrics: accuracy, precision, recall and AUC of a classifier
  membership attack on the encoder (``benchmarks/encoder_mia.py`` says what it is).

``--tune`` first tunes ``gradient_constraint``'s open choices on a disjoint split
(``benchmarks/contrastive_tuning.py``), then adds the chosen setting to the evaluation
as ``gradient_constraint_tuned``. Every audit caches its models in ``--run/<split>``, so
a ``--tune`` run after a plain one with the same sizes retrains nothing of the latter.

    nice .venv/bin/python benchmarks/contrastive_unlearners.py --seeds 0 1 2
    nice .venv/bin/python benchmarks/contrastive_unlearners.py --seeds 0 1 2 --tune
    nice .venv/bin/python benchmarks/contrastive_unlearners.py --smoke   # minutes, no result

Defaults: docs/contrastive.md's benchmark setting (the first 1,000 Fashion-MNIST images,
500 members, 100 forgotten; ``mlp`` encoder, SimCLR T 0.2, 200 epochs, batch 128, SGD lr
0.05; 16 shadows). Measured on 2 cores (AVX-512 Xeon, one torch thread, 2026-12-06):
about 105 s of audit a seed, plus the classifier attack; ``--tune`` after a plain run
with the same ``--run`` took 2.8 minutes (its evaluation reuses the cached models).
Recorded in benchmarks/results/contrastive_unlearners.txt and
contrastive_unlearners_tuned.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unlearn_audit import run_audit, unlearners
from unlearn_audit.audit.config import from_dict
from unlearn_audit.audit.inputs import AuditInputs, load_setup, resolve_methods
from unlearn_audit.audit.production import Producer
from unlearn_audit.audit.rundir import ModelStore
from unlearn_audit.unlearners import Unlearner

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules
from contrastive_tuning import tune  # noqa: E402
from encoder_mia import DESCRIPTION, classifier_mia  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"
CONFIG_METHODS = [
    "finetune",
    "gradient_ascent",
    "neggrad_plus",
    "l1_sparse",
    "ssd",
    "gradient_constraint",
    "alignment_calibration",
]
MATCHED = "gradient_constraint_matched"
TUNED = "gradient_constraint_tuned"
SMOKE = {"limit": 400, "epochs": 10, "shadows": 4}
SKIP = {"original", "reference", "retrain", "noop", "planted"}  # rows_of puts these first


def named(registry_name: str, label: str, **params: Any) -> Unlearner:
    """The registered method under another name (an in-memory method of the audit)."""
    cls = unlearners.get(registry_name)
    return type(f"{cls.__name__}As{label.title()}", (cls,), {"name": label})(**params)


def config(a: argparse.Namespace, seed: int, methods: list[str]) -> dict[str, Any]:
    return {
        "name": f"contrastive-unlearners-seed{seed}",
        "paradigm": "contrastive",
        "seed": seed,
        "device": "cpu",
        "data": {"dataset": "fashion-mnist", "root": a.root, "limit": a.limit},
        "model": {"arch": a.arch},
        "train": {"epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "augment": False},
        "forget": {"spec": "random:0.2"},
        "unlearn": {"methods": methods},
        # no U-LiRA bank: one per method would cost a shadow bank of unlearnings each
        "attack": {"shadows": a.shadows, "ulira": False},
        "contrastive": {"batch_size": 0, "method": "simclr"},  # 0: the [train] batch
    }


def loaded_models(cfg: Any, run: Path, inputs: AuditInputs) -> tuple[Any, Any, dict, list]:
    """The run's audited encoders and shadows, from its cache (nothing is retrained)."""
    setup, plan = load_setup(cfg, inputs)
    p = Producer(setup, ModelStore(run / "models"), progress=False, log=lambda m: None)
    ospec, original = p.original(plan)
    targets = {"reference": p.train(p.specs.reference(plan), False).model}
    for method in resolve_methods(cfg, inputs):
        try:
            made = p.unlearn(p.specs.unlearned(method, ospec, plan), original.model)
        except Exception:  # failed in the audit: no row here either
            continue
        targets[method.name] = made.model
    shadows = [p.train(p.specs.shadow(plan, k), False).model for k in range(cfg.attack.shadows)]
    return setup, plan, targets, shadows


def rows_of(r: dict[str, Any], mia: dict[str, dict[str, float]], seed: int) -> list[dict]:
    """One row per model of one audit, from its results.json and the classifier attack."""
    retrain_s = r["models"]["retrain"]["seconds"]
    original = r["models"]["original"]["utility"]
    rows = []
    for name in ["reference", "retrain", "noop", *[m for m in r["models"] if m not in SKIP]]:
        m = r["models"][name]
        row: dict[str, Any] = {"model": name, "seed": seed}
        if m.get("utility") is None:
            rows.append({**row, "error": m.get("error", "failed")})
            continue
        ev = r["verdicts"].get(name, {}).get("evidence", {})
        res = ev.get("residual", {})
        lira = r["attacks"][name]["lira_online"]["forget_vs_nonmember"]["auc"]
        row.update(
            status=r["verdicts"].get(name, {}).get("status", "—"),
            residual=res.get("value"),
            residual_ci=res.get("ci"),
            residual_attack=res.get("attack"),
            lira_auc=lira,
            probe_test=m["utility"]["probe_test_acc"],
            knn_test=m["utility"]["knn_test_acc"],
            d_probe=m["utility"]["probe_test_acc"] - original["probe_test_acc"],
            seconds=m["seconds"],
            time_frac=m["seconds"] / retrain_s,
            **mia.get(name, {}),
        )
        rows.append(row)
    return rows


def run_seed(a: argparse.Namespace, seed: int, extra: list[Unlearner]) -> tuple[list, dict]:
    """One audit on the evaluation pool (first ``--limit`` images) with seed ``seed``."""
    cfg = from_dict(config(a, seed, CONFIG_METHODS))
    inputs = AuditInputs(methods=[named("gradient_constraint", MATCHED, variant="matched"), *extra])
    run = a.run / f"eval-seed{seed}"
    t0 = time.perf_counter()
    res = run_audit(cfg, run, inputs=inputs, progress=False, log=_log, render_report=False)
    audit_s = time.perf_counter() - t0
    setup, plan, targets, shadows = loaded_models(cfg, run, inputs)
    mia = classifier_mia(setup, plan, targets, shadows, seed)
    r = res.results
    info = {
        "seed": seed,
        "audit_seconds": audit_s,
        "seconds": time.perf_counter() - t0,
        "data": r["data"],
        "controls": r["controls"],
        "mdr": r.get("power", {}).get("mdr"),
    }
    print(f"# seed {seed}: {info['seconds']:.0f}s", file=sys.stderr)
    return rows_of(r, mia, seed), info


def _log(message: str) -> None:
    print(f"  {datetime.now():%H:%M:%S} {message}", file=sys.stderr)


def _pm(values: list[Any], fmt: str = "{:.3f}") -> str:
    v = np.asarray([x for x in values if x is not None], float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "—"
    sd = v.std(ddof=1) if v.size > 1 else 0.0
    return (fmt + " ± " + fmt).format(v.mean(), sd) + ("" if v.size == len(values) else "*")


def _ci(ci: list[Any] | None) -> str:
    if not ci:
        return "—"
    return "[" + ", ".join("∞" if c is None else f"{c:+.2f}" for c in ci) + "]"


def tables(rows: list[dict[str, Any]]) -> str:
    """Mean ± sd over seeds per model, then each seed's residual interval and verdict."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    out = [
        "| model | residual | verdicts | LiRA AUC | probe test | Δprobe vs original "
        "| kNN test | × retrain time | MIA acc | MIA precision | MIA recall | MIA AUC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in models:
        ok = [r for r in rows if r["model"] == name and "error" not in r]
        bad = [r for r in rows if r["model"] == name and "error" in r]
        if not ok:
            out.append(f"| {name} | failed: {bad[0]['error'][:60]} |" + " |" * 10)
            continue
        statuses = [r["status"] for r in ok]
        verdicts = ", ".join(f"{s} {statuses.count(s)}" for s in dict.fromkeys(statuses))
        verdicts = "—" if name == "reference" else verdicts
        cells = [
            _pm([r["residual"] for r in ok], "{:.2f}"),
            verdicts + (f" ({len(bad)} failed)" if bad else ""),
            *(_pm([r.get(k) for r in ok]) for k in ("lira_auc", "probe_test")),
            _pm([r["d_probe"] for r in ok], "{:+.3f}"),
            _pm([r["knn_test"] for r in ok]),
            _pm([r["time_frac"] for r in ok], "{:.3f}"),
            *(_pm([r.get(k) for r in ok]) for k in ("mia_acc", "mia_precision", "mia_recall")),
            _pm([r.get("mia_auc") for r in ok]),
        ]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    per_seed = [
        "| model | " + " | ".join(f"seed {s}: residual [CI], verdict" for s in seeds) + " |",
        "|---|" + "---|" * len(seeds),
    ]
    for name in models:
        cells = []
        for s in seeds:
            r = next((r for r in rows if r["model"] == name and r["seed"] == s), None)
            if r is None or "error" in r:
                cells.append("failed" if r else "—")
            elif r["model"] == "reference":  # residual 0 by definition
                cells.append("—")
            elif r["residual"] is None:
                cells.append(f"undefined {_ci(r['residual_ci'])}, {r['status']}")
            else:
                cells.append(f"{r['residual']:+.2f} {_ci(r['residual_ci'])}, {r['status']}")
        per_seed.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n\n" + "\n".join(per_seed) + "\n"


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.platform()}; {cpu}, {torch.get_num_threads()} torch thread(s) "
        f"(os.cpu_count {os.cpu_count()}); torch {torch.__version__}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--root", default=FASHION)
    ap.add_argument("--limit", type=int, default=1000, help="pool: the first N images")
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--shadows", type=int, default=16)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on shared cores)")
    ap.add_argument("--tune", action="store_true", help="tune gradient_constraint first")
    ap.add_argument("--tune-offset", type=int, default=10000, help="tuning pool's first image")
    ap.add_argument("--tune-seed", type=int, default=100)
    ap.add_argument("--smoke", action="store_true", help=f"tiny sizes {SMOKE}; no result")
    ap.add_argument("--run", type=Path, default=Path("/tmp/unlearn-audit-contrastive-unlearners"))
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    if a.smoke:
        for k, v in SMOKE.items():
            setattr(a, k, v)
        a.run = a.run.with_name(a.run.name + "-smoke")
    a.out = a.out or Path(
        "/tmp/contrastive_unlearners_smoke.txt"
        if a.smoke
        else f"benchmarks/results/contrastive_unlearners{'_tuned' if a.tune else ''}.txt"
    )
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    head: list[str] = []
    extra: list[Unlearner] = []
    if a.tune:
        chosen, tuning_lines = tune(a, config, named, _log)
        head += tuning_lines
        if chosen is not None:  # None: the default, which the gradient_constraint row is
            extra.append(named("gradient_constraint", TUNED, **chosen))
    rows, infos = [], []
    for seed in a.seeds:
        seed_rows, info = run_seed(a, seed, extra)
        rows += seed_rows
        infos.append(info)
    total = time.perf_counter() - t0
    d = infos[0]["data"]
    lines = [
        f"# contrastive unlearners benchmark ({datetime.now():%Y-%m-%d %H:%M})"
        + (" — SMOKE SIZES, NOT A RESULT" if a.smoke else ""),
        f"# machine: {machine()}",
        f"# command: {shlex.join([sys.executable, *sys.argv])}",
        f"# Fashion-MNIST pool n={d['n_pool']} (the first n training images): members "
        f"{d['n_members']}, forget {d['n_forget']} (random 20%), non-members "
        f"{d['n_nonmembers']}, public {d['n_public']}; SimCLR (T 0.2), arch {a.arch}, "
        f"{a.epochs} epochs, batch {a.batch_size}, SGD lr {a.lr}; {a.shadows} shadows; "
        f"verdict signal instance; seeds {a.seeds}",
        f"# MIA columns: {DESCRIPTION.format(views=10, shadows=a.shadows)}",
        "# per seed: "
        + "; ".join(
            f"seed {i['seed']} {i['seconds']:.0f}s (audit {i['audit_seconds']:.0f}s), MDR "
            f"{i['mdr'] if i['mdr'] is None else round(i['mdr'], 2)}, controls separated "
            f"{i['controls']['separated']}"
            for i in infos
        ),
        f"# total {total / 60:.1f} min",
        *head,
        "",
        "## Mean ± sd over seeds (* = some seeds had no value)",
        "",
        tables(rows),
        "## raw rows",
        "",
        json.dumps({"rows": rows, "seeds": infos}, indent=1, default=str),
    ]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[: lines.index("## raw rows")]))


if __name__ == "__main__":
    main()
