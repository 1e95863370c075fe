"""Difficulty benchmark: does the index learned on shadows rank the audited forget set?

Runs the whole audit through ``unlearn_audit.run_audit`` on real Fashion-MNIST (the pool
of ``configs/fashion-mnist.toml``: the first 10,000 images, an MLP, 30 epochs,
16 shadow models, U-LiRA on), 10% random forget, with ``finetune``,
``gradient_constraint`` and ``gradient_ascent`` (and the two controls), into a
persistent run directory, so a rerun trains nothing. Then, per method, from that
run's ``results.json`` and ``samples.csv`` only:

- Spearman ρ of the difficulty index and of each single feature with the
  audited model's realised residual on the forget set;
- the mean realised residual of the hardest and of the easiest decile, ordered by
  the index and by each feature (a feature is oriented by the sign of its
  Spearman on the *shadow* rows, so nothing is tuned on the audited model);
- a paired bootstrap CI of ρ(index) − ρ(best single feature), the feature chosen
  on the shadow rows (largest |ρ| there), oriented the same way.

Writes a Markdown report (default ``benchmarks/results/difficulty.txt``)::

    nice .venv/bin/python benchmarks/difficulty.py            # ~10 min on 2 shared cores, once
    nice .venv/bin/python benchmarks/difficulty.py --limit 1500 --shadows 8 --epochs 10 \\
        --run benchmarks/.cache/difficulty-smoke --out /tmp/difficulty-smoke.txt  # smoke
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

from unlearn_audit import run_audit
from unlearn_audit.audit.config import from_dict
from unlearn_audit.difficulty.index import spearman
from unlearn_audit.runfiles import read_samples

FASHION = "/usr/share/datasets/fashion-mnist"
METHODS = ("finetune", "gradient_constraint", "gradient_ascent")


def config(a: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": "fashion-difficulty",
        "seed": a.seed,
        "device": "cpu",
        "data": {"dataset": "fashion-mnist", "root": a.root, "limit": a.limit},
        "model": {"arch": "mlp"},
        "train": {"epochs": a.epochs, "batch_size": 64, "lr": 0.05, "augment": False},
        "forget": {"spec": "random:0.1"},
        "unlearn": {"methods": list(METHODS)},
        "attack": {"shadows": a.shadows, "ulira": True},
    }


def deciles(key: np.ndarray, outcome: np.ndarray) -> tuple[float, float]:
    """Mean outcome of the top and bottom 10% by ``key`` (larger = predicted harder)."""
    ok = np.isfinite(key) & np.isfinite(outcome)
    k, y = key[ok], outcome[ok]
    size = max(1, int(round(0.1 * k.size)))
    order = np.argsort(-k, kind="mergesort")
    return float(y[order[:size]].mean()), float(y[order[-size:]].mean())


def paired_ci(a: np.ndarray, b: np.ndarray, y: np.ndarray, n_boot: int = 1000) -> list[float]:
    """95% bootstrap CI of spearman(a, y) - spearman(b, y), resampling samples jointly."""
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(0, y.size, y.size)
        diffs.append(spearman(a[i], y[i]) - spearman(b[i], y[i]))
    d = np.asarray(diffs)
    d = d[np.isfinite(d)]
    return [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))]


def measure(run: Path) -> dict[str, Any]:
    """Per method: ρ, deciles and the index-vs-best-feature CI, from the run directory."""
    results = json.loads((run / "results.json").read_text())
    samples, note = read_samples(run)
    if samples is None:
        raise SystemExit(f"no samples.csv: {note}")
    rows = samples.rows("forget")
    feats = [c.removeprefix("feature.") for c in samples.numeric if c.startswith("feature.")]
    out: dict[str, Any] = {}
    for method, entry in results["difficulty"].items():
        if "error" in entry:
            out[method] = {"error": entry["error"]}
            continue
        y = samples.numeric[f"residual.{method}"][rows]
        index = samples.numeric[f"difficulty.{method}"][rows]
        sign = {f: (np.sign(entry["spearman_shadows"]["features"][f] or 0.0) or 1.0) for f in feats}
        keys = {
            "index": index,
            **{f: sign[f] * samples.numeric[f"feature.{f}"][rows] for f in feats},
        }
        best = max(feats, key=lambda f: abs(entry["spearman_shadows"]["features"][f] or 0.0))
        out[method] = {
            "rho": {name: spearman(k, y) for name, k in keys.items()},
            "rho_raw": {"index": entry["spearman"]["index"], **entry["spearman"]["features"]},
            "deciles": {name: deciles(k, y) for name, k in keys.items()},
            "best_on_shadows": best,
            "ci_index_minus_best": paired_ci(index, keys[best], y),
            "feasible": entry["feasibility"]["share"],
            "bar": entry["feasibility"]["bar"],
            "n": entry["n"],
            "n_fit": entry["n_fit"],
            "outcome_mean": entry["outcome_mean"],
            "index_on_shadows": entry["spearman_shadows"]["index"],
        }
    return {"methods": out, "features": feats, "results": results}


def _f(v: float | None, fmt: str = "+.3f") -> str:
    return "–" if v is None or not np.isfinite(v) else format(v, fmt)


def report(m: dict[str, Any], a: argparse.Namespace, wall: float, trained_s: float) -> str:
    feats, res = m["features"], m["results"]
    d = res["data"]
    lines = [
        f"# Difficulty benchmark ({datetime.now():%Y-%m-%d %H:%M})",
        "",
        f"fashion-mnist pool {d['n_pool']} (first {a.limit}), forget {d['n_forget']} "
        f"(10% random of {d['n_members']} members), mlp, {a.epochs} epochs, "
        f"{a.shadows} shadows, seed {a.seed}; run directory {a.run}",
        f"{platform.platform()}, torch {torch.__version__}, {torch.get_num_threads()} "
        f"thread(s); this invocation {wall / 60:.1f} min (phases {res['timings']}); "
        f"training recorded in the cache {trained_s / 60:.1f} min",
        "command: benchmarks/difficulty.py " + " ".join(sys.argv[1:]),
        "",
        "Spearman ρ with the audited model's realised residual on the forget set "
        "(features oriented by the sign of their ρ on the shadow rows; raw sign in "
        "results.json). Deciles: mean realised residual of the 10% predicted hardest / "
        "easiest.",
        "",
        "| method | n | ρ index | "
        + " | ".join(f"ρ {f}" for f in feats)
        + " | index: hardest / easiest decile | best feature (shadows): hardest / easiest "
        "| ρ(index) − ρ(best) [95% CI] | feasible at bar |",
        "|---" * (len(feats) + 7) + "|",
    ]
    for method, r in m["methods"].items():
        if "error" in r:
            lines.append(f"| {method} | error: {r['error']} |")
            continue
        b = r["best_on_shadows"]
        hi, lo = r["deciles"]["index"]
        bhi, blo = r["deciles"][b]
        ci = r["ci_index_minus_best"]
        diff = r["rho"]["index"] - r["rho"][b]
        lines.append(
            f"| {method} | {r['n']} | {_f(r['rho']['index'])} | "
            + " | ".join(_f(r["rho"][f]) for f in feats)
            + f" | {hi:.3f} / {lo:.3f} | {b}: {bhi:.3f} / {blo:.3f} | "
            f"{diff:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] | {_f(r['feasible'], '.0%')} "
            f"({r['bar']}) |"
        )
    lines += ["", "Decile means (hardest / easiest) of every ordering:", ""]
    for method, r in m["methods"].items():
        if "error" in r:
            continue
        cells = ", ".join(f"{k} {v[0]:.3f}/{v[1]:.3f}" for k, v in r["deciles"].items())
        lines.append(
            f"- {method} (mean residual {r['outcome_mean']:.3f}; index ρ on its "
            f"{r['n_fit']} shadow rows {_f(r['index_on_shadows'])}): {cells}"
        )
    lines += [
        "",
        "## raw",
        "",
        "```json",
        json.dumps({k: v for k, v in m["methods"].items()}, indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=FASHION)
    ap.add_argument("--limit", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--shadows", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (2 shared cores)")
    ap.add_argument("--run", default="benchmarks/.cache/fashion-difficulty")
    ap.add_argument("--out", default="benchmarks/results/difficulty.txt")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)

    run = Path(a.run)
    run_audit(
        from_dict(config(a)),
        run,
        progress=False,
        log=log,
        render_report=True,
        command="benchmarks/difficulty.py " + " ".join(sys.argv[1:]),
    )
    wall = time.perf_counter() - t0
    trained = sum(
        json.loads(p.read_text()).get("seconds", 0.0) for p in (run / "models").glob("*.json")
    )
    text = report(measure(run), a, wall, trained)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
