"""Benchmark: every attack against a real Fashion-MNIST model, with 4, 16 and 64 shadows.

Trains, on the first ``--n`` Fashion-MNIST training images (the pool), one
target model on a random half (its members) and 64 shadow models on the
complementary-pair keep matrix of :func:`attacks.make_keep_matrix`, then
scores members vs non-members of the target with every attack, using the first
4, 16 and 64 shadows (the prefix property makes them sub-banks of one bank).
It also reproduces, in direction, RMIA's claim (Zarifzadeh et al., ICML 2024)
that offline RMIA beats offline LiRA with few reference models, averaging
over disjoint groups of shadows, and checks the per-example epsilon / forget
quality and the SVC MIA-Efficacy on controls that need no unlearner.

Signals (logit-scaled confidence on ``--queries`` views, and the target's
logits) are cached in ``runs/bench_attacks/``; a second run only re-scores.
Usage (about 10-20 minutes on 2 CPU cores)::

    nice python benchmarks/attacks.py [--n 4000] [--arch mlp] [--epochs 20]
        [--out benchmarks/results/attacks.txt]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

# This file is named like the package it benchmarks: drop its own folder from
# the import path so ``import attacks`` finds the package, not this script.
import numpy as np
import torch

from unlearn_audit import attacks
from unlearn_audit.attacks.lira import lira
from unlearn_audit.attacks.rmia import DEFAULT_OFFLINE_A, rmia, tune_rmia_a
from unlearn_audit.learning import (
    CrossEntropy,
    Recipe,
    fit,
    load_dataset,
    make_generator,
    make_model,
    predict_logits,
    query_views,
)

FASHION = "/usr/share/datasets/fashion-mnist"
SHADOW_COUNTS = (4, 16, 64)
BANK = 64


def train_signals(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Train target + shadows (or load the cache); return signals, keep, members, logits."""
    cache = Path(args.cache) / f"n{args.n}-{args.arch}-e{args.epochs}-q{args.queries}.npz"
    if cache.exists():
        return {**np.load(cache), "cached": np.array(True)}
    torch.set_num_threads(args.threads)
    ds = load_dataset("fashion-mnist", FASHION, limit=args.n)
    device = torch.device("cpu")
    recipe = Recipe(epochs=args.epochs, batch_size=64, lr=0.05, augment=False)
    loss = CrossEntropy(None).loss
    labels = ds.y.numpy()

    def views(xb: torch.Tensor) -> list[torch.Tensor]:
        return query_views(xb, args.queries, ds.flippable)

    def train(idx: np.ndarray, seed: int) -> np.ndarray:
        t = torch.as_tensor(idx)
        model = make_model(args.arch, ds.shape, ds.num_classes, seed)
        fit(model, ds.x[t], ds.y[t], loss, recipe, make_generator(seed, device))
        return predict_logits(model, ds.x, views=views).numpy()

    rng = np.random.default_rng(12345)
    members = np.zeros(args.n, dtype=bool)
    members[rng.permutation(args.n)[: args.n // 2]] = True
    keep = attacks.make_keep_matrix(BANK, args.n, seed=1)
    t0 = time.perf_counter()
    target_logits = train(np.flatnonzero(members), seed=10_000)
    shadows = []
    for k in range(BANK):
        lg = train(np.flatnonzero(keep[k]), seed=k)
        shadows.append(attacks.logit_scaled_confidence(lg, labels[:, None]))
        print(f"  shadow {k + 1}/{BANK} ({time.perf_counter() - t0:.0f}s)", flush=True)
    out = {
        "target": attacks.logit_scaled_confidence(target_logits, labels[:, None]),
        "target_logits": target_logits,
        "shadow": np.stack(shadows),
        "keep": keep,
        "members": members,
        "labels": labels,
        "train_seconds": np.array(time.perf_counter() - t0),
    }
    out["cached"] = np.array(False)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **{k: v for k, v in out.items() if k != "cached"})  # type: ignore[arg-type]
    return out


def _row(name: str, scores: np.ndarray, members: np.ndarray) -> str:
    m = attacks.roc_metrics(scores, members, fprs=(0.001, 0.01))
    t = m["tpr_at_fpr"]
    return f"| {name} | {m['auc']:.3f} | {100 * t['0.001']:.2f}% | {100 * t['0.01']:.2f}% |"


def population_table(d: dict[str, np.ndarray]) -> list[str]:
    members, logits, labels = d["members"], d["target_logits"], d["labels"]
    rows = ["| attack (no shadows) | AUC | TPR@0.1% | TPR@1% |", "|---|---|---|---|"]
    rows.append(_row("loss", attacks.loss_attack(d["target"]), members))
    for name, fn in (
        ("confidence", attacks.confidence_attack),
        ("entropy", attacks.entropy_attack),
        ("modified_entropy", attacks.modified_entropy_attack),
    ):
        rows.append(_row(name, fn(logits, labels), members))
    return rows


def shadow_table(d: dict[str, np.ndarray]) -> list[str]:
    rows = ["| attack | shadows | AUC | TPR@0.1% | TPR@1% |", "|---|---|---|---|---|"]
    for name in attacks.available():
        attack = attacks.get(name)
        if not attack.needs_shadows:
            continue
        for m in SHADOW_COUNTS:
            scores = attack.fn(d["target"], d["shadow"][:m], d["keep"][:m])
            row = _row(name, scores, d["members"])
            rows.append(row.replace(f"| {name} |", f"| {name} | {m} |", 1))
    return rows


def _lira_offline_any(target: np.ndarray, shadow: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Offline LiRA with a fixed variance; with one OUT model per sample the pooled
    within-sample variance does not exist, so use the variance of all OUT signals per
    query (Carlini et al.'s reference code's global estimate)."""
    if (~keep).sum(axis=0).min() >= 2:
        return lira(target, shadow, keep, online=False, fixed_variance=True)
    out = np.where(~keep[:, :, None], shadow, np.nan)
    mu = np.nanmean(out, axis=0)
    sd = np.nanstd(out.reshape(-1, out.shape[2]), axis=0, ddof=1)
    from scipy.special import log_ndtr

    return np.asarray(log_ndtr((target - mu) / sd).mean(axis=1))


def few_references_table(d: dict[str, np.ndarray], repeats: int) -> list[str]:
    """Offline RMIA vs offline LiRA with 1, 2, 4 OUT references per sample."""
    members, target = d["members"], d["target"]
    p_t, p_s = 1 / (1 + np.exp(-target.astype(np.float64))), 1 / (1 + np.exp(-d["shadow"]))
    z = np.flatnonzero(~members)
    rows = [
        "| OUT refs / sample (shadows) | LiRA offline AUC | RMIA offline AUC (a) "
        "| LiRA TPR@1% | RMIA TPR@1% | RMIA >= LiRA (AUC) |",
        "|---|---|---|---|---|---|",
    ]
    for refs in (1, 2, 4):
        m = 2 * refs
        res = []
        for g in range(repeats):
            sl = slice(g * m, (g + 1) * m)
            s, k = d["shadow"][sl], d["keep"][sl]
            a = tune_rmia_a(p_s[sl], k) if m >= 4 else DEFAULT_OFFLINE_A
            r = rmia(p_t, p_s[sl], k, z, online=False, a=a)
            li = _lira_offline_any(target, s, k)
            mr, ml = attacks.roc_metrics(r, members), attacks.roc_metrics(li, members)
            res.append(
                (ml["auc"], mr["auc"], a, ml["tpr_at_fpr"]["0.01"], mr["tpr_at_fpr"]["0.01"])
            )
        v = np.array(res)
        wins = int(np.sum(v[:, 1] >= v[:, 0]))
        a_txt = f"{v[0, 2]:.1f}" if m < 4 else f"{v[:, 2].min():.1f}-{v[:, 2].max():.1f}"
        rows.append(
            f"| {refs} ({m}) | {v[:, 0].mean():.3f} ± {v[:, 0].std(ddof=1):.3f} "
            f"| {v[:, 1].mean():.3f} ± {v[:, 1].std(ddof=1):.3f} (a {a_txt}) "
            f"| {100 * v[:, 3].mean():.2f}% | {100 * v[:, 4].mean():.2f}% "
            f"| {wins}/{repeats} |"
        )
    return rows


def control_lines(d: dict[str, np.ndarray], n_eps: int) -> list[str]:
    """Epsilon/F and SVC MIA-Efficacy on controls built from the shadow bank alone."""
    keep, sig = d["keep"], d["shadow"][:, :, 0].astype(np.float64)
    n = min(n_eps, keep.shape[1])
    # per sample, the 32 IN models play "unlearned by a no-op" and the 32 OUT models
    # "retrained"; a retrain control splits the OUT models in two halves of 16
    ins = np.stack([sig[keep[:, i], i] for i in range(n)], axis=1)
    outs = np.stack([sig[~keep[:, i], i] for i in range(n)], axis=1)
    lines = [f"- per-example epsilon on {n} pool samples, 16 vs 16 models, delta 1e-5:"]
    for rule in ("both", "single"):
        eps_noop = attacks.per_example_epsilon(ins[:16], outs[16:], rule=rule)
        eps_ret = attacks.per_example_epsilon(outs[:16], outs[16:], rule=rule)
        lines += [
            f"  - rule {rule}: no-op (IN vs OUT models) median eps {np.median(eps_noop):.2f}, "
            f"F = {attacks.forget_quality(eps_noop, n_models=16):.3f}; retrain control "
            f"(OUT vs OUT) median eps {np.median(eps_ret):.2f}, "
            f"F = {attacks.forget_quality(eps_ret, n_models=16):.3f}",
        ]
    members, labels, logits = d["members"], d["labels"], d["target_logits"]
    conf = attacks.confidence_attack(logits, labels)
    rng = np.random.default_rng(0)
    mem, non = rng.permutation(np.flatnonzero(members)), rng.permutation(np.flatnonzero(~members))
    forget, retain = mem[: mem.size // 10], mem[mem.size // 10 :]
    unseen, fit_non = non[: non.size // 10], non[non.size // 10 :]
    eff_members = attacks.svc_mia_efficacy(conf[retain], conf[fit_non], conf[forget], seed=0)
    eff_unseen = attacks.svc_mia_efficacy(conf[retain], conf[fit_non], conf[unseen], seed=0)
    lines += [
        "- SVC MIA-Efficacy (share predicted non-member; feature p_y of the target model):",
        f"  - on 10% of its members (nothing forgotten): {eff_members:.3f}",
        f"  - on 10% held-out non-members (what retraining would give): {eff_unseen:.3f}",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--queries", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--eps-samples", type=int, default=1000)
    ap.add_argument("--cache", default="runs/bench_attacks")
    ap.add_argument("--out", default="benchmarks/results/attacks.txt")
    args = ap.parse_args()
    t0 = time.perf_counter()
    d = train_signals(args)
    t_score = time.perf_counter()
    acc = float(np.mean(d["target_logits"][:, 0].argmax(1) == d["labels"]))
    test_acc = float(
        np.mean(d["target_logits"][~d["members"], 0].argmax(1) == d["labels"][~d["members"]])
    )
    lines = [
        f"# attacks benchmark ({time.strftime('%Y-%m-%d %H:%M')}); "
        f"{platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}",
        f"# Fashion-MNIST pool n={args.n} (first n training images), arch {args.arch}, "
        f"{args.epochs} epochs SGD (no train augmentation), {args.queries} query views, "
        f"target = random half, {BANK} shadows on complementary pairs",
        f"# target accuracy: pool {acc:.3f}, non-members {test_acc:.3f}; "
        f"training took {float(d['train_seconds']):.0f}s"
        + (" (signals loaded from the cache of an earlier run)" if bool(d["cached"]) else ""),
        "",
        "## Population attacks (target members vs non-members)",
        *population_table(d),
        "",
        "## Shadow-model attacks (registry entries) by number of shadow models",
        *shadow_table(d),
        "",
        f"## Few references: offline RMIA vs offline LiRA (mean ± sd over {args.repeats} "
        "disjoint shadow groups)",
        *few_references_table(d, args.repeats),
        "",
        "## Controls without an unlearner",
        *control_lines(d, args.eps_samples),
        "",
        f"# scoring {time.perf_counter() - t_score:.1f}s, total {time.perf_counter() - t0:.0f}s",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
