"""neggrad_plus and l1_sparse: each extra term does what it says (same draws, weight 0 vs > 0)."""

import copy

import torch
import torch.nn.functional as F

from tests.unlearners.helpers import Setup, run
from unlearn_audit.learning import Recipe
from unlearn_audit.unlearners.penalised import l1_norm


def measure_forget_term_rise(setup: Setup) -> dict[str, float]:
    """How much higher one plain SGD step with the forget term (w = 1) leaves the forget
    loss than one without it (w = 0), and the first-order prediction of that rise."""
    s = copy.copy(setup)
    s.recipe = Recipe(epochs=3, batch_size=16, lr=0.05, momentum=0.0)
    steps = {"epochs": 0.2, "lr_scale": 0.1}  # one step (of ceil(80 / 16) = 5) at lr 0.005
    plain = run("neggrad_plus", s, forget_weight=0.0, **steps)
    plus = run("neggrad_plus", s, forget_weight=1.0, **steps)
    x, y = s.forget
    grads = torch.autograd.grad(F.cross_entropy(s.model(x), y), list(s.model.parameters()))
    predicted = 0.05 * 0.1 * 1.0 * sum(float((g**2).sum()) for g in grads)
    with torch.no_grad():
        rise = F.cross_entropy(plus(x), y).item() - F.cross_entropy(plain(x), y).item()
    return {"rise": rise, "predicted": predicted, "rise / predicted": rise / predicted}


def test_neggrad_plus_forget_term_is_gradient_ascent_on_the_forget_loss(classifier):
    """One plain SGD step with the forget term (w = 1) vs without it (w = 0), same draws.

    The forget batch is the whole forget set, so the step with the term is the plain one
    plus ``lr * w * grad L_f``: the forget loss ends higher by ``lr * w * ||grad L_f||^2``
    to first order. Over classifier seeds 0-23 at 1 and 2 torch threads (identical
    numbers), the measured rise over that prediction is 1.003 on average, SD 0.0046,
    range 0.993-1.014; the bounds 0.9 and 1.1 are over 20 SDs away. The former test (5
    Nesterov steps at w = 5, forget loss > 10x) saw ratios from 2.8 to 26000 over seeds
    0-15: ascent from a memorised fit grows the loss exponentially, at a rate that
    varies by orders of magnitude between fits.
    """
    m = measure_forget_term_rise(classifier)
    rise, predicted = m["rise"], m["predicted"]
    assert 0.9 < rise / predicted < 1.1, (rise, predicted)


def test_l1_sparse_penalty_shrinks_the_weights(classifier):
    plain = run("l1_sparse", classifier, l1=0.0, lr_scale=1.0)
    sparse = run("l1_sparse", classifier, l1=1e-2, lr_scale=1.0)
    assert l1_norm(sparse) < 0.95 * l1_norm(plain)
