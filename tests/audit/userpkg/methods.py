from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.learning.models import reinitialize
from unlearn_audit.unlearners import Unlearner, seed_from


@dataclass(frozen=True)
class RetainOnlyParams:
    epochs: int = 40
    lr: float = 0.05


class RetainOnly(Unlearner):
    """The user's in-house method: re-initialise and retrain on the retain set with their
    own plain PyTorch loop (exact unlearning, so the audit should pass it)."""

    name = "inhouse_retrain"
    paradigms = frozenset({"supervised"})
    summary = "in-house exact unlearning (test plugin)"
    Params = RetainOnlyParams

    def _unlearn(self, model, request, ctx):
        reinitialize(model, seed_from(ctx.generator))
        p = self.params
        plain_train(model, *request.retain, epochs=p.epochs, lr=p.lr, generator=ctx.generator)
        return model


def plain_train(model: nn.Module, x, y, *, epochs: int, lr: float, generator) -> nn.Module:
    """The user's own training loop (SGD + cosine, batch 32), not the tool's."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = epochs * ((len(x) + 31) // 32)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), 32):
            idx = order[i : i + 32]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()
