"""A fine-tuning-style unlearning method in one file (docs/python-api.md walks through it)."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from unlearn_audit.unlearners import FineTuneUnlearner, TuneParams, Tuning


@dataclass(frozen=True)
class ConfuseParams(TuneParams):
    """Attributes (besides ``epochs`` and ``lr_scale``, whose defaults it sets):
    weight: Weight of the forget term."""

    epochs: float = 2.0
    lr_scale: float = 0.5
    weight: float = 1.0


class RetainConfuse(FineTuneUnlearner):
    """Fine-tune on retain while pushing predictions on forget towards uniform."""

    name = "retain_confuse"
    paradigms = frozenset({"supervised"})
    summary = "example: fine-tune on retain, uniform predictions on forget"
    Params = ConfuseParams
    trains_on = ("retain",)  # budget: epochs x ceil(n_retain / batch_size) steps

    def tuning(self, model, request, ctx):
        fx = request.forget[0]

        def loss(m, x, y, g):
            pick = torch.randint(0, len(fx), (len(x),), generator=g, device=fx.device)
            uniform_ce = -F.log_softmax(m(fx[pick]).float(), dim=1).mean()
            return ctx.objective.loss(m, x, y, g) + self.params.weight * uniform_ce

        return Tuning(loss)
