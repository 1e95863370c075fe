"""Benchmark: the same audits under ``local`` and ``ray`` (1 and 2 workers), side by side.

Two audits, each from a fresh run directory (nothing cached), in one run of this script
so the ratios share the machine's load:

- ``default``: the embedded default audit (``unlearn-audit audit``: digits, 64 shadows).
- ``fashion64``: ``configs/fashion-mnist.toml`` (64 shadows, Fashion-MNIST from
  ``/usr/share/datasets/fashion-mnist``).

Modes (each audit in its own child process, so imports, Ray's start and the workers'
start count in its wall time):

- ``local``: ``--executor local`` with torch's default thread count (today's default).
- ``local-1t``: ``local`` with one torch thread: the reference the Ray runs must equal.
- ``ray-1w`` / ``ray-2w``: a private Ray instance of 1 or 2 CPUs, one torch thread per
  job (``cpus_per_job = 1``), so 1 or 2 jobs run at once.

For every mode: wall time, the audit's own phase times, the ratio to ``local``, and
whether its results.json numbers equal ``local-1t``'s (times and provenance aside).
Repeats alternate the modes. Usage::

    python benchmarks/scaling.py                         # writes benchmarks/results/scaling.txt
    python benchmarks/scaling.py --repeats 3 --audits default
    python benchmarks/scaling.py --quick                 # seconds-long smoke test (tiny audits)

Run it on a quiet machine: another process on the cores distorts every ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODES = ("local", "local-1t", "ray-1w", "ray-2w")
AUDITS: dict[str, dict[str, Any]] = {
    "default": {},
    "fashion64": {"config": "configs/fashion-mnist.toml", "attack": {"shadows": 64}},
}
QUICK = {  # tiny settings for a smoke test of this script (figures mean nothing)
    "default": {"data": {"limit": 240}, "train": {"epochs": 2}, "attack": {"shadows": 4}},
    "fashion64": {"data": {"limit": 400}, "train": {"epochs": 2}, "attack": {"shadows": 4}},
}


def child(mode: str, audit: str, out: str, quick: bool) -> None:
    """Run one audit in this process (``--child``) and print its summary as JSON."""
    import torch

    from unlearn_audit import run_audit
    from unlearn_audit.audit.config import from_dict, load_toml, merge

    if mode != "local":
        torch.set_num_threads(1)
    spec = dict(AUDITS[audit])
    path = spec.pop("config", None)
    table = merge(load_toml(ROOT / path) if path else {}, spec)
    if quick:
        table = merge(table, QUICK[audit])
    if mode.startswith("ray"):
        import ray

        ray.init(
            address="local", num_cpus=int(mode[4]), include_dashboard=False, log_to_driver=False
        )
        table = merge(table, {"execution": {"executor": "ray", "cpus_per_job": 1.0}})
    t0 = time.perf_counter()
    res = run_audit(from_dict(table), out, progress=False, log=lambda m: None)
    wall = time.perf_counter() - t0
    r = json.loads(json.dumps(res.results))
    timings = r.pop("timings")
    r.pop("run")
    r["config"].pop("execution")
    for model in r["models"].values():
        model.pop("seconds")
    stable = json.dumps(r, sort_keys=True)
    print(
        json.dumps(
            {
                "audit_s": wall,
                "timings": timings,
                "threads": torch.get_num_threads(),
                "results": stable,
                "statuses": {m: v["status"] for m, v in r["verdicts"].items()},
            }
        )
    )


def one(mode: str, audit: str, quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--child", mode, audit, str(Path(tmp) / "run")]
        cmd += ["--quick"] if quick else []
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{mode} {audit} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**out, "wall_s": wall}


def machine() -> list[str]:
    import torch

    try:
        import ray

        ray_version = ray.__version__
    except ImportError:
        ray_version = "not installed"
    return [
        f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.platform()}",
        f"# python {platform.python_version()}, torch {torch.__version__} "
        f"(default threads {torch.get_num_threads()}), ray {ray_version}",
        "# load average at start (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--audits", nargs="+", default=list(AUDITS), choices=list(AUDITS))
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="tiny audits: a smoke test only")
    ap.add_argument("--out", help="default: benchmarks/results/scaling.txt (--quick: a temp file)")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "AUDIT", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, audit, run = args.child
        child(mode, audit, run, quick=args.quick)
        return
    default_out = Path(tempfile.gettempdir()) / "scaling_quick.txt" if args.quick else None
    out = Path(args.out or default_out or ROOT / "benchmarks/results/scaling.txt")
    lines = [
        f"# unlearn-audit scaling benchmark ({time.strftime('%Y-%m-%d %H:%M')})"
        + (" -- QUICK SMOKE TEST, figures mean nothing" if args.quick else ""),
        *machine(),
        f"# command: python benchmarks/scaling.py {' '.join(sys.argv[1:])}",
        "# wall = the child process (imports, Ray start, workers' start, audit); "
        "audit = run_audit alone; median of the repeats",
        "# modes: local = torch default threads; local-1t = one thread; "
        "ray-Nw = private Ray of N CPUs, one torch thread per job",
    ]
    for audit in args.audits:
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.modes}
        for rep in range(args.repeats):
            for mode in args.modes:
                res = one(mode, audit, args.quick)
                runs[mode].append(res)
                print(f"{audit} {mode} repeat {rep}: wall {res['wall_s']:.1f} s", flush=True)
        lines += _table(audit, runs)
        print("\n".join(lines[-(len(args.modes) + 4) :]), flush=True)
    lines.append("# load average at end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"written {out}")


def _table(audit: str, runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode])

    base = med("local", "wall_s") if runs.get("local") else None
    ref = {r["results"] for r in runs.get("local-1t", [])}
    lines = [
        f"\n## {audit}",
        f"{'mode':<9} {'wall s':>8} {'audit s':>8} {'speedup':>8} {'= local-1t':>10}  phases "
        "(first repeat)",
    ]
    for mode, rs in runs.items():
        wall, inner = med(mode, "wall_s"), med(mode, "audit_s")
        ratio = f"{base / wall:.2f}" if base else "-"
        same = (
            "-"
            if not ref or mode == "local-1t"
            else ("yes" if {r["results"] for r in rs} == ref else "NO")
        )
        phases = {k: v for k, v in rs[0]["timings"].items() if k != "total_seconds"}
        lines.append(f"{mode:<9} {wall:>8.1f} {inner:>8.1f} {ratio:>8} {same:>10}  {phases}")
    statuses = runs[next(iter(runs))][0]["statuses"]
    lines.append(f"verdicts: {statuses}")
    return lines


if __name__ == "__main__":
    main()
