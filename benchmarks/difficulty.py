"""Difficulty benchmark: does the index learned on shadows rank the audited forget set?

Three ways to call it:

- classifier (the default): runs the whole audit through ``unlearn_audit.run_audit`` on
  real Fashion-MNIST (the pool of ``configs/fashion-mnist.toml``: the first 10,000
  images, an MLP, 30 epochs, 16 shadow models, U-LiRA on), 10% random forget, with
  ``finetune``, ``gradient_constraint`` and ``gradient_ascent`` (and the two controls),
  into a persistent run directory, so a rerun trains nothing;
- ``--paradigm contrastive``: the default contrastive audit (``unlearn-audit audit
  --paradigm contrastive``: embedded digits, every default unless ``--limit``,
  ``--epochs`` or ``--shadows`` is given), one run directory per ``--seeds`` seed
  (``RUN-s<seed>``), with the encoder's difficulty features (docs/difficulty.md);
- ``--measure RUN [RUN ...]``: measures finished run directories only (any paradigm;
  nothing is trained).

Then, per run and method, from ``results.json`` and ``samples.csv`` only:

- Spearman ρ of the difficulty index and of each single feature with the audited
  model's realised residual on the forget set, each with a 95% bootstrap interval
  (forget samples resampled, 1,000 replicates); a feature is oriented by the sign of
  its Spearman on the *shadow* rows, so nothing is tuned on the audited model;
- ρ(index) − ρ(best single feature) with a paired bootstrap interval, the feature
  chosen on the shadow rows (largest |ρ| there), and whether the index beats it (the
  interval above 0), loses to it (below 0) or neither is resolved; beside it the same
  against the feature that is best on the audited model itself (post hoc, optimistic
  for the feature);
- the mean realised residual of the hardest and of the easiest decile by the index and
  by that feature.

With several runs, a pooled table gives the mean over runs of every ρ and of the
difference, its interval from resampling each run's forget samples together.

Writes a Markdown report (default ``benchmarks/results/difficulty.txt``)::

    nice .venv/bin/python benchmarks/difficulty.py            # ~10 min on 2 shared cores, once
    nice .venv/bin/python benchmarks/difficulty.py --limit 1500 --shadows 8 --epochs 10 \\
        --run benchmarks/.cache/difficulty-smoke --out /tmp/difficulty-smoke.txt  # smoke
    nice .venv/bin/python benchmarks/difficulty.py --paradigm contrastive --seeds 0 1 2 \\
        --run benchmarks/.cache/contrastive-difficulty \\
        --out benchmarks/results/difficulty_contrastive.txt
    nice .venv/bin/python benchmarks/difficulty.py --paradigm contrastive --limit 200 \\
        --epochs 2 --shadows 4 --run /tmp/cl-smoke --out /tmp/cl-smoke.txt  # smoke, ~10 s
    nice .venv/bin/python benchmarks/difficulty.py --measure RUN_A RUN_B --out /tmp/m.txt
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata

from unlearn_audit import run_audit
from unlearn_audit.audit.config import from_dict
from unlearn_audit.runfiles import read_results, read_samples

FASHION = "/usr/share/datasets/fashion-mnist"
METHODS = ("finetune", "gradient_constraint", "gradient_ascent")
N_BOOT = 1000


def classifier_config(a: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": "fashion-difficulty",
        "seed": a.seed,
        "device": "cpu",
        "data": {"dataset": "fashion-mnist", "root": a.root, "limit": a.limit or 10000},
        "model": {"arch": "mlp"},
        "train": {"epochs": a.epochs or 30, "batch_size": 64, "lr": 0.05, "augment": False},
        "forget": {"spec": "random:0.1"},
        "unlearn": {"methods": list(METHODS)},
        "attack": {"shadows": a.shadows or 16, "ulira": True},
    }


def contrastive_config(a: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The default contrastive audit (what ``--paradigm contrastive`` runs), U-LiRA on."""
    table: dict[str, Any] = {
        "name": "contrastive-difficulty",
        "seed": seed,
        "device": "cpu",
        "paradigm": "contrastive",
        "attack": {"ulira": True},
    }
    if a.limit:
        table["data"] = {"limit": a.limit}
    if a.epochs:
        table["train"] = {"epochs": a.epochs}
    if a.shadows:
        table["attack"]["shadows"] = a.shadows
    return table


