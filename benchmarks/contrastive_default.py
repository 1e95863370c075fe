"""Why the contrastive default trains as it does: membership evidence per setting.

``unlearn-audit audit --paradigm contrastive`` must separate its controls on the
embedded digits in under 5 minutes on 2 CPU cores (issue #15). What gives the audit its
power is how much the original encoder memorises its members; what costs time is
``shadows x epochs``. This script measures the first cheaply, for a grid of settings:
it trains the original encoder of the default plan (seeds 0-2: the first 1,000
digits, 500 members) and records the threshold AUC of its raw membership signal on
members against non-members (no shadows: LiRA sharpens it, the order of the
settings is what matters here), for the ``instance`` and ``encodermi`` signals, and
the training time of one encoder. The same is measured for MoCo v2 and BYOL at the
chosen recipe, which says which signal suits each method.

The full audits that pick the shadow count are ``benchmarks/default_audit.py`` runs
(docs/contrastive.md, "Defaults"): recorded in ``benchmarks/results/contrastive_default.txt``
(the default) and ``contrastive_default_64shadows.txt``.

    nice .venv/bin/python benchmarks/contrastive_default.py   # ~4 min on 2 quiet cores
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from unlearn_audit.audit.config import from_dict
from unlearn_audit.audit.contrastive import Contrastive
from unlearn_audit.audit.inputs import AuditInputs, load_setup
from unlearn_audit.audit.production import Producer
from unlearn_audit.audit.rundir import ModelStore

SIGNALS = ("instance", "encodermi")
#: (label, [train] epochs, [train] lr, [contrastive] batch_size, temperature, method)
GRID: tuple[tuple[str, int, float, int, float, str], ...] = (
    ("old default", 40, 0.05, 128, 0.2, "simclr"),
    ("batch 32", 40, 0.05, 32, 0.2, "simclr"),
    ("100 ep, batch 64", 100, 0.05, 64, 0.2, "simclr"),
    ("150 ep", 150, 0.1, 128, 0.2, "simclr"),
    ("150 ep, lr 0.2", 150, 0.2, 128, 0.2, "simclr"),
    ("200 ep (chosen)", 200, 0.1, 128, 0.2, "simclr"),
    ("200 ep, T 0.1", 200, 0.1, 128, 0.1, "simclr"),
    ("200 ep, batch 256, lr 0.2", 200, 0.2, 256, 0.2, "simclr"),
    ("300 ep", 300, 0.1, 128, 0.2, "simclr"),
    ("200 ep, MoCo v2", 200, 0.1, 128, 0.2, "moco"),
    ("200 ep, BYOL", 200, 0.1, 128, 0.2, "byol"),
)


def measure(seed: int, epochs: int, lr: float, batch: int, temp: float, method: str) -> dict:
    """Train the default plan's original encoder; AUC of each raw signal, train seconds."""
    cfg = from_dict(
        {
            "paradigm": "contrastive",
            "seed": seed,
            "device": "cpu",
            "train": {"epochs": epochs, "lr": lr},
            "attack": {"ulira": False},
            "contrastive": {"batch_size": batch, "temperature": temp, "method": method},
        }
    )
    setup, plan = load_setup(cfg, AuditInputs())
    with tempfile.TemporaryDirectory() as tmp:
        p = Producer(setup, ModelStore(Path(tmp)), progress=False, log=lambda m: None)
        t0 = time.perf_counter()
        _, made = p.original(plan)
        seconds = time.perf_counter() - t0
    member = np.zeros(len(setup.ds), dtype=bool)
    member[plan.members] = True
    out: dict[str, Any] = {"seconds": seconds}
    for signal in SIGNALS:
        paradigm = Contrastive(dataclasses.replace(setup.paradigm.settings, signal=signal))
        values = paradigm.signals(made.model, setup.ds, setup.x, 1)[:, 0]
        out[signal] = roc_auc_score(member, values)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="benchmarks/results/contrastive_default_sweep.txt")
    a = ap.parse_args()
    measure(0, 1, 0.1, 128, 0.2, "simclr")  # warm-up: the first fit pays for imports
    t_start = time.perf_counter()
    lines = [
        f"# contrastive default sweep ({datetime.now():%Y-%m-%d %H:%M})",
        f"# machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}",
        "# embedded digits, the default plan (1,000 images, 500 members); the original "
        "encoder (mlp, proj 64); threshold AUC of its raw signal on members vs non-members "
        f"(no shadows); mean ± sd over seeds {a.seeds}",
        "",
        "| setting | epochs | lr | batch | T | method | instance AUC | EncoderMI AUC "
        "| train s / encoder |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, epochs, lr, batch, temp, method in GRID:
        runs = [measure(s, epochs, lr, batch, temp, method) for s in a.seeds]

        def pm(key: str, fmt: str = "{:.3f}", runs: list[dict] = runs) -> str:
            v = np.array([r[key] for r in runs])
            return (fmt + " ± " + fmt).format(v.mean(), v.std(ddof=1) if v.size > 1 else 0.0)

        row = (
            f"| {label} | {epochs} | {lr} | {batch} | {temp} | {method} | {pm('instance')} "
            f"| {pm('encodermi')} | {pm('seconds', '{:.1f}')} |"
        )
        lines.append(row)
        print(row, flush=True)
    lines.append(f"\n# total {time.perf_counter() - t_start:.0f} s")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
