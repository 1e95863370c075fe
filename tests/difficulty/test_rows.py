"""The audit's rows: representation, bank features, outcomes, the pool
(difficulty/rows.py, difficulty/classifier.py)."""

import numpy as np
import pytest
import torch
from torch import nn

from tests.difficulty.test_features import _data
from unlearn_audit.attacks.registry import get as get_attack
from unlearn_audit.difficulty.classifier import FEATURES, representation
from unlearn_audit.difficulty.rows import (
    Rows,
    bank_features,
    shadow_outcomes,
    target_outcome,
)


def complementary_keep(rng: np.random.Generator, pairs: int = 3, n: int = 8) -> np.ndarray:
    """A keep matrix ``(2 pairs, n)``: shadow pairs trained on complementary random halves,
    so every sample is IN exactly half of the shadows."""
    keep = np.zeros((2 * pairs, n), bool)
    for j in range(pairs):
        keep[2 * j, rng.permutation(n)[: n // 2]] = True
        keep[2 * j + 1] = ~keep[2 * j]
    return keep


def test_representation_is_the_input_of_the_last_linear():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)).double()
    x = _data()[0]
    model.train()
    rep = representation(model, x, batch_size=3)
    want = torch.relu(model[1](x.flatten(1))).float()
    np.testing.assert_allclose(rep, want.detach().numpy(), rtol=1e-6)
    assert model.training  # mode restored


def test_representation_without_a_linear_is_the_output():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([2.0]))

        def forward(self, x):
            return x.flatten(1) * self.w

    x = torch.randn(4, 1, 3)
    np.testing.assert_allclose(representation(Scale(), x), 2 * x.flatten(1).numpy(), rtol=1e-6)


def _bank():
    """4 shadows, 3 samples: sample 0 fitted only when IN, 1 always, 2 never."""
    keep = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [0, 0, 0]], bool)
    keep[3] = ~keep[0]  # complementary pairs: every sample IN exactly twice
    keep[2] = ~keep[1]
    sig = np.where(keep, 10.0, -10.0)
    sig[:, 1], sig[:, 2] = 10.0, -10.0
    return sig[:, :, None], keep


def test_bank_memorization_is_high_only_for_a_sample_fitted_when_in():
    sig, keep = _bank()
    mem = bank_features(sig, keep, sig[0], np.arange(3))["memorization"]
    assert mem[0] == pytest.approx(1.0, abs=1e-4)  # sigmoid(10) - sigmoid(-10)
    assert mem[1] == pytest.approx(0.0) and mem[2] == pytest.approx(0.0)


def test_bank_features_leave_the_described_shadow_out():
    rng = np.random.default_rng(0)
    keep = complementary_keep(rng)
    sig = rng.normal(size=(6, 8, 2))
    f = np.flatnonzero(keep[0])
    got = bank_features(sig, keep, sig[0], f, leave_out=0)
    conf = 1 / (1 + np.exp(-sig[1:].mean(-1)))
    want_mem = [conf[keep[1:, i], i].mean() - conf[~keep[1:, i], i].mean() for i in f]
    np.testing.assert_allclose(got["memorization"], want_mem, rtol=1e-12)
    lira = get_attack("lira_online").fn(sig[0], sig[1:], keep[1:])
    np.testing.assert_allclose(got["lira"], np.asarray(lira)[f], rtol=1e-12)


def test_outcomes_are_mid_ranks_among_the_out_shadows():
    sig, keep = _bank()  # sample 0: IN for shadows 0 and 1, OUT (-10) for 2 and 3
    bank = sig.copy()
    bank[0, 0, 0] = -10.0  # shadow 0 forgot sample 0 completely: ties the OUT shadows
    bank[1, 0, 0] = 0.0  # shadow 1 is halfway: above both OUT shadows
    rows = Rows({n: np.zeros(2) for n in FEATURES}, np.array([0, 1]), np.array([0, 0]))
    np.testing.assert_allclose(shadow_outcomes(bank, sig, keep, rows), [0.5, 1.0])
    # sample 2's OUT shadows sit at -10: views (-20, 0) average to a tie (the identity
    # view alone would give 0), and a model at +10 on sample 0 is above both OUT shadows
    target = np.array([[10.0, 10.0], [0.0, 0.0], [-20.0, 0.0]])
    np.testing.assert_allclose(target_outcome(target, sig, keep, np.array([0, 2])), [1.0, 0.5])


def test_pool_bandwidth_is_the_median_distance_of_the_forget_inputs(monkeypatch):
    import unlearn_audit.difficulty.rows as da

    x = torch.tensor([[0.0], [1.0], [3.0], [7.0], [100.0]]).reshape(5, 1, 1, 1)
    y = torch.zeros(5, dtype=torch.int64)
    pool = da.PoolData.of(x, y, np.array([3, 0, 2]))  # distances 3, 4, 7
    assert pool.bandwidth == 4.0 and pool.labels.tolist() == [0] * 5
    assert pool.forget.tolist() == [0, 2, 3]  # the forget set, sorted
    monkeypatch.setattr(da, "BANDWIDTH_SAMPLES", 2)  # evenly spaced in pool order: 0 and 3
    assert da.PoolData.of(x, y, np.array([3, 0, 2])).bandwidth == 7.0
