"""Benchmark: the README's first command, end to end, on the embedded default.

Runs ``unlearn-audit audit`` with no argument but ``--out`` in a fresh
directory (nothing cached), for one or more seeds, and records wall time,
the controls' outcome and the forget-vs-non-member LiRA AUCs that the README
quotes. Usage::

    python benchmarks/default_audit.py [--seeds 0 1 2] [--out benchmarks/results/default_audit.txt]
    python benchmarks/default_audit.py --paradigm contrastive \
        --out benchmarks/results/contrastive_default.txt
    python benchmarks/default_audit.py --config configs/contrastive-digits.toml \
        --out benchmarks/results/contrastive_digits.txt
    python benchmarks/default_audit.py --paradigm contrastive --seeds 0 1 2 \
        --keep runs/contrastive-default --out benchmarks/results/contrastive_default.txt

``--paradigm`` and ``--config`` are passed on to ``unlearn-audit audit``, and so is
everything after ``--`` (e.g. ``-- --shadows 64``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(seed: int, extra: list[str], keep: Path | None = None) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = keep / f"seed{seed}" if keep else Path(tmp) / "run"
        if out.exists():
            raise SystemExit(f"{out} exists: --keep needs a fresh folder (nothing cached)")
        cmd = [
            sys.executable,
            "-m",
            "unlearn_audit",
            "audit",
            "--out",
            str(out),
            "--quiet",
            "--seed",
            str(seed),
            *extra,
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        r = json.loads((out / "results.json").read_text())
    auc = {m: r["attacks"][m]["lira_online"]["forget_vs_nonmember"] for m in r["attacks"]}
    return {
        "seed": seed,
        "wall_s": wall,
        "timings": r["timings"],
        "separated": r["controls"]["separated"],
        "reasons": r["controls"]["reasons"],
        "fq": {m: f.get("forget_quality") for m, f in r.get("forgetting", {}).items()},
        "status": {m: v["status"] for m, v in r["verdicts"].items()},
        "ci": {m: v["evidence"].get("ci") for m, v in r["verdicts"].items()},
        "residual": {m: v["evidence"].get("residual") for m, v in r["verdicts"].items()},
        "records": {
            m: v["evidence"].get("records", {}).get("n_recognisable")
            for m, v in r["verdicts"].items()
        },
        "power": r.get("power", {}),
        "n_forget": r["data"]["n_forget"],
        "auc": {m: (a["auc"], a["auc_ci"]) for m, a in auc.items()},
        "test_acc": {m: (v["utility"] or {}).get("test_acc") for m, v in r["models"].items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", default="benchmarks/results/default_audit.txt")
    ap.add_argument("--paradigm", help="passed on: --paradigm")
    ap.add_argument("--config", help="passed on: --config")
    ap.add_argument(
        "--keep",
        type=Path,
        help="keep each run directory as KEEP/seedN (e.g. for benchmarks/difficulty.py "
        "--measure); it must not exist yet",
    )
    ap.add_argument("audit_args", nargs="*", help="after --: passed on to the audit as they are")
    args = ap.parse_args()
    extra = [*(["--paradigm", args.paradigm] if args.paradigm else [])]
    extra += ["--config", args.config] if args.config else []
    extra += args.audit_args
    lines = [
        f"# unlearn-audit default audit benchmark ({time.strftime('%Y-%m-%d %H:%M')})",
        f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}",
        f"# command: unlearn-audit audit --out RUN --quiet --seed SEED {' '.join(extra)} "
        "(fresh RUN)",
    ]
    for seed in args.seeds:
        res = one(seed, extra, args.keep)
        lines.append(f"\nseed {seed}: wall {res['wall_s']:.1f} s, phases {res['timings']}")
        power = res["power"]
        lines.append(
            f"  controls separated: {res['separated']}; {res['n_forget']} forget samples; "
            f"MDR {power.get('mdr')}"
        )
        lines += [f"    - {reason}" for reason in res["reasons"]]  # type: ignore[attr-defined]
        for m, (a, ci) in res["auc"].items():  # type: ignore[attr-defined]
            st = res["status"].get(m, "-")  # type: ignore[attr-defined]
            d = res["ci"].get(m)  # type: ignore[attr-defined]
            dci = f" diff-CI [{d[0]:+.3f}, {d[1]:+.3f}]" if d else ""
            fq = res["fq"].get(m)  # type: ignore[attr-defined]
            dci += f" F {fq:.3f}" if fq is not None else ""
            rr = res["residual"].get(m)  # type: ignore[attr-defined]
            if rr:
                lo, hi = (("inf" if v is None else f"{v:+.2f}") for v in rr["ci"])
                value = "?" if rr["value"] is None else f"{rr['value']:+.2f}"
                dci += f" residual {value} [{lo}, {hi}] ({rr['attack']})"
                dci += f" recognisable {res['records'].get(m)}"  # type: ignore[attr-defined]
            lines.append(
                f"  {m:<16} AUC {a:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] "
                f"test_acc {res['test_acc'][m] or float('nan'):.3f} {st}{dci}"
            )  # type: ignore[index]
        print("\n".join(lines[-(len(res["auc"]) + 2 + len(res["reasons"])) :]), flush=True)  # type: ignore[arg-type]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
