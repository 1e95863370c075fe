"""neggrad_plus and l1_sparse: each extra term does what it says (same draws, weight 0 vs > 0)."""

import torch
import torch.nn.functional as F

from tests.unlearners.helpers import run
from unlearners.penalised import l1_norm


def test_neggrad_plus_forget_term_raises_forget_loss(classifier):
    s = classifier
    # the forget batches are drawn whatever the weight: both runs see the same data
    plain = run("neggrad_plus", s, forget_weight=0.0, lr_scale=1.0)
    plus = run("neggrad_plus", s, forget_weight=5.0, lr_scale=1.0)
    with torch.no_grad():
        assert F.cross_entropy(plus(s.forget[0]), s.forget[1]) > 10 * F.cross_entropy(
            plain(s.forget[0]), s.forget[1]
        )


def test_l1_sparse_penalty_shrinks_the_weights(classifier):
    plain = run("l1_sparse", classifier, l1=0.0, lr_scale=1.0)
    sparse = run("l1_sparse", classifier, l1=1e-2, lr_scale=1.0)
    assert l1_norm(sparse) < 0.95 * l1_norm(plain)
