"""Each method's index learned on the shadow rows and judged on the audited model
(difficulty/assess.py)."""

import numpy as np
import pytest

from unlearn_audit.difficulty.assess import assess, difficulty_columns, tame
from unlearn_audit.difficulty.classifier import FEATURES, ClassifierFeatures
from unlearn_audit.difficulty.rows import Rows

TAMED = ClassifierFeatures.tamed


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
    entry, cols = assess(rows, shadow_y, target, target_y, ids, bar=0.6, tamed=TAMED)
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
    entry, cols = assess(rows, shadow_y, target, target_y, ids, bar=0.7, tamed=TAMED)
    p = np.random.default_rng(5).permutation(40)
    entry_p, cols_p = assess(
        rows,
        shadow_y,
        {k: v[p] for k, v in target.items()},
        target_y[p],
        ids[p],
        bar=0.7,
        tamed=TAMED,
    )
    assert entry_p == entry
    for name in cols:
        np.testing.assert_array_equal(cols_p[name], cols[name][p])


def test_assess_refuses_to_evaluate_on_its_fitting_rows():
    feats, y = _synthetic(50, 0)
    rows = Rows(feats, np.zeros(50, int), np.arange(50))
    with pytest.raises(ValueError, match="learn on shadows, evaluate on target"):
        assess(rows, y, feats, y, np.arange(50), bar=0.7, tamed=TAMED)


def test_tame_keeps_ranks_and_columns_fill_only_forget_rows():
    v = np.array([0.0, 1.0, 100.0])
    out = tame({"loss": v, "margin": -v}, TAMED)
    np.testing.assert_allclose(out["loss"], np.log1p(v))
    np.testing.assert_array_equal(out["margin"], -v)
    cols = difficulty_columns(
        5, np.array([3, 1]), {"a": np.array([1.0, 2.0]), "f": np.array(["x", ""], dtype=object)}
    )
    np.testing.assert_array_equal(cols["a"][[3, 1]], [1.0, 2.0])
    assert np.isnan(cols["a"][[0, 2, 4]]).all()
    assert list(cols["f"]) == ["", "", "", "x", ""]
