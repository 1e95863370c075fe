"""Benchmark of every supervised unlearner on real Fashion-MNIST (issue 4).

For each seed: a random half of the pool are members, 10% of them are forgotten.
The original model trains on the members; every method then unlearns a copy of
it, and is measured by forget / retain / test accuracy, the LiRA (online, fixed
variance; Carlini et al. 2022) AUC of forget samples against non-members, and
its wall time. ``retrain`` (exact unlearning) is the reference every gap is
taken to. The shadow bank (LiRA's IN/OUT models) is trained once on the pool
with a balanced keep matrix and shared by the seeds: it models the training
distribution, not a particular split.

``gradient_constraint[matched]`` receives as ``reference`` a third-party set:
samples of Fashion-MNIST right after the pool, never trained on by any model
and never used in the evaluation.

Usage (records benchmarks/results/unlearners.txt; ~15 min on 2 CPU cores)::

    nice python benchmarks/unlearners.py
    nice python benchmarks/unlearners.py --offset 10000 --seeds 100 101 \\
        --grid grid.json --out benchmarks/results/unlearners-tuning.txt   # tuning split

U-LiRA forget quality (Hayes et al. 2024; NeurIPS 2023 unlearning competition):
for the seeds in ``--ulira-seeds`` (default: the first seed, to bound the
cost), every shadow model ``k`` also unlearns a request ``F_k`` with each method
(``IN_k ∩ forget`` padded to the audited request's size, as the audit does);
per forget sample, ε separates those unlearned shadows from the shadows that
never trained on it, and F is the competition's score. The
``retrain`` row's F is exact unlearning's F at this bank size (8 models per
side with 16 shadows): read a method's F against it, with the paired bootstrap
interval of the difference (the verdict's forget-quality rule, docs/verdict.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

# This file is named like the package it benchmarks: drop its own folder from
# the import path so ``import unlearners`` finds the package, not this script.
import numpy as np
import torch
from torch import nn

from unlearn_audit import unlearners
from unlearn_audit.attacks.epsilon import per_example_epsilon, signals_by_side
from unlearn_audit.attacks.lira import lira
from unlearn_audit.attacks.metrics import auc_difference_ci, roc_metrics
from unlearn_audit.attacks.shadows import make_keep_matrix, unlearning_request
from unlearn_audit.attacks.signals import logit_scaled_confidence
from unlearn_audit.audit.verdict import ForgetEpsilons, Rule, forget_quality_evidence
from unlearn_audit.learning import CrossEntropy, Recipe, load_dataset, make_generator, make_model
from unlearn_audit.learning.augment import query_views
from unlearn_audit.learning.train import accuracy, fit, predict_logits

ROOT = "/usr/share/datasets/fashion-mnist"
RECIPE = Recipe(epochs=40, batch_size=32, lr=0.05, augment=False)  # the audit's default
QUERIES = 5
DEFAULT_METHODS: list[tuple[str, str, dict[str, Any]]] = [
    ("retrain", "retrain", {}),
    ("retrain[independent]", "retrain", {}),  # another seed: the retrain-to-retrain noise
    ("noop", "noop", {}),
    ("finetune", "finetune", {}),
    ("gradient_ascent", "gradient_ascent", {}),
    ("neggrad_plus", "neggrad_plus", {}),
    ("random_label", "random_label", {}),
    ("l1_sparse", "l1_sparse", {}),
    ("salun", "salun", {}),
    ("scrub", "scrub", {}),
    ("bad_teacher", "bad_teacher", {}),
    ("ssd", "ssd", {}),
    ("fisher", "fisher", {}),
    ("gradient_constraint", "gradient_constraint", {}),
    ("gradient_constraint[matched]", "gradient_constraint", {"variant": "matched"}),
]
CPU = torch.device("cpu")


def _key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Bench:
    """Data, shadow bank and cached trainings of one benchmark run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        n, ref = args.limit, args.reference
        full = load_dataset("fashion-mnist", ROOT, limit=args.offset + n + ref)
        self.x = full.x[args.offset : args.offset + n].contiguous()
        self.y = full.y[args.offset : args.offset + n].contiguous()
        self.ref = (full.x[args.offset + n :].contiguous(), full.y[args.offset + n :].contiguous())
        self.shape, self.classes = full.shape, full.num_classes
        self.cache = Path(args.cache)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.base = {"offset": args.offset, "n": n, "arch": args.arch, "recipe": asdict(RECIPE)}

    def train(self, idx: np.ndarray, seed: int) -> nn.Module:
        """A model trained on pool samples ``idx`` (cached on disk)."""
        model = make_model(self.args.arch, self.shape, self.classes, seed=seed)
        path = self.cache / f"model-{_key(**self.base, idx=idx.tolist(), seed=seed)}.pt"
        if path.exists():
            model.load_state_dict(torch.load(path))
            return model.eval()
        t = torch.as_tensor(idx)
        fit(model, self.x[t], self.y[t], CrossEntropy().loss, RECIPE, make_generator(seed, CPU))
        torch.save(model.state_dict(), path)
        return model.eval()

    def signals(self, model: nn.Module) -> np.ndarray:
        """Logit-scaled confidences ``(n, QUERIES)`` on the pool (identity + 1-px shifts)."""
        logits = predict_logits(model, self.x, views=lambda b: query_views(b, QUERIES, False))
        return logit_scaled_confidence(logits.numpy(), self.y.numpy()[:, None])

    def unlearn(
        self,
        method: unlearners.Unlearner,
        model: nn.Module,
        forget: torch.Tensor,
        retain: torch.Tensor,
        gen: torch.Generator,
    ) -> nn.Module:
        """``method`` applied to ``model`` (pool indices ``forget`` / ``retain``)."""
        return method.unlearn(
            model,
            (self.x[forget], self.y[forget]),
            (self.x[retain], self.y[retain]),
            objective=CrossEntropy(),
            recipe=RECIPE,
            generator=gen,
            reference=self.ref,
        )

    def shadow_bank(self) -> tuple[np.ndarray, np.ndarray]:
        keep = make_keep_matrix(self.args.shadows, len(self.x), seed=12345)
        sig = [self.signals(self.train(np.flatnonzero(k), 50_000 + i)) for i, k in enumerate(keep)]
        return np.stack(sig), keep