def spearman_columns(keys: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of every column of ``keys (n, p)`` with ``y (n,)`` (average ranks)."""
    rk = rankdata(keys, axis=0)
    ry = rankdata(y)
    rk, ry = rk - rk.mean(0), ry - ry.mean()
    denom = np.sqrt((rk * rk).sum(0) * (ry * ry).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rk * ry[:, None]).sum(0) / denom, np.nan)


def bootstrap(keys: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, p)`` Spearman ρ of every key on forget samples drawn with replacement."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, keys.shape[1]))
    for b in range(n_boot):
        i = rng.integers(0, y.size, y.size)
        out[b] = spearman_columns(keys[i], y[i])
    return out


def interval(draws: np.ndarray) -> list[float]:
    d = draws[np.isfinite(draws)]
    if d.size == 0:
        return [float("nan"), float("nan")]
    return [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))]


def decide(ci: list[float]) -> str:
    if ci[0] > 0:
        return "index better"
    if ci[1] < 0:
        return "feature better"
    return "not resolved"


def deciles(key: np.ndarray, outcome: np.ndarray) -> tuple[float, float]:
    """Mean outcome of the top and bottom 10% by ``key`` (larger = predicted harder)."""
    size = max(1, int(round(0.1 * key.size)))
    order = np.argsort(-key, kind="mergesort")
    return float(outcome[order[:size]].mean()), float(outcome[order[-size:]].mean())


def measure_method(
    entry: dict[str, Any], samples: Any, method: str, feats: list[str], seed: int
) -> dict[str, Any]:
    rows = samples.rows("forget")
    y = samples.numeric[f"residual.{method}"][rows]
    shadow_rho = entry["spearman_shadows"]["features"]
    sign = {f: (np.sign(shadow_rho.get(f) or 0.0) or 1.0) for f in feats}
    names = ["index", *feats]
    keys = np.column_stack(
        [samples.numeric[f"difficulty.{method}"][rows]]
        + [sign[f] * samples.numeric[f"feature.{f}"][rows] for f in feats]
    )
    ok = np.isfinite(keys).all(1) & np.isfinite(y)  # rows with every key and the outcome
    keys, y = keys[ok], y[ok]
    rho = dict(zip(names, spearman_columns(keys, y), strict=True))
    boot = bootstrap(keys, y, N_BOOT, seed)
    best = max(feats, key=lambda f: abs(shadow_rho.get(f) or 0.0))
    post = max(feats, key=lambda f: abs(rho[f]) if np.isfinite(rho[f]) else -1.0)
    j, jp = names.index(best), names.index(post)
    turn = np.sign(rho[post]) or 1.0  # post hoc: oriented on the audited model too
    ci_best = interval(boot[:, 0] - boot[:, j])
    ci_post = interval(boot[:, 0] - turn * boot[:, jp])
    return {
        "n": int(y.size),
        "outcome_mean": float(y.mean()) if y.size else float("nan"),
        "rho": rho,
        "rho_ci": {n: interval(boot[:, k]) for k, n in enumerate(names)},
        "best_on_shadows": best,
        "diff_best": rho["index"] - rho[best],
        "ci_best": ci_best,
        "decision": decide(ci_best),
        "best_post_hoc": post,
        "diff_post": rho["index"] - turn * rho[post],
        "ci_post": ci_post,
        "deciles": {"index": deciles(keys[:, 0], y), best: deciles(keys[:, j], y)},
        "feasible": entry["feasibility"]["share"],
        "bar": entry["feasibility"]["bar"],
        "n_fit": entry["n_fit"],
        "index_on_shadows": entry["spearman_shadows"]["index"],
        "_boot": boot,
        "_names": names,
    }


def measure(run: Path, seed: int = 0) -> dict[str, Any]:
    """Per method: ρ with intervals, the index against the best single feature."""
    results = read_results(run)
    samples, note = read_samples(run, results)
    if samples is None:
        raise SystemExit(f"{run}: no samples.csv: {note}")
    feats = [c.removeprefix("feature.") for c in samples.numeric if c.startswith("feature.")]
    if not results.get("difficulty"):
        raise SystemExit(f"{run}: results.json has no difficulty block (U-LiRA or difficulty off)")
    out: dict[str, Any] = {}
    for method, entry in results["difficulty"].items():
        out[method] = (
            {"error": entry["error"]}
            if "error" in entry
            else measure_method(entry, samples, method, feats, seed)
        )
    return {"run": str(run), "methods": out, "features": feats, "results": results}


def _f(v: float | None, fmt: str = "+.3f") -> str:
    return "–" if v is None or not np.isfinite(v) else format(v, fmt)


def _ci(c: list[float]) -> str:
    return f"[{_f(c[0])}, {_f(c[1])}]"


def run_table(m: dict[str, Any]) -> list[str]:
    feats, res = m["features"], m["results"]
    d, cfg = res["data"], res.get("config", {})
    shadows = (cfg.get("attack") or {}).get("shadows")
    lines = [
        f"## {m['run']}",
        "",
        f"paradigm {res.get('paradigm', {}).get('name')}, {d.get('dataset')} pool {d['n_pool']}, "
        f"forget {d['n_forget']} of {d['n_members']} members, {shadows} shadows, seed "
        f"{cfg.get('seed')}; phases {res.get('timings')}",
        "",
        "| method | n | mean residual | ρ index [95% CI] | "
        + " | ".join(f"ρ {f} [95% CI]" for f in feats)
        + " | best on shadows | ρ(index) − ρ(best) [95% CI] | index vs best | best post hoc: "
        "ρ(index) − ρ(it) [95% CI] | deciles (hardest / easiest): index; best | feasible |",
        "|---" * (len(feats) + 10) + "|",
    ]
    for method, r in m["methods"].items():
        if "error" in r:
            lines.append(f"| {method} | error: {r['error']} |")
            continue
        b = r["best_on_shadows"]
        (hi, lo), (bhi, blo) = r["deciles"]["index"], r["deciles"][b]
        lines.append(
            f"| {method} | {r['n']} | {r['outcome_mean']:.3f} | "
            f"{_f(r['rho']['index'])} {_ci(r['rho_ci']['index'])} | "
            + " | ".join(f"{_f(r['rho'][f])} {_ci(r['rho_ci'][f])}" for f in feats)
            + f" | {b} | {_f(r['diff_best'])} {_ci(r['ci_best'])} | {r['decision']} | "
            f"{r['best_post_hoc']}: {_f(r['diff_post'])} {_ci(r['ci_post'])} | "
            f"{hi:.3f} / {lo:.3f}; {bhi:.3f} / {blo:.3f} | {_f(r['feasible'], '.0%')} "
            f"({r['bar']}) |"
        )
    return [*lines, ""]


def pooled_table(ms: list[dict[str, Any]]) -> list[str]:
    """Mean over runs of each ρ, and of ρ(index) − ρ(each run's best on its shadows)."""
    feats = ms[0]["features"]
    methods = [
        k
        for k in ms[0]["methods"]
        if all("error" not in m["methods"].get(k, {"error": "absent"}) for m in ms)
    ]
    lines = [
        f"## pooled over {len(ms)} runs",
        "",
        "Mean over runs; intervals resample every run's forget samples together.",
        "",
        "| method | ρ index [95% CI] | "
        + " | ".join(f"ρ {f}" for f in feats)
        + " | ρ(index) − ρ(best on shadows) [95% CI] | index vs best | best per run |",
        "|---" * (len(feats) + 5) + "|",
    ]
    for method in methods:
        rs = [m["methods"][method] for m in ms]
        if any(r["_names"] != rs[0]["_names"] for r in rs):
            lines.append(f"| {method} | the runs have different features |")
            continue
        names = rs[0]["_names"]
        mean_rho = {n: float(np.mean([r["rho"][n] for r in rs])) for n in names}
        diffs = np.mean(
            [r["_boot"][:, 0] - r["_boot"][:, names.index(r["best_on_shadows"])] for r in rs],
            axis=0,
        )
        point = float(np.mean([r["diff_best"] for r in rs]))
        ci = interval(diffs)
        index_ci = interval(np.mean([r["_boot"][:, 0] for r in rs], axis=0))
        lines.append(
            f"| {method} | {_f(mean_rho['index'])} {_ci(index_ci)} | "
            + " | ".join(_f(mean_rho[f]) for f in feats)
            + f" | {_f(point)} {_ci(ci)} | {decide(ci)} | "
            + ", ".join(r["best_on_shadows"] for r in rs)
            + " |"
        )
    return [*lines, ""]


def report(ms: list[dict[str, Any]], header: list[str]) -> str:
    lines = [
        f"# Difficulty benchmark ({datetime.now():%Y-%m-%d %H:%M})",
        "",
        *header,
        f"{platform.platform()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)",
        "command: benchmarks/difficulty.py " + " ".join(sys.argv[1:]),
        "",
        "Spearman ρ with the audited model's realised residual on the forget set, 95% "
        f"bootstrap intervals ({N_BOOT} replicates of the forget samples); features oriented "
        "by the sign of their ρ on the shadow rows (raw sign in results.json). 'index vs best': "
        "'index better' / 'feature better' when the interval of the difference excludes 0.",
        "",
    ]
    for m in ms:
        lines += run_table(m)
    if len(ms) > 1:
        lines += pooled_table(ms)
    raw = {
        m["run"]: {
            k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")}
            for k, v in m["methods"].items()
        }
        for m in ms
    }
    lines += ["## raw", "", "```json", json.dumps(raw, indent=1), "```", ""]
    return "\n".join(lines)


def audit(table: dict[str, Any], run: Path, log: Any) -> None:
    run_audit(
        from_dict(table),
        run,
        progress=False,
        log=log,
        render_report=True,
        command="benchmarks/difficulty.py " + " ".join(sys.argv[1:]),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paradigm", choices=("supervised", "contrastive"), default="supervised")
    ap.add_argument("--measure", nargs="+", type=Path, help="finished run directories only")
    ap.add_argument("--root", default=FASHION)
    ap.add_argument("--limit", type=int, default=0, help="0: 10000 (classifier) / default")
    ap.add_argument("--epochs", type=int, default=0, help="0: 30 (classifier) / default")
    ap.add_argument("--shadows", type=int, default=0, help="0: 16 (classifier) / default")
    ap.add_argument("--seed", type=int, default=0, help="classifier run's seed")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="contrastive runs")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (2 shared cores)")
    ap.add_argument("--run", help="run directory (contrastive: the prefix of RUN-s<seed>)")
    ap.add_argument("--out", default="benchmarks/results/difficulty.txt")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)

    if a.measure:
        runs, header = list(a.measure), ["measured finished run directories"]
    elif a.paradigm == "contrastive":
        prefix = a.run or "benchmarks/.cache/contrastive-difficulty"
        runs = [Path(f"{prefix}-s{s}") for s in a.seeds]
        for seed, run in zip(a.seeds, runs, strict=True):
            audit(contrastive_config(a, seed), run, log)
        header = [f"default contrastive audit, seeds {a.seeds}, into {prefix}-s<seed>"]
    else:
        runs = [Path(a.run or "benchmarks/.cache/fashion-difficulty")]
        audit(classifier_config(a), runs[0], log)
        header = [f"fashion-mnist classifier audit ({classifier_config(a)}) into {runs[0]}"]
    if not a.measure:
        trained = sum(
            json.loads(p.read_text()).get("seconds", 0.0)
            for run in runs
            for p in (run / "models").glob("*.json")
        )
        header.append(
            f"this invocation {(time.perf_counter() - t0) / 60:.1f} min; training recorded in "
            f"the cache {trained / 60:.1f} min"
        )
    text = report([measure(run) for run in runs], header)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
