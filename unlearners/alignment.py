"""``alignment_calibration``: unlearning for contrastive encoders (Wang et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.unlearners._common import CONTRASTIVE, index_set, non_negative
from unlearn_audit.unlearners._contrastive import nt_xent_pairs, temperature_of
from unlearn_audit.unlearners.base import register
from unlearn_audit.unlearners.request import ForgetRequest, UnlearnContext
from unlearn_audit.unlearners.tuning import FineTuneUnlearner, TuneParams, Tuning


@dataclass(frozen=True)
class AlignmentCalibrationParams(TuneParams):
    """Alignment-calibration hyper-parameters.

    Attributes:
        epochs: Passes over forget + retain, shuffled together.
        lr_scale: Learning rate as a multiple of the recipe's ``lr``.
        alpha: Weight of the forget-alignment term (the paper sweeps 0.8-2.0).
        forget_weight: Weight ``gamma`` of the forget pairs in the InfoNCE average.
    """

    epochs: float = 2.0
    lr_scale: float = 0.1
    alpha: float = 1.0
    forget_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        non_negative("alpha", self.alpha)
        non_negative("forget_weight", self.forget_weight)


@register
class AlignmentCalibration(FineTuneUnlearner):
    """Alignment Calibration (AC) for contrastive encoders.

    Wang, Lu, Zhang, Boenisch, Dziedzic, Yu & Gao 2024, "MUC: Machine Unlearning
    for Contrastive Learning with Black-box Evaluation" (arXiv:2406.03603). On a
    batch of forget and retain samples with views ``t1(x)``, ``t2(x)`` and
    encoder ``f``:

        L = sum_i w_i l_i / sum_i w_i  +  alpha * mean_{x in B_f} cos(f(t1(x)), f(t2(x))),

    where ``l_i`` is the NT-Xent loss of the pair ``(t1(x_i), partner_i)``, the
    partner being ``t2(x_i)`` for a retain sample and a view of a *different*,
    randomly drawn forget sample for a forget sample (the "negative partner"), and
    ``w_i`` is 1 for retain pairs and ``forget_weight`` for forget pairs. The first
    term keeps the contrastive structure while no longer pulling the forget
    samples' views together; the second lowers their augmentation alignment,
    the signal black-box audits of encoders read.

    Choices: the partner sample is redrawn every step (the reference code draws a
    random index per access); the encoder's temperature is the objective's
    ``temperature`` attribute (default 0.5); SimCLR-style in-batch negatives are
    used whatever the original objective (the reference adapts MoCo's queue).
    An objective without negatives (BYOL) is refused (``needs_negatives``): the
    first term is InfoNCE, whose forget pairs are made *negatives*, and would
    train such an encoder with another objective than its own (the paper
    evaluates SimCLR, MoCo and CLIP only).
    """

    name = "alignment_calibration"
    paradigms = CONTRASTIVE
    summary = "contrastive: InfoNCE with negative partners for forget + lower forget alignment"
    Params = AlignmentCalibrationParams
    needs_negatives = True
    trains_on = ("forget", "retain")

    def tuning(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> Tuning:
        p: AlignmentCalibrationParams = self.params
        views = ctx.objective.views  # type: ignore[attr-defined]
        temperature = temperature_of(ctx.objective)
        xf = request.forget[0]
        nf = xf.shape[0]
        x_all = torch.cat([xf, request.retain[0]])

        def loss(
            m: nn.Module, idx: torch.Tensor, _: torch.Tensor, g: torch.Generator
        ) -> torch.Tensor:
            is_f = idx < nf
            v1, v2 = views(x_all[idx], g)
            partner = v2
            if is_f.any() and nf > 1:
                own = idx[is_f]
                other = (own + torch.randint(1, nf, own.shape, generator=g, device=own.device)) % nf
                partner = v2.clone()
                partner[is_f] = views(xf[other], g)[0]
            z1, zp = m(v1), m(partner)
            w = torch.where(
                is_f, torch.full_like(z1[:, 0], p.forget_weight), torch.ones_like(z1[:, 0])
            )
            pairs = nt_xent_pairs(z1, zp, temperature)
            total = (w * pairs).sum() / w.sum().clamp_min(1e-12)
            if p.alpha > 0 and is_f.any():
                z2 = m(v2[is_f])
                total = (
                    total
                    + p.alpha * F.cosine_similarity(z1[is_f].float(), z2.float(), dim=1).mean()
                )
            return total

        return Tuning(loss, data=index_set(x_all.shape[0], x_all.device))