def unlearned_bank(
    b: Bench,
    label: str,
    method: unlearners.Unlearner,
    params: dict[str, Any],
    seed: int,
    forget: np.ndarray,
    keep: np.ndarray,
) -> np.ndarray:
    """Per forget sample, ε of ``method``'s U-LiRA bank (shadow k unlearned its request).

    The request is ``IN_k ∩ forget`` padded to the audited request's size and label
    counts, as the audit does (:func:`attacks.shadows.unlearning_request`).
    """
    sig = []
    for k, row in enumerate(keep):
        inside = np.flatnonzero(row)
        rng = np.random.default_rng([seed, k, 0x726571])  # "req": the padding draw
        f_k = unlearning_request(inside, forget, b.y.numpy(), rng)
        key = _key(**b.base, label=label, params=params, seed=seed, k=k, f=f_k.tolist())
        path = b.cache / f"ulira-{key}.npy"
        if path.exists():
            sig.append(np.load(path))
            continue
        shadow = b.train(inside, 50_000 + k)
        ft, rt = torch.as_tensor(f_k), torch.as_tensor(np.setdiff1d(inside, f_k))
        gen = make_generator(seed * 7919 + k * 104_729 + zlib.crc32(label.encode()) % 7919, CPU)
        s = b.signals(b.unlearn(method, shadow, ft, rt, gen))
        np.save(path, s)
        sig.append(s)
    bank = np.stack(sig)[:, forget, 0]
    u, r = signals_by_side(bank, keep[:, forget], ~keep[:, forget])
    return per_example_epsilon(u, r)


