"""Audit from Python: your dataset, your model factory, your original and your method.

Run it (a few seconds on a laptop CPU with the default tiny settings):

    python examples/python_api.py --out runs/example

Everything the CLI can do is a config plus ``run_audit``; in-memory objects go in
``AuditInputs``. The controls (``noop`` must fail, ``retrain`` must pass) run as always.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit import AuditInputs, from_dict, run_audit
from unlearn_audit.learning import Dataset, load_dataset
from unlearn_audit.unlearners import Unlearner, seed_from


def make_net() -> nn.Module:
    """Your architecture: any nn.Module mapping (n, 1, 8, 8) images to 10 logits."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


@dataclass(frozen=True)
class DampenParams:
    """Your method's hyper-parameters (shown by `unlearn-audit methods` if registered)."""

    steps: int = 30
    lr: float = 0.01


class ForgetByRelabel(Unlearner):
    """Your unlearning method: push the forget samples towards their second-best class while
    fine-tuning on the retain set. It works on the private copy it is given."""

    name = "relabel"
    paradigms = frozenset({"supervised"})
    summary = "example: relabel forget samples to their runner-up class"
    Params = DampenParams

    def _unlearn(self, model, request, ctx):
        """``request`` holds the forget and retain (x, y) tensors, ``ctx`` the objective,
        recipe and generator of the run (docs/python-api.md)."""
        generator = ctx.generator
        opt = torch.optim.SGD(model.parameters(), lr=self.params.lr, momentum=0.9)
        fx, fy = request.forget
        rx, ry = request.retain
        with torch.no_grad():
            runner_up = model(fx).scatter(1, fy[:, None], float("-inf")).argmax(1)
        for _ in range(self.params.steps):
            idx = torch.randint(0, len(rx), (64,), generator=generator, device=rx.device)
            loss = F.cross_entropy(model(fx), runner_up) + F.cross_entropy(model(rx[idx]), ry[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        _ = seed_from(generator)  # every random draw comes from the generator
        return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="runs/example")
    ap.add_argument("--shadows", type=int, default=8)
    ap.add_argument("--limit", type=int, default=1797)
    args = ap.parse_args()

    # 1. Your data, in memory (here: digits; any float (n, c, h, w) tensor works).
    digits = load_dataset("digits", limit=args.limit)
    data = Dataset(
        "my-digits",
        digits.x,
        digits.y,
        digits.classes,
        ids=np.array([f"rec-{i}" for i in range(len(digits))]),
    )

    # 2. A config for everything else (the same keys as a TOML file).
    cfg = from_dict(
        {
            "name": "python-api-example",
            "train": {"epochs": 40, "batch_size": 32},
            "unlearn": {"methods": ["finetune"]},
            "attack": {"shadows": args.shadows},
        }
    )

    # 3. Run: your factory builds the reference and shadow models, your method is judged.
    result = run_audit(
        cfg,
        args.out,
        inputs=AuditInputs(dataset=data, model_factory=make_net, methods=[ForgetByRelabel()]),
    )

    for name, verdict in result.results["verdicts"].items():
        print(f"{name:<10} {verdict['status']:<13} {verdict['reasons'][0][:90]}")
    print("controls separated:", result.results["controls"]["separated"])
    print("report:", result.report)


if __name__ == "__main__":
    main()
