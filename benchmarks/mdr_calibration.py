"""Benchmark: does the minimum detectable residual keep its promise?

An audit's MDR says: "a model that still remembers at least this share of the
deleted records is caught in at least 80% of audits". This benchmark checks
that by simulation, for the current rule (:func:`audit.power.detection_probability`)
and for the earlier one (no spread between kept and forgotten records; the
interpolated bootstrap variance taken as the spread between models too).

Each world is one audit: fixed forget records and non-members, a reference, an
original and a retrain control drawn as in tests/audit/test_residual.py (a
per-record difficulty shared by every model, a membership effect on the
records a model trained on, each model's own noise). The MDR is computed from
that audit's signals; then ``--models`` independent models, each keeping a
random MDR share of the request with its own noise, are judged by the
detection rule (the normal-score difference's 95% interval wholly above 0),
and the share caught is recorded. Usage::

    python benchmarks/mdr_calibration.py [--models 300] \
        [--out benchmarks/results/mdr_calibration.txt]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
from scipy.special import ndtr

import unlearn_audit.audit.power as power
import unlearn_audit.audit.residual as residual

ROOT = Path(__file__).resolve().parent.parent

# (label, heterogeneous effects?, mean effect, model noise)
WORLDS = (
    ("one effect 1.0, noise 0.2", False, 1.0, 0.2),
    ("one effect 0.5, noise 0.3", False, 0.5, 0.3),
    ("varied effects 1.0, noise 0.2", True, 1.0, 0.2),
    ("varied effects 1.0, noise 0.5", True, 1.0, 0.5),
)
N_FORGET, N_NON = 150, 450


def earlier_rule(rho, gap, cov_out, cov_in, z, draws=None, n_eff=None):  # noqa: ARG001
    """The earlier detection probability: interpolated covariance as spread and SE."""
    cov = (1.0 - rho) * cov_out + rho * cov_in
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return max(float(ndtr(m / e - z)) for m, e in zip(rho * gap, se, strict=True))


def world(seed: int, varied: bool, effect: float, noise: float, rule, n_models: int):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=N_FORGET + N_NON)
    y = np.arange(base.size) < N_FORGET
    mu = np.where(y, rng.gamma(2.0, effect / 2.0, size=base.size) if varied else effect, 0.0)

    def model(kept: np.ndarray) -> np.ndarray:
        return base + kept * mu + noise * rng.normal(size=base.size)

    r, o, x = model(np.zeros(y.size)), model(y), model(np.zeros(y.size))
    saved = power.detection_probability
    power.detection_probability = rule
    try:
        mdr = power.minimum_detectable_residual(
            {"a": o}, {"a": x}, {"a": r}, y, level=0.95, seed=0
        ).mdr
    finally:
        power.detection_probability = saved
    if mdr is None:
        return None, float("nan")
    caught = sum(
        residual.attack_residual(
            "a", model(y & (rng.random(y.size) < mdr)), r, o, y, n_boot=300, level=0.95, seed=i
        ).score_diff_ci[0]
        > 0
        for i in range(n_models)
    )
    return mdr, caught / n_models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[3])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/mdr_calibration.txt"))
    args = ap.parse_args()
    sd = np.sqrt(0.8 * 0.2 / args.models)
    lines = [
        f"# unlearn-audit MDR calibration benchmark ({time.strftime('%Y-%m-%d %H:%M')})",
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}",
        f"# command: python benchmarks/mdr_calibration.py --models {args.models} "
        f"--seeds {' '.join(map(str, args.seeds))}",
        f"# {N_FORGET} forget records, {N_NON} non-members; {args.models} models per world keep a "
        "random MDR share each; caught = detection interval wholly above 0",
        f"# promise: caught >= 0.80 (one binomial SD = {sd:.3f})",
        "",
        f"{'world':32s} {'seed':>4s}  {'rule':8s} {'MDR':>5s}  {'caught':>6s}",
    ]
    rules = (("current", power.detection_probability), ("earlier", earlier_rule))
    for label, varied, effect, noise in WORLDS:
        for seed in args.seeds:
            for name, rule in rules:
                mdr, rate = world(seed, varied, effect, noise, rule, args.models)
                mdr_s = "none" if mdr is None else f"{mdr:.2f}"
                lines.append(f"{label:32s} {seed:4d}  {name:8s} {mdr_s:>5s}  {rate:6.3f}")
                print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
