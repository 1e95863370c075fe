"""Benchmark: does the unlearning-aware audit tell the controls apart on real Fashion-MNIST?

Runs the whole audit (``unlearn_audit.run_audit``) on real Fashion-MNIST (Debian's
``dataset-fashion-mnist``) with U-LiRA banks for the controls and for
``finetune`` and ``gradient_ascent``, then records, per judged model, the
verdict, every verdict attack's AUC difference to the retrained reference
with its interval, the U-LiRA AUC, the median per-example ε and the forget
quality F with the interval of ``F(method) - F(retrain control)``
(docs/verdict.md). The question (issue 3): is F of ``noop`` clearly apart from
F of ``retrain``, and do ``finetune`` and ``gradient_ascent`` fall between?

The run directory is a cache: a rerun with the same arguments trains nothing.
Usage (about 10-15 minutes on 2 CPU cores from scratch)::

    python benchmarks/ulira_fashion.py [--shadows 64] [--limit 2000] \\
        [--out benchmarks/results/ulira_fashion.txt]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

# benchmarks/attacks.py and benchmarks/unlearners.py are named like the packages: drop this
# script's own folder from the import path so the packages are found.
import torch

from unlearn_audit import run_audit
from unlearn_audit.audit.config import from_dict

FASHION = "/usr/share/datasets/fashion-mnist"


#: The methods' default budgets, then larger ones (the same shadows, original and controls).
PASSES: list[tuple[str, dict[str, dict[str, Any]]]] = [
    ("default budgets", {}),
    (
        "larger budgets",
        {
            "finetune": {"epochs": 20, "lr_scale": 1.0},
            "gradient_ascent": {"epochs": 5, "lr_scale": 0.2},
        },
    ),
]


def config(a: argparse.Namespace, params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "ulira-fashion",
        "seed": a.seed,
        "device": "cpu",
        "data": {"dataset": "fashion-mnist", "root": a.root, "limit": a.limit},
        "model": {"arch": "mlp"},
        "train": {"epochs": a.epochs, "batch_size": 64, "lr": 0.05, "augment": False},
        "forget": {"spec": "random:0.1"},
        "unlearn": {"methods": ["finetune", "gradient_ascent"], "params": params},
        "attack": {"shadows": a.shadows, "ulira": True},
    }


def rows(r: dict[str, Any]) -> list[str]:
    attacks = r["config"]["verdict"]["attacks"]
    head = (
        "| model | verdict | "
        + " | ".join(f"ΔAUC {a} (CI)" for a in attacks)
        + " | U-LiRA AUC | median ε | F | F − F(retrain) (95% CI) |"
    )
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, v in r["verdicts"].items():
        ev = v["evidence"]
        per = ev.get("per_attack", {})
        cells = [
            f"{per[a]['auc_diff']:+.3f} [{per[a]['ci'][0]:+.3f}, {per[a]['ci'][1]:+.3f}]"
            if a in per
            else "—"
            for a in attacks
        ]
        fg = r["forgetting"].get(name, {})
        fq = ev.get("forget_quality")
        status = v["status"] + (f" (raw {ev['raw_status']})" if "raw_status" in ev else "")
        out.append(
            f"| {name} | {status} | "
            + " | ".join(cells)
            + f" | {fg.get('ulira_auc', float('nan')):.3f} "
            f"| {fg.get('epsilon_median', float('nan')):.2f} "
            f"| {fg.get('forget_quality', float('nan')):.3f} | "
            + (f"{fq['diff']:+.3f} [{fq['ci'][0]:+.3f}, {fq['ci'][1]:+.3f}]" if fq else "—")
            + " |"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--root", default=FASHION)
    ap.add_argument("--limit", type=int, default=2000, help="pool: the first N images")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--shadows", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--run", type=Path, default=Path("benchmarks/.cache/ulira-fashion"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/ulira_fashion.txt"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    text = [
        f"# U-LiRA on Fashion-MNIST ({time.strftime('%Y-%m-%d %H:%M')}); "
        f"{platform.machine()}, torch threads {a.threads}",
        f"# command: {' '.join(sys.argv)}",
    ]
    for title, params in PASSES:
        cfg = from_dict(config(a, params))
        t0 = time.perf_counter()
        res = run_audit(cfg, a.run, progress=False, log=lambda m: print(m, file=sys.stderr))
        wall = time.perf_counter() - t0
        r = res.results
        d = r["data"]
        text += [
            "",
            f"## {title}: " + (", ".join(f"{m} {p}" for m, p in params.items()) or "as registered"),
            "",
            f"pool {d['n_pool']} (first images), members {d['n_members']}, forget "
            f"{d['n_forget']}, non-members {d['n_nonmembers']}; mlp {a.epochs} epochs; "
            f"{a.shadows} shadows ({a.shadows // 2} unlearned / {a.shadows // 2} never-trained "
            "shadow models per forget sample)",
            f"wall time of this call {wall:.0f} s (cached models are not retrained); "
            f"phases {r['timings']}",
            f"controls separated: {r['controls']['separated']}",
            *(f"  - {reason}" for reason in r["controls"]["reasons"]),
            "",
            *rows(r),
        ]
    text.append("")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
