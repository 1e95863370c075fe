"""The per-sample difficulty features and the realised outcome (difficulty/features.py)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.difficulty.features import (
    entanglement,
    grad_norms,
    loss_and_margin,
    memorization,
    residual_from_bank,
    stein_self_score,
)

# --- memorization -----------------------------------------------------------


def test_memorization_correctness_golden():
    keep = np.array([[1, 1, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 1]], bool)
    correct = np.array(
        [
            [1, 1, 0, 1],  # sample 0: fitted only when IN; 1: always; 2: never
            [1, 1, 0, 0],
            [0, 1, 0, 1],
            [0, 1, 0, 0],
        ],
        float,
    )
    mem = memorization(correct, keep)
    assert mem[0] == 1.0 and mem[1] == 0.0 and mem[2] == 0.0
    assert mem[3] == pytest.approx(0.0 - 1.0)  # sample 3 fitted only when OUT


def test_memorization_confidence_matches_loop():
    rng = np.random.default_rng(0)
    conf = rng.random((8, 6))
    keep = np.zeros((8, 6), bool)
    for i in range(6):
        keep[rng.permutation(8)[:4], i] = True
    want = [conf[keep[:, i], i].mean() - conf[~keep[:, i], i].mean() for i in range(6)]
    np.testing.assert_allclose(memorization(conf, keep), want, rtol=1e-12)


def test_memorization_needs_both_sides():
    keep = np.array([[True, True], [True, False]])
    with pytest.raises(ValueError, match="IN and one OUT"):
        memorization(np.ones((2, 2)), keep)
    with pytest.raises(ValueError):
        memorization(np.ones((2, 2)), keep.astype(int))


# --- loss and margin --------------------------------------------------------


def test_loss_and_margin_golden_and_loop():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 1.0], [5.0, 5.0, -1.0]])
    labels = np.array([0, 2, 1])
    loss, margin = loss_and_margin(logits, labels)
    assert loss[0] == pytest.approx(math.log(math.exp(2) + 2) - 2)
    np.testing.assert_allclose(margin, [2.0, -2.0, 0.0])
    ref = F.cross_entropy(torch.tensor(logits), torch.tensor(labels), reduction="none")
    np.testing.assert_allclose(loss, ref.numpy(), rtol=1e-12)


# --- model-based features ---------------------------------------------------


def _linear(seed=0, d=5, c=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, c)).double()


def _data(n=7, d=5, c=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, d, generator=g, dtype=torch.float64), torch.arange(n) % c


def test_grad_norms_linear_closed_form():
    model, (x, y) = _linear(), _data()
    lin = model[1]
    p = torch.softmax(lin(x.flatten(1)), 1)
    err = p - F.one_hot(y, 3).double()
    # dW = err x^T, db = err: ||.|| = ||err|| * sqrt(||x||^2 + 1)
    want = err.norm(dim=1) * (x.flatten(1).pow(2).sum(1) + 1).sqrt()
    np.testing.assert_allclose(
        grad_norms(model, x, y, batch_size=3), want.detach().numpy(), rtol=1e-10
    )


def test_grad_norms_vmap_matches_loop_and_restores_mode():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)
    ).double()
    model(torch.randn(16, 1, 5, dtype=torch.float64))  # non-trivial running stats
    x, y = _data()
    model.train()
    got = grad_norms(model, x, y, batch_size=4)
    assert model.training
    model.eval()
    want = []
    for i in range(x.shape[0]):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        want.append(math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters())))
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_stein_self_score_linear_closed_form():
    model, (x, y) = _linear(), _data()
    w = model[1].weight
    p = torch.softmax(model(x), 1)
    s = (F.one_hot(y, 3).double() - p) @ w  # grad_x log p(y|x) = W^T (e_y - p)
    want = s.pow(2).sum(1) + 5 / 2.0**2
    got = stein_self_score(model, x, y, bandwidth=2.0, batch_size=2)
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10)


def test_stein_self_score_loop_and_median_bandwidth():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x, y = _data()
    got = stein_self_score(model, x, y)
    flat = x.flatten(1)
    h = torch.pdist(flat).median().item()
    want = []
    for i in range(x.shape[0]):
        xi = x[i : i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.log_softmax(model(xi), 1)[0, y[i]], xi)
        want.append(float(g.pow(2).sum()) + 5 / h**2)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(3))
    np.testing.assert_allclose(
        stein_self_score(model, x[perm], y[perm]), got[perm.numpy()], rtol=1e-12
    )


# --- entanglement -----------------------------------------------------------


def test_entanglement_duplicate_is_maximal():
    z = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [0.0, 0.0], [3.0, 3.0], [4.0, 4.0]])
    lab = np.array([0, 0, 1, 0, 0, 0])
    retain = np.array([0, 1, 2])
    forget = np.array([3, 4, 5])  # 3 duplicates retain 0
    e1 = entanglement(z, lab, forget, retain, k=1)
    assert e1[0] == 1.0 and e1.argmax() == 0
    # sample 4 at (3,3): same-class nearest (1,0) at sqrt(13), other (5,5) at sqrt(8)
    assert e1[1] == pytest.approx(math.sqrt(8) / (math.sqrt(8) + math.sqrt(13)))
    assert entanglement(z, lab, forget, retain, k=5).argmax() == 0


def test_entanglement_whole_class_and_no_other_class():
    z = np.arange(8, dtype=float).reshape(4, 2)
    assert entanglement(z, np.array([0, 1, 1, 1]), [0], [1, 2, 3])[0] == 0.0
    assert entanglement(z, np.array([0, 0, 0, 0]), [0], [1, 2, 3])[0] == 1.0


def test_entanglement_matches_loop_and_order():
    rng = np.random.default_rng(0)
    z, lab = rng.normal(size=(40, 3)), rng.integers(0, 3, 40)
    forget, retain = np.arange(10), np.arange(10, 40)
    got = entanglement(z, lab, forget, retain, k=3)
    for j, i in enumerate(forget):
        d = np.linalg.norm(z[retain] - z[i], axis=1)
        same = lab[retain] == lab[i]
        a, b = np.sort(d[same])[:3].mean(), np.sort(d[~same])[:3].mean()
        assert got[j] == pytest.approx(b / (a + b), rel=1e-12)
    perm = rng.permutation(10)
    np.testing.assert_allclose(entanglement(z, lab, forget[perm], retain[::-1], k=3), got[perm])


# --- outcome ----------------------------------------------------------------


def test_residual_from_bank_golden():
    bank = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 9.0], [4.0, 9.0]])
    np.testing.assert_allclose(residual_from_bank(np.array([2.5, 10.0]), bank), [0.5, 1.0])
    assert residual_from_bank(np.array([3.0, 0.0]), bank)[0] == pytest.approx(2.5 / 4)
    mask = np.array([[1, 0], [1, 0], [0, 0], [0, 0]], bool)
    r = residual_from_bank(np.array([1.5, 0.0]), bank, mask)
    assert r[0] == 0.5 and np.isnan(r[1])