def _split(n: int, seed: int, frac: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    members = rng.permutation(n)[: n // 2]
    forget = np.sort(rng.permutation(members)[: int(round(frac * members.size))])
    return {
        "members": np.sort(members),
        "forget": forget,
        "retain": np.setdiff1d(members, forget),
        "nonmembers": np.setdiff1d(np.arange(n), members),
    }


def run_seed(
    b: Bench,
    seed: int,
    methods: list[tuple[str, str, dict[str, Any]]],
    shadow: Any,
    ulira: bool = False,
) -> list[dict[str, Any]]:
    sig_shadow, keep = shadow
    sp = _split(len(b.x), seed, 0.1)
    original = b.train(sp["members"], 1000 + seed)
    f, r = torch.as_tensor(sp["forget"]), torch.as_tensor(sp["retain"])
    nm = torch.as_tensor(sp["nonmembers"])
    fn_idx = np.concatenate([sp["forget"], sp["nonmembers"]])
    is_forget = np.concatenate(
        [np.ones(sp["forget"].size, bool), np.zeros(sp["nonmembers"].size, bool)]
    )
    rows: list[dict[str, Any]] = []
    ref_scores: np.ndarray | None = None
    ref_eps: np.ndarray | None = None
    for label, name, params in methods:
        method = unlearners.create(name, **params)
        gen = make_generator(seed * 1_000_003 + zlib.crc32(label.encode()) % 1_000_003, CPU)
        t0 = time.perf_counter()
        try:
            model = b.unlearn(method, original, f, r, gen)
        except Exception as exc:  # a failed method is a row, not a crash
            rows.append({"label": label, "seed": seed, "error": f"{type(exc).__name__}: {exc}"})
            print(f"  seed {seed} {label}: FAILED {exc}", file=sys.stderr)
            continue
        seconds = time.perf_counter() - t0
        scores = lira(b.signals(model), sig_shadow, keep, online=True, fixed_variance=True)
        s = scores[fn_idx]
        row = {
            "label": label,
            "seed": seed,
            "params": params,
            "seconds": seconds,
            "forget_acc": accuracy(model, b.x[f], b.y[f]),
            "retain_acc": accuracy(model, b.x[r], b.y[r]),
            "test_acc": accuracy(model, b.x[nm], b.y[nm]),
            "auc": roc_metrics(s, is_forget)["auc"],
        }
        if ref_scores is None:  # the first method is retrain: the reference
            ref_scores = s
        d = auc_difference_ci(s, ref_scores, is_forget, n_boot=1000, seed=seed)
        row["dauc_low"], row["dauc_high"] = d["low"], d["high"]
        if ulira:
            t1 = time.perf_counter()
            eps = unlearned_bank(b, label, method, params, seed, sp["forget"], keep)
            ref_eps = eps if ref_eps is None else ref_eps
            fq = forget_quality_evidence(
                ForgetEpsilons(eps, ref_eps, keep.shape[0] // 2), Rule(seed=seed)
            )
            row.update(
                fq=fq["value"],
                fq_low=fq["ci"][0],
                fq_high=fq["ci"][1],
                fq_diff=fq["diff"],
                eps_median=float(np.median(eps)),
                ulira_seconds=time.perf_counter() - t1,
            )
        rows.append(row)
        print(
            f"  seed {seed} {label:<30} f {row['forget_acc']:.3f} r {row['retain_acc']:.3f} "
            f"t {row['test_acc']:.3f} auc {row['auc']:.3f} [{d['low']:+.3f},{d['high']:+.3f}] "
            f"{seconds:.1f}s" + (f" F {row['fq']:.3f}" if "fq" in row else ""),
            file=sys.stderr,
        )
    return rows


def _pm(values: list[float], fmt: str = "{:.3f}") -> str:
    if not values:
        return "—"
    a = np.asarray(values, float)
    return (fmt + " ± " + fmt).format(a.mean(), a.std(ddof=1) if a.size > 1 else 0.0)


def table(rows: list[dict[str, Any]], labels: list[str]) -> str:
    """Markdown: absolute metrics, gaps to retrain (paired per seed), time ratio."""
    ref = {r["seed"]: r for r in rows if r["label"] == "retrain" and "error" not in r}
    head = (
        "| method | forget acc | retain acc | test acc | LiRA AUC forget/non-member "
        "| Δforget acc | Δretain acc | Δtest acc | ΔAUC | CI ∋ 0 | U-LiRA F | ΔF (95% CI) "
        "| seconds | × retrain time |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for label in labels:
        ok = [r for r in rows if r["label"] == label and "error" not in r and r["seed"] in ref]
        failed = [r for r in rows if r["label"] == label and "error" in r]
        if not ok:
            lines.append(
                f"| {label} | failed: {failed[0]['error'][:60] if failed else '?'} |" + " |" * 12
            )
            continue

        def gap(key: str, group: list[dict[str, Any]] = ok) -> list[float]:
            return [r[key] - ref[r["seed"]][key] for r in group]

        inside = sum(r["dauc_low"] <= 0 <= r["dauc_high"] for r in ok)
        ratio = [r["seconds"] / ref[r["seed"]]["seconds"] for r in ok]
        cells = [
            _pm([r["forget_acc"] for r in ok]),
            _pm([r["retain_acc"] for r in ok]),
            _pm([r["test_acc"] for r in ok]),
            _pm([r["auc"] for r in ok]),
            _pm(gap("forget_acc"), "{:+.3f}"),
            _pm(gap("retain_acc"), "{:+.3f}"),
            _pm(gap("test_acc"), "{:+.3f}"),
            _pm(gap("auc"), "{:+.3f}"),
            f"{inside}/{len(ok)}",
            *_forget_quality_cells(ok),
            _pm([r["seconds"] for r in ok], "{:.1f}"),
            _pm(ratio, "{:.3f}"),
        ]
        note = f" ({len(failed)} failed)" if failed else ""
        lines.append(f"| {label}{note} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def _forget_quality_cells(ok: list[dict[str, Any]]) -> list[str]:
    """F (one value per U-LiRA seed) and, per seed, F − F(retrain) with its interval."""
    fq = [r for r in ok if "fq" in r]
    if not fq:
        return ["—", "—"]
    values = ", ".join(f"{r['fq']:.3f}" for r in fq)
    diffs = "; ".join(f"{r['fq_diff']:+.3f} [{r['fq_low']:+.3f}, {r['fq_high']:+.3f}]" for r in fq)
    return [values, diffs]


def _methods(grid: str | None) -> list[tuple[str, str, dict[str, Any]]]:
    if not grid:
        return DEFAULT_METHODS
    spec = json.loads(Path(grid).read_text())
    return [("retrain", "retrain", {})] + [(k, v[0], v[1]) for k, v in spec.items()]


def retable(path: Path) -> None:
    """Rewrite the table of a recorded result file from its raw rows (no training)."""
    text = path.read_text()
    header, rest = text.split("| method |", 1)
    rows = json.loads(rest.split("## raw rows", 1)[1])
    labels = list(dict.fromkeys(r["label"] for r in rows))
    path.write_text(
        header + table(rows, labels) + "\n## raw rows\n\n" + json.dumps(rows, indent=1) + "\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--limit", type=int, default=4000, help="pool size (first N after --offset)")
    ap.add_argument("--offset", type=int, default=0, help="start of the pool in Fashion-MNIST")
    ap.add_argument(
        "--reference", type=int, default=1000, help="third-party samples after the pool"
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--shadows", type=int, default=16)
    ap.add_argument(
        "--ulira-seeds",
        type=int,
        nargs="*",
        default=None,
        help="seeds that also measure U-LiRA forget quality (default: the first seed)",
    )
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--grid", help="JSON {label: [method, params]} instead of the default list")
    ap.add_argument("--cache", default="/tmp/unlearners-bench-cache")
    ap.add_argument("--out", default="benchmarks/results/unlearners.txt")
    ap.add_argument(
        "--retable", action="store_true", help="rebuild the table of --out from its raw rows"
    )
    args = ap.parse_args()
    if args.retable:
        retable(Path(args.out))
        return
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    b = Bench(args)
    print(f"pool {len(b.x)} (offset {args.offset}), reference {len(b.ref[0])}", file=sys.stderr)
    shadow = b.shadow_bank()
    methods = _methods(args.grid)
    rows: list[dict[str, Any]] = []
    ulira_seeds = args.seeds[:1] if args.ulira_seeds is None else args.ulira_seeds
    for seed in args.seeds:
        rows += run_seed(b, seed, methods, shadow, ulira=seed in ulira_seeds)
    total = time.perf_counter() - t_start
    labels = list(dict.fromkeys(label for label, _, _ in methods))
    header = (
        f"# unlearners benchmark: fashion-mnist pool {len(b.x)} (offset {args.offset}), "
        f"{args.arch}, {RECIPE.epochs} epochs, 10% random forget, {args.shadows} shadows, "
        f"seeds {args.seeds}, U-LiRA F on seeds {ulira_seeds}\n"
        f"# {platform.platform()}, torch {torch.__version__}, "
        f"{args.threads} thread(s); total {total / 60:.1f} min\n"
        f"# command: {' '.join(sys.argv)}\n\n"
    )
    text = header + table(rows, labels) + "\n## raw rows\n\n" + json.dumps(rows, indent=1) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(header + table(rows, labels))


if __name__ == "__main__":
    main()
