"""Benchmark: shadow models per minute, measured side by side in one process.

CPU part (real Fashion-MNIST, ``--n`` pool images; shadows train on the halves of
the complementary-pair keep matrix, with random-crop augmentation):

1. **Trainers**, for ``cnn`` and ``mlp``: a plain PyTorch loop the way reference
   code trains shadows (a ``torch.utils.data.Dataset`` returning PIL images through
   ``RandomCrop(28, padding=3)`` + ``ToTensor``, ``DataLoader(shuffle=True)``, the
   same SGD/Nesterov/weight-decay/cosine recipe) vs our sequential ``fit`` (data
   resident as tensors, batched augmentation) vs our batched ``fit_ensemble``.
   The trainers alternate within each repeat; medians over ``--repeats``; the
   test accuracy (mean over the bank, held-out images) shows equal quality.
2. **Bank size**: seconds per shadow for banks of 4, 16 and 64, both engines
   (the batched engine trains ensembles of at most ``ENSEMBLE_SIZE``, as the audit).
3. **Pool size**: seconds per shadow for pools of 500 to 4,000 images.
4. **Growing a bank through the audit's cache** (``Producer.shadows``): 4, then
   16, then 64 shadows, then 64 again; models trained and seconds at each step.

``--gpu-check`` instead measures batched vs sequential shadows per minute for
``cnn`` and ``resnet18`` on random CIFAR-shaped tensors (see gpu_check.sh); on
CUDA it writes the table into docs/performance.md, elsewhere it is a smoke run.

Usage (about 15-25 minutes on 2 busy CPU cores)::

    nice -n 5 python benchmarks/shadow_bank.py [--threads 1] [--repeats 3]
        [--out benchmarks/results/shadow_bank.txt]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# benchmarks/attacks.py is named like the package: drop this folder from the import path.
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.attacks import make_keep_matrix
from unlearn_audit.learning import (
    Augment,
    CrossEntropy,
    Recipe,
    accuracy,
    fit,
    fit_ensemble,
    load_dataset,
    make_generator,
    make_model,
)
from unlearn_audit.learning.ensemble import ENSEMBLE_SIZE

FASHION = "/usr/share/datasets/fashion-mnist"
CPU = torch.device("cpu")
Trainer = Callable[[list[np.ndarray], list[int]], list[nn.Module]]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


class Bench:
    """The data, the recipe and the three trainers of one architecture."""

    def __init__(self, arch: str, x: torch.Tensor, y: torch.Tensor, recipe: Recipe) -> None:
        self.arch, self.x, self.y, self.recipe = arch, x, y, recipe
        self.shape = (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))
        self.device = x.device
        pad = max(1, self.shape[1] // 8)
        self.aug = Augment(pad, False) if recipe.augment else None

    def model(self, seed: int) -> nn.Module:
        return make_model(self.arch, self.shape, 10, seed).to(self.device)

    def sequential(self, subsets: list[np.ndarray], seeds: list[int]) -> list[nn.Module]:
        out = []
        for idx, seed in zip(subsets, seeds, strict=True):
            t = torch.as_tensor(idx, device=self.device)
            gen = make_generator(seed, self.device)
            loss = CrossEntropy(self.aug).loss
            out.append(fit(self.model(seed), self.x[t], self.y[t], loss, self.recipe, gen))
        return out

    def batched(self, subsets: list[np.ndarray], seeds: list[int]) -> list[nn.Module]:
        out: list[nn.Module] = []
        for s in range(0, len(subsets), ENSEMBLE_SIZE):
            sub, sd = subsets[s : s + ENSEMBLE_SIZE], seeds[s : s + ENSEMBLE_SIZE]
            out += fit_ensemble(
                [self.model(seed) for seed in sd],
                self.x,
                self.y,
                [torch.as_tensor(i, device=self.device) for i in sub],
                self.recipe,
                [make_generator(seed, self.device) for seed in sd],
                augment=self.aug,
            )
        return out

    def dataloader(self, subsets: list[np.ndarray], seeds: list[int]) -> list[nn.Module]:
        return [self._reference_loop(idx, seed) for idx, seed in zip(subsets, seeds, strict=True)]

    def _reference_loop(self, idx: np.ndarray, seed: int) -> nn.Module:
        """The usual reference code: PIL samples, torchvision transforms, a DataLoader."""
        from PIL import Image
        from torch.utils.data import DataLoader, Dataset
        from torchvision import transforms

        images = (self.x[idx, 0] * 255).round().to(torch.uint8).numpy()
        labels = self.y[idx].tolist()
        steps = [transforms.RandomCrop(self.shape[1], padding=self.aug.padding)] if self.aug else []
        tf = transforms.Compose([*steps, transforms.ToTensor()])

        class PILData(Dataset):
            def __len__(self) -> int:
                return len(labels)

            def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
                return tf(Image.fromarray(images[i], mode="L")), labels[i]

        torch.manual_seed(seed)
        loader = DataLoader(PILData(), batch_size=self.recipe.batch_size, shuffle=True)
        model, r = self.model(seed), self.recipe
        opt = torch.optim.SGD(
            model.parameters(), lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay,
            nesterov=True,
        )  # fmt: skip
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=r.epochs * len(loader))
        model.train()
        for _ in range(r.epochs):
            for xb, yb in loader:
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        return model.eval()


def timed(fn: Trainer, subsets: list[np.ndarray], seeds: list[int]) -> tuple[float, list]:
    t0 = time.perf_counter()
    models = fn(subsets, seeds)
    return (time.perf_counter() - t0) / len(subsets), models


def bank(n: int, m: int, seed: int = 1) -> list[np.ndarray]:
    keep = make_keep_matrix(m, n, seed)
    return [np.flatnonzero(row) for row in keep]


def fashion(n: int, test: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    ds = load_dataset("fashion-mnist", FASHION, limit=n + test)
    return ds.x, ds.y


def section_trainers(args: argparse.Namespace, emit: Callable[[str], None]) -> None:
    test = 2000
    x, y = fashion(args.n, test)
    xt, yt = x[args.n :], y[args.n :]
    subsets, seeds = bank(args.n, args.m), list(range(args.m))
    emit(f"\n## 1. Trainers: {args.m} shadows on halves of a pool of {args.n}, "
         f"{args.epochs} epochs, batch {args.batch}, crop augmentation; "
         f"medians of {args.repeats} repeats; test accuracy on {test} held-out images")  # fmt: skip
    emit("| arch | trainer | s/shadow | shadows/min | × vs DataLoader | test acc |")
    emit("|---|---|---|---|---|---|")
    for arch in args.archs:
        b = Bench(arch, x[: args.n], y[: args.n], recipe(args))
        trainers = {"DataLoader + PIL": b.dataloader, "ours, sequential": b.sequential,
                    "ours, batched": b.batched}  # fmt: skip
        for fn in trainers.values():  # warm-up (imports, allocator, first-call costs)
            fn([subsets[0][:128]], seeds[:1])
        times: dict[str, list[float]] = {k: [] for k in trainers}
        accs: dict[str, list[float]] = {k: [] for k in trainers}
        for r in range(args.repeats):
            order = list(trainers) if r % 2 == 0 else list(reversed(trainers))
            for name in order:
                sec, models = timed(trainers[name], subsets, seeds)
                times[name].append(sec)
                accs[name] += [accuracy(mdl, xt, yt) for mdl in models]
        base = statistics.median(times["DataLoader + PIL"])
        for name in trainers:
            med = statistics.median(times[name])
            emit(f"| {arch} | {name} | {med:.2f} | {60 / med:.1f} | {base / med:.2f} | "
                 f"{np.mean(accs[name]):.3f} |")  # fmt: skip
        emit(f"  ({arch} raw s/shadow: "
             + "; ".join(f"{k}: {', '.join(f'{t:.2f}' for t in v)}" for k, v in times.items())
             + f"; {load()})")  # fmt: skip


def recipe(args: argparse.Namespace, epochs: int | None = None) -> Recipe:
    return Recipe(epochs=epochs or args.epochs, batch_size=args.batch, lr=0.05, augment=True)


def section_bank_size(args: argparse.Namespace, emit: Callable[[str], None]) -> None:
    n, epochs = args.scale_n, args.scale_epochs
    x, y = fashion(n)
    b = Bench("cnn", x, y, recipe(args, epochs))
    emit(f"\n## 2. Bank size: cnn, pool {n}, {epochs} epochs (seconds per shadow)")
    emit("| shadows | sequential | batched | seq/batched |")
    emit("|---|---|---|---|")
    for m in args.banks:
        subsets, seeds = bank(n, m), list(range(m))
        ts, _ = timed(b.sequential, subsets, seeds)
        tb, _ = timed(b.batched, subsets, seeds)
        emit(f"| {m} | {ts:.3f} | {tb:.3f} | {ts / tb:.2f} |")
    emit(f"  ({load()})")


def section_pool_size(args: argparse.Namespace, emit: Callable[[str], None]) -> None:
    epochs, m = args.scale_epochs, 4
    emit(f"\n## 3. Pool size: cnn, {m} shadows, {epochs} epochs (seconds per shadow)")
    emit("| pool | per shadow | sequential | batched | seq/batched |")
    emit("|---|---|---|---|---|")
    for n in args.pools:
        x, y = fashion(n)
        b = Bench("cnn", x, y, recipe(args, epochs))
        subsets, seeds = bank(n, m), list(range(m))
        ts, _ = timed(b.sequential, subsets, seeds)
        tb, _ = timed(b.batched, subsets, seeds)
        emit(f"| {n} | {n // 2} | {ts:.3f} | {tb:.3f} | {ts / tb:.2f} |")
    emit(f"  ({load()})")


def section_growth(args: argparse.Namespace, emit: Callable[[str], None]) -> None:
    from unlearn_audit.audit.config import from_dict
    from unlearn_audit.audit.inputs import AuditInputs, load_setup
    from unlearn_audit.audit.production import Producer
    from unlearn_audit.audit.rundir import ModelStore

    n, epochs = args.scale_n, args.scale_epochs
    emit(f"\n## 4. Growing a bank through the audit cache: cnn, pool {n}, {epochs} epochs")
    emit("| engine | bank | newly trained | seconds | s per new shadow |")
    emit("|---|---|---|---|---|")
    for engine in ("sequential", "batched"):
        with tempfile.TemporaryDirectory() as tmp:
            store = ModelStore(Path(tmp) / "models")
            for m in args.growth:
                cfg = from_dict({
                    "data": {"dataset": "fashion-mnist", "root": FASHION, "limit": n},
                    "model": {"arch": "cnn"},
                    "train": {"epochs": epochs, "batch_size": args.batch, "augment": True},
                    "attack": {"shadows": m, "engine": engine, "queries": 1},
                })  # fmt: skip
                setup, plan = load_setup(cfg, AuditInputs())
                p = Producer(setup, store, progress=False, log=lambda s: None)
                before = len(list(store.root.glob("shadow-*.json")))
                t0 = time.perf_counter()
                p.shadows(plan)
                sec = time.perf_counter() - t0
                new = len(list(store.root.glob("shadow-*.json"))) - before
                per = f"{sec / new:.3f}" if new else "-"
                emit(f"| {engine} | {m} | {new} | {sec:.1f} | {per} |")
    emit(f"  ({load()})")


def gpu_check(args: argparse.Namespace, emit: Callable[[str], None]) -> list[str]:
    """Batched vs sequential on random CIFAR-shaped tensors; returns the table's lines."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tiny = args.tiny or device.type != "cuda"
    n, hw = (64, 16) if tiny else (4096, 32)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, hw, hw, generator=gen).to(device)
    y = torch.randint(0, 10, (n,), generator=gen).to(device)
    plan = {"cnn": 2 if tiny else 32, "resnet18": 2 if tiny else 8}
    rec = Recipe(epochs=1 if tiny else 2, batch_size=16 if tiny else 128, lr=0.05)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
    lines = [
        f"{'CPU SMOKE RUN (not GPU figures)' if device.type != 'cuda' else 'GPU'}: {name}, "
        f"torch {torch.__version__}; random {n}x3x{hw}x{hw} pool, shadows on halves, "
        f"{rec.epochs} epochs, batch {rec.batch_size}, crop+flip, bf16 autocast on CUDA",
        "",
        "| arch | shadows | sequential s/shadow | batched s/shadow | seq shadows/min | "
        "batched shadows/min | batched/seq |",
        "|---|---|---|---|---|---|---|",
    ]
    for line in lines:
        emit(line)
    for arch, m in plan.items():
        b = Bench(arch, x, y, rec)
        b.aug = Augment(max(1, hw // 8), True)
        subsets, seeds = bank(n, m), list(range(m))
        try:
            for fn in (b.sequential, b.batched):  # warm-up: cuDNN autotuning, vmap tracing
                fn(subsets[:2], seeds[:2])
            res = {}
            for label, fn in (("seq", b.sequential), ("bat", b.batched)):
                sync(device)
                res[label], _ = timed(fn, subsets, seeds)
                sync(device)
        except Exception as exc:  # unattended: record the failure, go on
            lines.append(f"| {arch} | {m} | failed: {type(exc).__name__}: {exc} | | | | |")
            emit(lines[-1])
            continue
        s, bt = res["seq"], res["bat"]
        lines.append(f"| {arch} | {m} | {s:.3f} | {bt:.3f} | {60 / s:.1f} | {60 / bt:.1f} | "
                     f"{s / bt:.2f} |")  # fmt: skip
        emit(lines[-1])
    return lines


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def write_doc(doc: Path, lines: list[str]) -> None:
    """Replace the GPU block of docs/performance.md (between its markers)."""
    begin, end = "<!-- gpu-check:begin -->", "<!-- gpu-check:end -->"
    text = doc.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{doc} lacks the markers {begin} ... {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    body = "\n".join([f"Measured {stamp} by benchmarks/gpu_check.sh.", "", *lines])
    doc.write_text(f"{head}{begin}\n{body}\n{end}{tail}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="pool size of section 1")
    ap.add_argument("--m", type=int, default=2, help="shadows of section 1")
    ap.add_argument("--epochs", type=int, default=15, help="epochs of section 1")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--archs", nargs="+", default=["cnn", "mlp"])
    ap.add_argument("--scale-n", type=int, default=1000)
    ap.add_argument("--scale-epochs", type=int, default=2)
    ap.add_argument("--banks", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument("--pools", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    ap.add_argument("--growth", type=int, nargs="+", default=[4, 16, 64, 64])
    ap.add_argument("--sections", default="1234", help="which CPU sections to run")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--gpu-check", action="store_true", help="the GPU check instead")
    ap.add_argument("--tiny", action="store_true", help="GPU check: a seconds-long smoke run")
    ap.add_argument("--doc", type=Path, help="GPU check on CUDA: update this performance doc")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/shadow_bank.txt"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: list[str] = []

    def emit(line: str) -> None:
        print(line, flush=True)
        out.append(line)

    emit(f"# shadow bank benchmark ({time.strftime('%Y-%m-%d %H:%M')}); {platform.machine()}, "
         f"{os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}, "
         f"niceness {os.nice(0)}, {load()}")  # fmt: skip
    emit("# " + " ".join(sys.argv))
    t0 = time.perf_counter()
    if args.gpu_check:
        lines = gpu_check(args, emit)
        if args.doc is not None and torch.cuda.is_available() and not args.tiny:
            write_doc(args.doc, lines)
            emit(f"wrote the GPU table into {args.doc}")
    else:
        sections = {"1": section_trainers, "2": section_bank_size, "3": section_pool_size,
                    "4": section_growth}  # fmt: skip
        for key in args.sections:
            sections[key](args, emit)
    emit(f"\n# total {time.perf_counter() - t0:.0f}s; {load()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
