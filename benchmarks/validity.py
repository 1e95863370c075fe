"""Benchmark: does the verdict track the truth? Planted models that keep a known share.

For each setting and seed, the audit judges five *planted* models, each
retrained from scratch (its own seed) on the retain set plus a known share
(0, 25, 50, 75, 100%) of the forget request, beside its usual controls. They
run inside the audit as a benchmark-only unlearner (``partial_retrain``: a
method that forgets only part of what it was asked to). It
records, per planted model, the residual estimate and its interval against the
true share, the verdict, and the audit's minimum detectable residual (MDR).
The checks the verdict rule promises (docs/verdict.md):

- no planted model that keeps at least the MDR passes;
- the 0% model (an independent retrain) and the ``retrain`` control pass;
- the interval covers the true share (reported, not asserted: the 100% model is
  a fresh training run, so it may remember its members more or less than the
  original did).

Usage::

    python benchmarks/validity.py [--settings default fashion] [--seeds 0 1 2] \
        [--out benchmarks/results/validity.txt]

``default`` is the embedded default (``configs/default.toml``); ``fashion`` is
``configs/fashion-mnist.toml`` (Debian's ``dataset-fashion-mnist``); ``contrastive``
is ``unlearn-audit audit --paradigm contrastive`` (a SimCLR encoder with the
paradigm's defaults, docs/contrastive.md). The U-LiRA
banks and the difficulty analysis are switched off (they do not enter the
membership verdict); the methods of the config are not run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
#: setting -> a config file, or a table (the built-in defaults of the paradigm it names)
SETTINGS: dict[str, str | dict[str, Any]] = {
    "default": "configs/default.toml",
    "fashion": "configs/fashion-mnist.toml",
    "contrastive": {"paradigm": "contrastive"},  # unlearn-audit audit --paradigm contrastive
}


def _config(setting: str, seed: int) -> Any:
    from unlearn_audit.audit.config import from_dict, load_toml, merge

    source = SETTINGS[setting]
    table = dict(source) if isinstance(source, dict) else load_toml(ROOT / source)
    fast = {
        "seed": seed,
        "unlearn": {"methods": [], "params": {}},
        "attack": {"ulira": False},
        "difficulty": {"enabled": False},
    }
    return from_dict(merge(table, fast))


def partial_retrain(keep: float) -> Any:
    """An unlearner that plants the answer: retrain on retain plus a share ``keep`` of the request.

    It runs inside the audit like any method (the models it makes are cached
    under its name and parameters); which records it keeps is drawn from the
    generator the audit seeds for it.
    """
    from dataclasses import dataclass

    import torch

    from unlearn_audit.unlearners.basic import Retrain
    from unlearn_audit.unlearners.tuning import Tuning

    @dataclass(frozen=True)
    class KeepParams:
        keep: float = 0.0

    class PartialRetrain(Retrain):
        """``retrain`` (the recipe's epochs and learning rate) on retain + the kept records."""

        name = f"keep{int(round(keep * 100)):03d}"
        summary = "benchmark: retrain on retain + a known share of the forget request"
        Params = KeepParams

        def train_size(self, n_forget: int, n_retain: int) -> int:
            return n_retain + int(round(self.params.keep * n_forget))

        def tuning(self, model, request, ctx):  # type: ignore[no-untyped-def]
            n = request.n_forget
            idx = torch.randperm(n, generator=ctx.generator, device=ctx.generator.device)
            idx = idx[: int(round(self.params.keep * n))]
            x = torch.cat([request.retain[0], request.forget[0][idx]])
            y = torch.cat([request.retain[1], request.forget[1][idx]])
            return Tuning(super().tuning(model, request, ctx).loss, data=(x, y))

    return PartialRetrain(keep=keep)


def one(setting: str, seed: int, work: Path) -> dict[str, Any]:
    """Run the audit of one seed with the planted models as methods; return its figures."""
    from unlearn_audit import run_audit
    from unlearn_audit.audit.inputs import AuditInputs

    cfg = _config(setting, seed)
    out = work / f"{setting}-{seed}"
    t0 = time.perf_counter()
    methods = [partial_retrain(share) for share in SHARES]
    res = run_audit(
        cfg,
        out,
        inputs=AuditInputs(methods=methods),
        progress=False,
        log=lambda _msg: None,
        render_report=False,
    ).results
    planted = [m.name for m in methods]
    wall = time.perf_counter() - t0
    rows = {}
    for name in [*planted, "retrain", "planted", "noop"]:
        v = res["verdicts"][name]
        ev = v["evidence"]
        rows[name] = {
            "status": v["status"],
            "raw": ev.get("raw_status", v["status"]),
            "residual": ev["residual"],
            "records": ev.get("records", {}).get("n_recognisable"),
            "z": _detection_z(ev),
        }
    return {
        "setting": setting,
        "seed": seed,
        "wall_s": wall,
        "n_forget": res["data"]["n_forget"],
        "mdr": res["power"]["mdr"],
        "curve": res["power"]["curve"],
        "separated": res["controls"]["separated"],
        "rows": rows,
        "auc": {
            m: res["attacks"][m]["lira_online"]["forget_vs_nonmember"]["auc"]
            for m in ("original", "reference")
        },
    }


def _detection_z(ev: dict[str, Any]) -> dict[str, float]:
    """Per attack, the normal-score difference over its bootstrap SE (from the interval)."""
    from scipy.special import ndtri

    q = float(ndtri(1 - (1 - ev["attack_level"]) / 2))
    out = {}
    for attack, e in ev.get("per_attack", {}).items():
        lo, hi = e["score_diff_ci"]
        out[attack] = e["score_diff"] / ((hi - lo) / (2 * q)) if hi > lo else float("nan")
    return out


def _exact_z(results: list[dict[str, Any]]) -> list[float]:
    """Detection z of every exact retrain (keep000, the retrain control): N(0, 1) if calibrated."""
    return [z for r in results for n in ("keep000", "retrain") for z in r["rows"][n]["z"].values()]


def _num(v: float | None) -> str:
    return "  inf" if v is None else f"{v:+.2f}"


def _check(r: dict[str, Any]) -> list[str]:
    """The promises of the rule, as failures (empty: all held)."""
    bad = []
    mdr = r["mdr"]
    for name, row in r["rows"].items():
        if not name.startswith("keep"):
            continue
        share = int(name[4:]) / 100
        if mdr is not None and share >= mdr and row["raw"] == "pass":
            bad.append(f"{name} keeps {share:.0%} >= MDR {mdr:.0%} and passed")
    if r["rows"]["keep000"]["raw"] != "pass":
        bad.append(f"keep000 (an independent retrain) did not pass: {r['rows']['keep000']['raw']}")
    if r["rows"]["retrain"]["raw"] != "pass":
        bad.append(f"retrain control did not pass: {r['rows']['retrain']['raw']}")
    return bad


def report(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        mdr = "none" if r["mdr"] is None else f"{r['mdr']:.2f}"
        lines.append(
            f"{r['setting']} seed {r['seed']}: {r['n_forget']} forget samples, wall "
            f"{r['wall_s']:.0f} s, MDR {mdr}, controls separated {r['separated']}, "
            f"lira_online AUC original {r['auc']['original']:.3f} reference "
            f"{r['auc']['reference']:.3f}"
        )
        lines.append(
            f"  {'model':<10} {'truth':>5}  residual [interval]        attack        "
            "verdict        recognisable"
        )
        for name, row in r["rows"].items():
            truth = (
                f"{int(name[4:]) / 100:.2f}"
                if name.startswith("keep")
                else {"retrain": "0.00", "noop": "1.00", "planted": "0.50"}.get(name, "?")
            )
            res = row["residual"]
            lo, hi = res["ci"]
            status = row["raw"] if row["raw"] == row["status"] else f"{row['raw']}->{row['status']}"
            lines.append(
                f"  {name:<10} {truth:>5}  {_num(res['value'])} [{_num(lo)}, {_num(hi)}]"
                f"  {res['attack']:<12}  {status:<13}  {row['records']}"
            )
        zs = "  ".join(
            f"{n} " + " ".join(f"{z:+.2f}" for z in r["rows"][n]["z"].values())
            for n in ("keep000", "retrain")
        )
        lines.append(f"  exact retrains' detection z per attack: {zs}")
        bad = _check(r)
        lines.append("  checks: " + ("all hold" if not bad else "; ".join(bad)))
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/validity.txt"))
    ap.add_argument("--work", default="", help="keep run directories here (default: temporary)")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        for setting in args.settings:
            for seed in args.seeds:
                r = one(setting, seed, work)
                print(report([r]), flush=True)
                results.append(r)
    head = [
        f"# unlearn-audit validity benchmark ({time.strftime('%Y-%m-%d %H:%M')})",
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}",
        f"# command: python benchmarks/validity.py --settings {' '.join(args.settings)} "
        f"--seeds {' '.join(map(str, args.seeds))}",
        "# planted models keepNNN: retrained on retain + NNN% of the forget request (own seed);",
        "# residual: worst verdict attack, one-sided bounds at the verdict level; verdict before",
        "# the controls' gate (->after); recognisable: forget records flagged at verdict.fdr",
        "",
    ]
    zs = np.array(_exact_z(results))
    tail = (
        f"exact retrains (keep000 and the retrain control, every attack and seed): {zs.size} "
        f"detection z, mean square {np.mean(zs**2):.2f} (1 if the bootstrap interval counts "
        f"all the variation between training runs), largest |z| {np.max(np.abs(zs)):.2f}\n"
    )
    print(tail)
    text = "\n".join(head) + report(results) + tail
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
