import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.audit.difficulty import (
    DifficultyIndex,
    apply_index,
    entanglement,
    evaluate_on_target,
    feasibility,
    fit_index,
    grad_norms,
    learn_on_shadows,
    loss_and_margin,
    memorization,
    rank,
    residual_from_bank,
    spearman,
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


# --- index: learn on shadows, evaluate on target -----------------------------


def _rows(n, seed):
    rng = np.random.default_rng(seed)
    feats = {"mem": rng.random(n), "ent": rng.random(n), "noise": rng.random(n)}
    y = 2 * feats["mem"] + feats["ent"] + 0.05 * rng.normal(size=n)
    return feats, y


def test_fit_index_recovers_linear_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    x[:, 2] = 7.0  # constant feature
    y = 3.0 + 2 * x[:, 0] - x[:, 1]
    idx = fit_index(x, y, alpha=1e-9)
    np.testing.assert_allclose(apply_index(idx, x), y, atol=1e-6)
    assert idx.weights[2] == 0.0
    again = fit_index(x, y, alpha=1e-9)
    assert np.array_equal(idx.weights, again.weights)


def test_learn_then_evaluate_order():
    shadow_feats, shadow_y = _rows(200, 0)
    index = learn_on_shadows(shadow_feats, shadow_y)
    assert isinstance(index, DifficultyIndex) and index.names == ("mem", "ent", "noise")
    target_feats, target_y = _rows(60, 1)
    rep = evaluate_on_target(index, target_feats, target_y)
    assert rep["index"] > 0.9 and rep["n"] == 60 and rep["n_fit"] == 200
    feats = rep["features"]
    assert isinstance(feats, dict)
    assert rep["index"] > max(feats.values()) and abs(feats["noise"]) < 0.35
    with pytest.raises(ValueError, match="learn on shadows"):
        evaluate_on_target(index, shadow_feats, shadow_y)


def test_learn_drops_nan_rows_and_needs_names():
    feats, y = _rows(30, 0)
    y[0] = np.nan
    index = learn_on_shadows(feats, y)
    assert index.n_rows == 29
    with pytest.raises(ValueError, match="missing"):
        apply_index(index, {"mem": np.ones(3)})


def test_spearman():
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 100.0])) == pytest.approx(1)
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([4, 3, 2, 1.0])) == pytest.approx(-1)
    assert math.isnan(spearman(np.ones(5), np.arange(5.0)))
    assert spearman(np.array([1, 2, np.nan, 3, 4.0]), np.arange(5.0)) == pytest.approx(1)


# --- rank and feasibility ---------------------------------------------------


def test_rank_golden_ties_and_nan():
    np.testing.assert_array_equal(rank(np.array([0.1, 0.9, 0.5])), [3, 1, 2])
    tied = rank(np.array([0.5, 0.5, np.nan, 1.0]), ids=np.array([9, 4, 0, 1]))
    np.testing.assert_array_equal(tied, [3, 2, 4, 1])


def test_rank_invariant_to_reordering():
    rng = np.random.default_rng(0)
    v = rng.integers(0, 4, 30).astype(float)  # many ties
    ids = rng.permutation(1000)[:30]
    r = rank(v, ids)
    for seed in range(5):
        p = np.random.default_rng(seed).permutation(30)
        np.testing.assert_array_equal(rank(v[p], ids[p]), r[p])
    assert sorted(r) == list(range(1, 31))


def test_feasibility_share_and_reasons():
    share, flags = feasibility(np.array([0.4, 0.9, 0.5, np.nan]), bar=0.5)
    assert share == 0.5
    assert flags[0] == "" and flags[2] == ""
    assert flags[1].startswith("infeasible at this budget") and "0.900 > bar 0.500" in flags[1]
    assert "no prediction" in flags[3]


# --- the audit's glue: bank features, outcomes, index on shadows ------------------

from unlearn_audit.attacks.registry import get as get_attack  # noqa: E402
from unlearn_audit.audit.difficulty_audit import (  # noqa: E402
    FEATURES,
    Rows,
    assess,
    bank_features,
    difficulty_columns,
    representation,
    shadow_outcomes,
    tame,
    target_outcome,
)


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
    keep = np.zeros((6, 8), bool)
    for j in range(3):
        half = rng.permutation(8)[:4]
        keep[2 * j, half] = True
        keep[2 * j + 1] = ~keep[2 * j]
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


