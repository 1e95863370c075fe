"""Benchmark: how forget records should weigh in the residual (docs/verdict.md "Record weights").

It re-analyses the run directories of ``benchmarks/validity.py`` (planted models
``keep000`` ... ``keep100`` beside the controls) under four weighting schemes of
the residual's mean normal score ``Z``:

- ``uniform``: every record alike (``verdict.weighting = "uniform"``);
- ``forget-only``: the shadows' IN/OUT AUC separation on forget records, non-members at 1;
- ``effect-size``: ``max(0, (mean IN - mean OUT) / pooled SD)`` of the shadows, both strata;
- ``separation``: ``max(0, 2 AUC - 1)`` of the shadows, both strata (the default).

Per run and scheme it reports the minimum detectable residual (as the audit
computes it, same seeds), the residual of the 50% planted model under each
verdict attack, and the *detection z* of every exact retrain (the 0% planted
model and the ``retrain`` control against the reference: the normal-score
difference over its bootstrap SE, N(0, 1) if the interval counts all the
variation between training runs) with its mean square.

Usage::

    python benchmarks/validity.py --settings default fashion --work /tmp/valwork
    python benchmarks/weighting.py --work /tmp/valwork [--out benchmarks/results/weighting.txt]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

EXACT = ("keep000", "retrain")


def _effect_size(sig: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``max(0, (mean IN - mean OUT) / pooled SD)`` per record (0 without two IN and two OUT)."""
    n_in, n_out = keep.sum(axis=0), (~keep).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_in = np.where(keep, sig, 0.0).sum(axis=0) / n_in
        m_out = np.where(~keep, sig, 0.0).sum(axis=0) / n_out
        v_in = np.where(keep, (sig - m_in) ** 2, 0.0).sum(axis=0) / (n_in - 1)
        v_out = np.where(~keep, (sig - m_out) ** 2, 0.0).sum(axis=0) / (n_out - 1)
        d = (m_in - m_out) / np.sqrt(0.5 * (v_in + v_out))
    ok = (n_in >= 2) & (n_out >= 2) & np.isfinite(d)
    return np.where(ok, np.clip(d, 0.0, None), 0.0)


def analyse(run: Path) -> list[str]:
    from scipy.special import ndtri

    from unlearn_audit.audit.normal_score import record_weights
    from unlearn_audit.audit.plan import derive_seed
    from unlearn_audit.audit.power import minimum_detectable_residual
    from unlearn_audit.audit.residual import attack_residual

    res = json.loads((run / "results.json").read_text())
    seed = res["config"]["seed"]
    attacks = list(
        dict.fromkeys([res["config"]["verdict"]["attack"], *res["config"]["verdict"]["attacks"]])
    )
    level = 1 - (1 - res["config"]["verdict"]["level"]) / len(attacks)
    q = float(ndtri(1 - (1 - level) / 2))
    rows = [
        r
        for r in csv.DictReader((run / "samples.csv").open())
        if r["split"] in ("forget", "nonmember")
    ]
    y = np.array([r["split"] == "forget" for r in rows])
    idx = np.array([int(r["index"]) for r in rows])
    bank = np.load(run / "signals.npz")
    n_sh = int(bank["n_shadows"])
    sig, keep = bank["signals"][:n_sh], bank["keep"][:n_sh].astype(bool)
    auc_w = record_weights(sig, keep)[idx]
    schemes = {
        "uniform": None,
        "forget-only": np.where(y, auc_w, 1.0),
        "effect-size": _effect_size(sig.mean(axis=2), keep)[idx],
        "separation": auc_w,
    }

    def scores(model: str) -> dict[str, np.ndarray]:
        return {a: np.array([float(r[f"{a}.{model}"]) for r in rows]) for a in attacks}

    orig, ref = scores("original"), scores("reference")
    judged = {m: scores(m) for m in (*EXACT, "keep050")}
    residual_level = 1 - 2 * (1 - res["config"]["verdict"]["level"])

    def residuals(model: str, w: np.ndarray | None) -> list[Any]:
        """Per attack, as the verdict computes it (same seed and levels)."""
        s = judged[model]
        return [
            attack_residual(
                a,
                s[a],
                ref[a],
                orig[a],
                y,
                n_boot=1000,
                level=level,
                seed=derive_seed(seed, "boot"),
                residual_level=residual_level,
                weights=w,
            )
            for a in attacks
        ]

    out = []
    for name, w in schemes.items():
        mdr = minimum_detectable_residual(
            orig, judged["retrain"], ref, y, level=level, seed=derive_seed(seed, "mdr"), weights=w
        ).mdr
        zs = [
            e.score_diff / ((e.score_diff_ci[1] - e.score_diff_ci[0]) / (2 * q))
            for model in EXACT
            for e in residuals(model, w)
        ]
        r50 = residuals("keep050", w)
        keep50 = "  ".join(
            f"{e.residual:+.2f} [{e.residual_ci[0]:+.2f}, {e.residual_ci[1]:+.2f}]"
            if e.residual is not None and np.isfinite(e.residual_ci).all()
            else "undefined"
            for e in r50
        )
        mdr_s = "none" if mdr is None else f"{mdr:.2f}"
        out.append(
            f"  {name:<12} MDR {mdr_s:>4}  exact-retrain z mean square "
            f"{np.mean(np.square(zs)):.2f} (max |z| {np.max(np.abs(zs)):.2f})  keep050 {keep50}"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="benchmarks/validity.py's --work directory")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/weighting.txt"))
    args = ap.parse_args()
    runs = sorted(p for p in Path(args.work).iterdir() if (p / "results.json").exists())
    if not runs:
        raise SystemExit(
            f"no run directories in {args.work}: run benchmarks/validity.py --work first"
        )
    lines = [
        f"# unlearn-audit record-weighting benchmark ({time.strftime('%Y-%m-%d %H:%M')})",
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}",
        f"# command: python benchmarks/weighting.py --work {args.work}",
        "# per run: MDR; detection z of the exact retrains (keep000, retrain control; 3 attacks",
        "# each) against the reference, N(0, 1) if calibrated; keep050's residual [90% interval]",
        "# per attack (lira_online, lira_offline, rmia_online)",
        "",
    ]
    for run in runs:
        lines.append(run.name)
        lines.extend(analyse(run))
        print("\n".join(lines[-5:]), flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
