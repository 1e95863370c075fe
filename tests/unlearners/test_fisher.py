"""ssd and fisher: importances against plain loops, the dampening rule, the noise."""

import copy

import torch
import torch.nn.functional as F

from tests.unlearners.helpers import CPU, run
from unlearn_audit.learning import make_generator
from unlearn_audit.unlearners.fisher import true_fisher_diag


def _loop_importance(model, x, y, batch_size):
    imp = [torch.zeros_like(p) for p in model.parameters()]
    n = 0
    for s in range(0, len(x), batch_size):
        model.zero_grad()
        F.cross_entropy(model(x[s : s + batch_size]), y[s : s + batch_size]).backward()
        for i, p in zip(imp, model.parameters(), strict=True):
            i += p.grad**2
        n += 1
    return [i / n for i in imp]


def test_ssd_matches_its_equations_computed_by_a_plain_loop(classifier):
    s = classifier
    alpha, lam = 2.0, 0.5
    out = run("ssd", s, alpha=alpha, lam=lam)
    ref = copy.deepcopy(s.model).eval()
    xd = torch.cat([s.forget[0], s.retain[0]])
    yd = torch.cat([s.forget[1], s.retain[1]])
    i_d = _loop_importance(ref, xd, yd, s.recipe.batch_size)
    i_f = _loop_importance(ref, *s.forget, s.recipe.batch_size)
    dampened = 0
    for p0, p1, d, f in zip(ref.parameters(), out.parameters(), i_d, i_f, strict=True):
        sel = f > alpha * d
        beta = torch.where(sel, torch.clamp(lam * d / f, max=1.0), torch.ones_like(d))
        torch.testing.assert_close(p1, p0 * beta, rtol=1e-5, atol=1e-7)
        dampened += int(sel.sum())
    assert dampened > 0


def test_ssd_without_selected_weights_is_bit_identical(classifier):
    out = run("ssd", classifier, alpha=1e30)
    for k, v in classifier.model.state_dict().items():
        assert torch.equal(out.state_dict()[k], v)


def test_true_fisher_matches_a_plain_loop(classifier):
    model = copy.deepcopy(classifier.model).eval()
    x = classifier.retain[0][:6]
    fast = true_fisher_diag(model, x, chunk=4)
    slow = [torch.zeros_like(p) for p in model.parameters()]
    for i in range(len(x)):
        logp = F.log_softmax(model(x[i : i + 1]), 1)[0]
        for k in range(logp.shape[0]):
            grads = torch.autograd.grad(logp[k], list(model.parameters()), retain_graph=True)
            for acc, g in zip(slow, grads, strict=True):
                acc += logp[k].exp().detach() * g**2
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b / len(x), rtol=1e-4, atol=1e-9)


def test_fisher_noise_has_the_documented_variance(classifier):
    s = classifier
    alpha, max_var = 1e-4, 1e2
    out = run("fisher", s, alpha=alpha, max_var=max_var, samples=0)
    fisher = true_fisher_diag(copy.deepcopy(s.model).eval(), s.retain[0])
    z = []
    for p0, p1, f in zip(s.model.parameters(), out.parameters(), fisher, strict=True):
        var = alpha * torch.clamp(1.0 / (f + 1e-8), max=max_var)
        z.append(((p1 - p0) / var.sqrt()).detach().flatten())
    z = torch.cat(z)  # ~N(0, 1) if the noise has the documented variance
    assert z.numel() > 5000
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1.0) < 0.05
    _ = make_generator(0, CPU)