def _synthetic(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    feats = {name: rng.random(n) for name in FEATURES}
    feats["loss"] = rng.exponential(size=n)
    y = np.clip(0.3 + 0.6 * feats["memorization"] + shift + 0.05 * rng.normal(size=n), 0, 1)
    return feats, y


def test_assess_learns_on_shadows_and_judges_the_target():
    shadow_feats, shadow_y = _synthetic(400, 0)
    rows = Rows(shadow_feats, np.repeat(np.arange(4), 100), np.arange(400) % 50)
    target, target_y = _synthetic(60, 1)
    ids = np.arange(100, 160)
    entry, cols = assess(rows, shadow_y, target, target_y, ids, bar=0.6)
    assert entry["n"] == 60 and entry["n_fit"] == 400 and entry["n_shadows"] == 4
    assert entry["spearman"]["index"] > 0.9
    assert abs(entry["spearman"]["features"]["entanglement"]) < 0.35
    assert entry["weights"]["memorization"] == max(entry["weights"].values())
    d = entry["deciles"]
    assert d["size"] == 6 and d["hardest"] > 0.75 > 0.45 > d["easiest"]
    pred = cols["index"]
    np.testing.assert_array_equal(cols["flags"] != "", pred > 0.6)
    assert entry["feasibility"] == {
        "bar": 0.6,
        "share": pytest.approx(np.mean(pred <= 0.6), abs=1e-6),
        "n_infeasible": int((pred > 0.6).sum()),
    }
    hard = cols["flags"][int(np.argmax(pred))]
    assert hard.startswith("infeasible at this budget: predicted residual")
    assert "largest push: memorization +" in hard
    np.testing.assert_array_equal(cols["rank"][np.argsort(-pred)], np.arange(1, 61))


def test_assess_is_invariant_to_the_order_of_the_samples():
    shadow_feats, shadow_y = _synthetic(300, 2)
    rows = Rows(shadow_feats, np.zeros(300, int), np.arange(300))
    target, target_y = _synthetic(40, 3)
    for name in FEATURES:  # 11 identical samples: equal predictions, ties broken by id
        target[name][:10] = target[name][10]
    ids = np.random.default_rng(4).permutation(1000)[:40]
    entry, cols = assess(rows, shadow_y, target, target_y, ids, bar=0.7)
    p = np.random.default_rng(5).permutation(40)
    entry_p, cols_p = assess(
        rows, shadow_y, {k: v[p] for k, v in target.items()}, target_y[p], ids[p], bar=0.7
    )
    assert entry_p == entry
    for name in cols:
        np.testing.assert_array_equal(cols_p[name], cols[name][p])


def test_assess_refuses_to_evaluate_on_its_fitting_rows():
    feats, y = _synthetic(50, 0)
    rows = Rows(feats, np.zeros(50, int), np.arange(50))
    with pytest.raises(ValueError, match="learn on shadows, evaluate on target"):
        assess(rows, y, feats, y, np.arange(50), bar=0.7)


def test_tame_keeps_ranks_and_columns_fill_only_forget_rows():
    v = np.array([0.0, 1.0, 100.0])
    out = tame({"loss": v, "margin": -v})
    np.testing.assert_allclose(out["loss"], np.log1p(v))
    np.testing.assert_array_equal(out["margin"], -v)
    cols = difficulty_columns(
        5, np.array([3, 1]), {"a": np.array([1.0, 2.0]), "f": np.array(["x", ""], dtype=object)}
    )
    np.testing.assert_array_equal(cols["a"][[3, 1]], [1.0, 2.0])
    assert np.isnan(cols["a"][[0, 2, 4]]).all()
    assert list(cols["f"]) == ["", "", "", "x", ""]


def test_pool_bandwidth_is_the_median_distance_of_the_forget_inputs(monkeypatch):
    import unlearn_audit.audit.difficulty_audit as da

    x = torch.tensor([[0.0], [1.0], [3.0], [7.0], [100.0]]).reshape(5, 1, 1, 1)
    y = torch.zeros(5, dtype=torch.int64)
    pool = da.PoolData.of(x, y, np.array([3, 0, 2]))  # distances 3, 4, 7
    assert pool.bandwidth == 4.0 and pool.labels.tolist() == [0] * 5
    monkeypatch.setattr(da, "BANDWIDTH_SAMPLES", 2)  # evenly spaced in pool order: 0 and 3
    assert da.PoolData.of(x, y, np.array([3, 0, 2])).bandwidth == 7.0
