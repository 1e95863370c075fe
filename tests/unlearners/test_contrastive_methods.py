"""Contrastive pieces: NT-Xent against a plain loop, alignment calibration's effect."""

import math

import torch
import torch.nn.functional as F

from learning import make_generator
from tests.unlearners.helpers import CPU, run
from unlearners._contrastive import nt_xent_pairs


def test_nt_xent_pairs_match_the_definition():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    t = 0.5
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = 5
    loss = []
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        num = math.exp(float(z[i] @ z[pos]) / t)
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(2 * n) if k != i)
        loss.append(-math.log(num / den))
    expected = torch.tensor([(loss[i] + loss[i + n]) / 2 for i in range(n)])
    torch.testing.assert_close(nt_xent_pairs(z1, z2, t), expected, rtol=1e-5, atol=1e-6)


def _alignment(model, objective, x):
    v1, v2 = objective.views(x, make_generator(9, CPU))
    with torch.no_grad():
        return F.cosine_similarity(model(v1), model(v2), dim=1).mean().item()


def test_alignment_calibration_lowers_forget_alignment_not_retain(encoder):
    s = encoder
    out = run("alignment_calibration", s, epochs=10.0, lr_scale=2.0)
    f_before, f_after = (
        _alignment(s.model, s.objective, s.forget[0]),
        _alignment(out, s.objective, s.forget[0]),
    )
    r_before, r_after = (
        _alignment(s.model, s.objective, s.retain[0]),
        _alignment(out, s.objective, s.retain[0]),
    )
    assert f_before - f_after > 0.04
    assert f_before - f_after > 3 * abs(r_before - r_after)
