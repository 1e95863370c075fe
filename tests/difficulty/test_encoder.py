"""An encoder's difficulty features against plain loops (difficulty/encoder.py), and the
feature-set interface the rows are built through (difficulty/rows.py)."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.difficulty.test_rows import complementary_keep
from unlearn_audit.difficulty.encoder import (
    ALIGNMENT_SEED,
    ENCODER_FEATURES,
    GRAD_SEED,
    NEGATIVE_SEED,
    EncoderFeatures,
    alignment,
    encoder_grad_norm,
    knn_margin,
    local_density,
)
from unlearn_audit.difficulty.features import entanglement
from unlearn_audit.difficulty.rows import PoolData, Rows, bank_features, shadow_rows, target_rows
from unlearn_audit.learning import load_dataset, make_model
from unlearn_audit.learning.byol import BYOL
from unlearn_audit.learning.contrastive import SimCLR, representation
from unlearn_audit.learning.train import make_generator
from unlearn_audit.learning.views import default_views
from unlearn_audit.unlearners._contrastive import nt_xent_single

CPU = torch.device("cpu")
DIGITS = load_dataset("digits", limit=60)
AUG = default_views(DIGITS.shape, DIGITS.flippable)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _encoder(seed=0):
    return make_model("mlp", DIGITS.shape, 8, seed=seed, width=16)


def _loop_norm(model, loss):
    grads = torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])
    return math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))


# --- single features --------------------------------------------------------


def test_alignment_is_the_mean_pairwise_cosine_of_the_seeded_views():
    model, views, rows = _encoder(), 4, np.array([9, 2, 40, 5, 0, 33, 17])
    got = alignment(model, DIGITS.x, rows, AUG, views, seed=11)
    gen = torch.Generator().manual_seed(11)  # one chunk of the whole pool: seed + 0
    shape = tuple(DIGITS.x.shape[1:])
    params = AUG.draw(60 * views, gen, shape)
    v = AUG.apply(DIGITS.x.repeat_interleave(views, 0), params)
    with torch.no_grad():
        z = model(v).reshape(60, views, -1).double()
    for q, i in enumerate(rows):
        pairs = [
            float(F.cosine_similarity(z[i, a], z[i, b], dim=0))
            for a, b in itertools.combinations(range(views), 2)
        ]
        assert got[q] == pytest.approx(np.mean(pairs), abs=1e-5)
    # a sample's views do not depend on which others are described with it
    alone = alignment(model, DIGITS.x, rows[2:3], AUG, views, seed=11)
    assert alone[0] == pytest.approx(got[2], abs=1e-6)


def test_alignment_of_an_invariant_encoder_is_one():
    class Invariant(nn.Module):
        def __init__(self):
            super().__init__()
            self.v = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))

        def forward(self, x):
            return self.v.expand(x.shape[0], 3) + 0 * x.flatten(1)[:, :1]

    np.testing.assert_allclose(alignment(Invariant(), DIGITS.x, np.arange(5), AUG, 3, seed=0), 1.0)


def test_knn_margin_matches_a_plain_loop_and_golden_cases():
    g = torch.Generator().manual_seed(0)
    bank, query = torch.randn(30, 4, generator=g), torch.randn(9, 4, generator=g)
    bank_y, y = torch.arange(30) % 3, torch.arange(9) % 3
    got = knn_margin(query, bank, bank_y, y, 3, k=5, temperature=0.2)
    for i in range(9):
        sims = [float(F.cosine_similarity(query[i], bank[j], dim=0)) for j in range(30)]
        top = sorted(range(30), key=lambda j: -sims[j])[:5]
        w = [sum(math.exp(sims[j] / 0.2) for j in top if bank_y[j] == c) for c in range(3)]
        other = max(w[c] for c in range(3) if c != y[i])
        assert got[i] == pytest.approx((w[int(y[i])] - other) / sum(w), abs=1e-5)
    # every neighbour of the true class: 1; every neighbour of one other class: -1
    pts = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    lab = torch.tensor([0, 0, 1, 1])
    q = torch.tensor([[1.0, 0.05], [1.0, 0.05]])
    out = knn_margin(q, pts, lab, torch.tensor([0, 1]), 2, k=2)
    np.testing.assert_allclose(out, [1.0, -1.0], atol=1e-6)
    assert np.isnan(knn_margin(q, pts[:0], lab[:0], torch.tensor([0, 1]), 2, k=2)).all()


def test_local_density_matches_a_plain_loop_and_leaves_the_sample_out():
    g = torch.Generator().manual_seed(1)
    pool = torch.randn(25, 5, generator=g, dtype=torch.float64)
    own = torch.tensor([3, 0, 24, 7])
    got = local_density(pool[own], pool, own, k=4)
    for q, i in enumerate(own.tolist()):
        sims = sorted(
            (float(F.cosine_similarity(pool[i], pool[j], dim=0)) for j in range(25) if j != i),
            reverse=True,
        )
        assert got[q] == pytest.approx(np.mean(sims[:4]), abs=1e-9)
    # a duplicate of the sample elsewhere in the pool counts (similarity 1), itself does not
    dup = torch.cat([pool, pool[:1]])
    assert local_density(dup[:1], dup, torch.tensor([0]), k=1)[0] == pytest.approx(1.0)
    assert np.isnan(local_density(pool[:1], pool[:1], torch.tensor([0]), k=3)).all()


def test_simclr_grad_norm_matches_a_plain_loop_and_restores_the_mode():
    model, objective = _encoder(), SimCLR(AUG, 0.2)
    x, neg = DIGITS.x[:6], DIGITS.x[40:45]
    model.train()
    got = encoder_grad_norm(model, x, objective, neg, seed=5, batch_size=64)
    assert model.training
    model.eval()
    g = make_generator(5, CPU)  # one chunk: seed + 0; the batch's views, then the negatives'
    v1, v2 = objective.views(x, g)
    u1, u2 = objective.views(neg, g)
    with torch.no_grad():
        feats = torch.cat([model(u1), model(u2)])
    for i in range(6):
        loss = nt_xent_single(model(v1[i : i + 1])[0], model(v2[i : i + 1])[0], feats, 0.2)
        assert got[i] == pytest.approx(_loop_norm(model, loss), rel=1e-4)


def test_byol_grad_norm_is_each_samples_own_loss():
    from unlearn_audit.learning.byol import byol_pairs

    model, objective = _encoder(), BYOL(AUG)
    x = DIGITS.x[:5]
    got = encoder_grad_norm(model, x, objective, DIGITS.x[40:45], seed=3, batch_size=64)
    model.eval()
    g = make_generator(3, CPU)
    v1, v2 = objective.views(x, g)
    st = objective.state(model, g)  # started by the call above, with the same draws
    st.predictor.eval()
    with torch.no_grad():
        t1, t2 = st.target(v1), st.target(v2)
    for i in range(5):
        z = model(torch.cat([v1[i : i + 1], v2[i : i + 1]]))
        loss = byol_pairs(st.predictor(z), torch.cat([t2[i : i + 1], t1[i : i + 1]]))[0]
        assert got[i] == pytest.approx(_loop_norm(model, loss), rel=1e-4)


# --- the feature set --------------------------------------------------------


def _pool():
    forget = np.array([2, 5, 9, 11, 17, 30])
    return PoolData.of(DIGITS.x, DIGITS.y, forget), forget


def test_encoder_features_are_the_functions_on_the_models_representation():
    pool, forget = _pool()
    retain = np.setdiff1d(np.arange(40), forget)
    model, objective = _encoder(), SimCLR(AUG, 0.2)
    fs = EncoderFeatures(objective, AUG, views=3, k=4, negatives=7)
    got = fs.model_features(model, pool, forget, retain)
    assert tuple(got) == ENCODER_FEATURES[2:] and fs.names == ENCODER_FEATURES
    h = F.normalize(representation(model, DIGITS.x), dim=1)
    f, r = torch.as_tensor(forget), torch.as_tensor(retain)
    want = {
        "alignment": alignment(model, DIGITS.x, forget, AUG, 3, ALIGNMENT_SEED),
        "grad_norm": encoder_grad_norm(model, DIGITS.x[f], objective, fs.negative_images(pool)),
        "entanglement": entanglement(h.double().numpy(), DIGITS.y.numpy(), forget, retain),
        "knn_margin": knn_margin(h[f], h[r], DIGITS.y[r], DIGITS.y[f], 10, 4),
        "density": local_density(h[f], h, f, 4),
    }
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    assert all(v.shape == (forget.size,) and np.isfinite(v).all() for v in got.values())
    again = fs.model_features(model, pool, forget, retain)  # seeded: the same every time
    for name in got:
        np.testing.assert_array_equal(got[name], again[name])
    assert fs.tamed == ("grad_norm",) and GRAD_SEED != ALIGNMENT_SEED


def test_negatives_are_fixed_and_outside_the_forget_set():
    pool, forget = _pool()
    fs = EncoderFeatures(SimCLR(AUG), AUG, negatives=10)
    outside = np.setdiff1d(np.arange(60), forget)
    chosen = np.sort(np.random.default_rng(NEGATIVE_SEED).permutation(outside)[:10])
    assert torch.equal(fs.negative_images(pool), DIGITS.x[torch.as_tensor(chosen)])
    assert not set(chosen) & set(forget)
    big = EncoderFeatures(SimCLR(AUG), AUG, negatives=1000).negative_images(pool)
    assert big.shape[0] == outside.size  # at most every sample outside the forget set


def test_encoder_memorization_is_mean_in_minus_mean_out_of_the_raw_signal():
    rng = np.random.default_rng(0)
    keep = complementary_keep(rng)
    sig = rng.normal(scale=5.0, size=(6, 8, 3))
    fs = EncoderFeatures(SimCLR(AUG), AUG)
    got = bank_features(sig, keep, sig[0], np.arange(8), confidence=fs.confidence)
    s = sig.mean(-1)
    want = [s[keep[:, i], i].mean() - s[~keep[:, i], i].mean() for i in range(8)]
    np.testing.assert_allclose(got["memorization"], want, rtol=1e-12)


class _Fake:
    """A feature set that records what it was asked (the rows go through the interface)."""

    names = ("memorization", "lira", "size")
    tamed = ()

    def __init__(self):
        self.calls = []

    def confidence(self, signal):
        return signal

    def model_features(self, model, pool, forget, retain):
        self.calls.append((model, forget.tolist(), retain.tolist()))
        return {"size": np.full(forget.size, float(retain.size))}


def test_rows_are_built_through_the_feature_set_only():
    keep = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]], bool)
    sig = np.random.default_rng(1).normal(size=(4, 4, 2))
    pool = PoolData.of(DIGITS.x[:4], DIGITS.y[:4], np.array([0, 2]))
    fake = _Fake()
    target = target_rows(fake, "orig", sig[0], sig, keep, pool, np.array([0, 2]), np.array([1]))
    assert list(target) == ["memorization", "lira", "size"]
    assert fake.calls == [("orig", [0, 2], [1])]
    rows = shadow_rows(fake, lambda k: f"shadow{k}", sig, keep, pool, np.array([0, 2]))
    assert isinstance(rows, Rows) and list(rows.features) == list(fake.names)
    # shadow k describes IN_k ∩ forget against its own retain set IN_k \ F_k
    assert fake.calls[1:] == [
        ("shadow0", [0], [1]),
        ("shadow1", [2], [3]),
        ("shadow2", [0, 2], []),
    ]
    assert rows.shadow.tolist() == [0, 1, 2, 2] and rows.sample.tolist() == [0, 2, 0, 2]

    class Wrong(_Fake):
        names = ("memorization", "lira", "other")

    with pytest.raises(ValueError, match="declares"):
        target_rows(Wrong(), "m", sig[0], sig, keep, pool, np.array([0]), np.array([1]))
