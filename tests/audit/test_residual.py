"""Residual membership, per-record evidence and power (audit/residual.py, records.py,
power.py and normal_score.py).

The simulated banks below have what real ones have: a per-sample difficulty
shared by every model, a per-sample membership effect when a model trained on
the sample, and each model's own noise. A model that still remembers a share
``rho`` of the request carries the membership effect on a random ``rho`` of the
forget records, so the true residual is ``rho``.
"""

from __future__ import annotations

import numpy as np
import pytest

from unlearn_audit.audit.power import minimum_detectable_residual
from unlearn_audit.audit.records import benjamini_hochberg, record_evidence, record_pvalues
from unlearn_audit.audit.residual import attack_residual, estimate_residual
from unlearn_audit.audit.verdict import Rule, judge


def bank(rng, n_forget, n_non, effect, rho, noise=0.5):
    """Scores of (model, reference, original) on forget + non-members, and is_forget."""
    base = rng.normal(size=n_forget + n_non)  # per-sample difficulty, shared
    mu = np.zeros_like(base)
    mu[:n_forget] = rng.gamma(2.0, effect / 2.0, size=n_forget)  # heterogeneous effects

    def model(kept: np.ndarray) -> np.ndarray:
        return base + kept * mu + noise * rng.normal(size=base.size)

    is_forget = np.arange(base.size) < n_forget
    kept = is_forget & (rng.random(base.size) < rho)
    return model(kept), model(np.zeros(base.size)), model(is_forget), is_forget


@pytest.mark.parametrize("rho", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_residual_tracks_the_planted_share(rho):
    rng = np.random.default_rng(1)
    m, r, o, y = bank(rng, 2000, 2000, effect=1.5, rho=rho)
    e = attack_residual("a", m, r, o, y, n_boot=400, level=0.95, seed=0)
    lo, hi = e.residual_ci
    assert lo <= rho <= hi
    assert hi - lo < 0.2  # 2000 records: a tight interval, so covering is not vacuous
    assert abs(e.residual - rho) < 0.1


def test_residual_interval_covers_the_truth_at_its_nominal_rate():
    """200 simulated audits per share; coverage >= 95% less 3 Monte-Carlo SDs (0.046)."""
    rng = np.random.default_rng(7)
    n_sim, covered = 200, 0
    for k in range(n_sim):
        rho = [0.0, 0.3, 0.6][k % 3]
        m, r, o, y = bank(rng, 120, 400, effect=1.0, rho=rho)
        lo, hi = attack_residual("a", m, r, o, y, n_boot=300, level=0.95, seed=k).residual_ci
        covered += lo <= rho <= hi
    assert covered / n_sim >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / n_sim)


def test_no_signal_gives_an_unbounded_interval():
    rng = np.random.default_rng(3)
    m, r, o, y = bank(rng, 100, 300, effect=0.0, rho=0.0)
    e = attack_residual("a", m, r, o, y, n_boot=300, level=0.95, seed=0)
    assert e.residual_ci[1] == np.inf or e.residual_ci[1] > 1


def _judge(m, r, o, y, margin=0.3):
    rule = Rule(primary="a", n_boot=300, max_residual=margin)
    return judge({"a": m}, {"a": r}, {"a": o}, y, test_acc=0.9, reference_test_acc=0.9, rule=rule)


def test_equivalence_rule_gives_each_outcome_where_it_should():
    rng = np.random.default_rng(5)
    forgot = _judge(*bank(rng, 1500, 1500, effect=1.5, rho=0.0))
    assert forgot.status == "pass", forgot.reasons
    assert forgot.evidence["residual"]["below_margin"]
    half = _judge(*bank(rng, 1500, 1500, effect=1.5, rho=0.5))
    assert half.status == "fail" and not half.evidence["membership_ok"]
    weak = _judge(*bank(rng, 60, 200, effect=0.3, rho=0.0))
    assert weak.status == "inconclusive", weak.reasons
    assert "cannot rule out" in weak.reasons[0]


def test_a_half_forgotten_model_does_not_pass_when_the_difference_test_is_blind():
    """The defect the rule exists for: the AUC difference contains 0, yet no pass."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        m, r, o, y = bank(rng, 90, 800, effect=0.6, rho=0.5)
        v = _judge(m, r, o, y)
        assert v.status != "pass"


def test_worst_attack_is_the_headline():
    rng = np.random.default_rng(2)
    m, r, o, y = bank(rng, 400, 400, effect=1.5, rho=0.0)
    m2, r2, o2, _ = bank(rng, 400, 400, effect=0.5, rho=0.0)
    est = estimate_residual(
        {"strong": m, "weak": m2},
        {"strong": r, "weak": r2},
        {"strong": o, "weak": o2},
        y,
        n_boot=300,
        level=0.95,
        seed=0,
    )
    assert est.worst.attack == "weak"
    assert est.upper == est.per_attack["weak"].residual_ci[1]


def _offline(z):
    """LiRA-offline scores of standardised signals ``z``: ``log Phi(z)``."""
    from scipy.special import log_ndtr

    return log_ndtr(z)


def test_record_pvalues_match_a_plain_loop_and_read_the_model_against_itself():
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    zf, zn = rng.normal(1.0, 1.5, size=30), rng.normal(-1.2, 1.5, size=400)
    p = record_pvalues(_offline(zf), _offline(zn))
    med = np.median(zn)
    mad = max(
        1.4826 * np.median([abs(v - med) for v in zn]),
        np.std(zn),
        (np.quantile(zn, 0.99) - med) / norm.ppf(0.99),
    )
    loop = [norm.sf((v - med) / mad) for v in zf]
    np.testing.assert_allclose(p, loop, rtol=1e-6)
    # the far tail keeps its precision (log Phi(z) is within 1e-16 of 0 there)
    assert record_pvalues(_offline(np.array([9.0])), _offline(zn))[0] > 0
    # a model whose every signal moved by the same amount gives the same p-values
    np.testing.assert_allclose(record_pvalues(_offline(zf + 2), _offline(zn + 2)), p, rtol=1e-6)


def test_benjamini_hochberg_matches_its_definition():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.random(40) ** rng.uniform(0.5, 4)
        q = 0.1
        ranked = np.sort(p)
        ks = [k for k in range(1, 41) if ranked[k - 1] <= q * k / 40]
        cut = ranked[max(ks) - 1] if ks else -1.0
        np.testing.assert_array_equal(benjamini_hochberg(p, q), p <= cut)


def test_records_of_a_forgotten_model_are_rarely_flagged_and_a_kept_share_is_found():
    rng = np.random.default_rng(4)
    y = np.arange(600) < 100
    flagged_null = 0
    for _ in range(200):
        z = rng.normal(-0.5, 1.3, size=600)  # forgotten: forget records like non-members
        flagged_null += record_evidence("a", _offline(z), y, 0.1).recognisable.any()
    # under the global null, the FDR is the chance of any discovery: at most 0.1
    assert flagged_null / 200 <= 0.1 + 3 * np.sqrt(0.1 * 0.9 / 200)
    z = rng.normal(size=600)
    z[:50] += 5.0  # 50 records kept with a strong effect
    ev = record_evidence("a", _offline(z), y, 0.1)
    assert ev.recognisable[:50].mean() > 0.9
    assert ev.recognisable[50:100].sum() <= 5
    assert ev.to_dict(np.arange(100) + 1000)["recognisable"][:3] == [1000, 1001, 1002]


def test_mdr_falls_with_a_stronger_signal_and_real_models_at_it_are_caught():
    rng = np.random.default_rng(9)

    def parts(effect):
        _, r, o, y = bank(rng, 200, 600, effect=effect, rho=0.0)
        out_model = bank(rng, 200, 600, effect=effect, rho=0.0)[1]
        return {"a": o}, {"a": out_model}, {"a": r}, y

    strong = minimum_detectable_residual(*parts(2.0), level=0.95, seed=0, n_boot=300)
    weak = minimum_detectable_residual(*parts(0.4), level=0.95, seed=0, n_boot=300)
    assert strong.mdr is not None and strong.mdr <= 0.5
    assert weak.mdr is None or weak.mdr > strong.mdr
    assert strong.curve[strong.mdr] >= 0.8
    rates = list(strong.curve.values())
    assert rates == sorted(rates)  # rises with rho
    assert strong.curve[min(strong.curve)] < 0.2  # a model that kept 1% is rarely caught
    # independently simulated models that really keep the MDR's share are caught
    caught = 0
    for _ in range(40):
        m, r, o, y = bank(rng, 200, 600, effect=2.0, rho=strong.mdr)
        caught += _judge(m, r, o, y).status == "fail"
    assert caught / 40 >= 0.6


def test_normal_score_bootstrap_matches_a_plain_loop_and_pairs_with_the_auc_bootstrap():
    from scipy.special import ndtri

    from unlearn_audit.attacks.metrics import _boot_aucs
    from unlearn_audit.audit.normal_score import boot_normal_scores, mean_normal_score

    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=70), 1)  # ties between forget and non-member scores
    y = np.arange(70) < 20
    pos, neg = s[y], s[~y]

    def z(p, q):
        return np.mean(
            [ndtri(((q < v).sum() + 0.5 * (q == v).sum() + 0.5) / (q.size + 1)) for v in p]
        )

    assert mean_normal_score(s, y) == pytest.approx(z(pos, neg))
    (boot,) = boot_normal_scores([s], y, 50, seed=3)
    (auc,) = _boot_aucs([s], y, 50, 3)
    draws = np.random.default_rng(3)
    dp = draws.integers(0, 20, size=(50, 20))
    dn = draws.integers(0, 50, size=(50, 50))
    for b in range(50):
        p, q = pos[dp[b]], neg[dn[b]]
        assert boot[b] == pytest.approx(z(p, q))
        mw = np.mean([(q < v).mean() + 0.5 * (q == v).mean() for v in p])
        assert auc[b] == pytest.approx(mw)  # the same resample as the AUC bootstrap


def test_several_attack_detection_probability_matches_its_closed_forms():
    from scipy.special import ndtr

    from unlearn_audit.audit.power import detection_probability

    draws = np.random.default_rng(0).standard_normal((20_000, 3))
    gap = np.array([0.5, 0.4, 0.6])
    c_out, c_in = np.diag([0.01, 0.02, 0.015]), np.diag([0.02, 0.03, 0.02])
    rho, n_eff = 0.3, 100.0
    # independent attacks: 1 - prod(1 - p_a), p_a = Phi((rho gap - z se) / sd)
    mix = rho * (1 - rho) * gap**2 / n_eff
    se = np.sqrt((1 - rho) * np.diag(c_out) + rho * np.diag(c_in) + mix)
    sd = np.sqrt(mix + np.diag(c_out) / 2)
    got = detection_probability(rho, gap, c_out, c_in, 2.4, draws, n_eff)
    p = ndtr((rho * gap - 2.4 * se) / sd)
    assert got == pytest.approx(1 - np.prod(1 - p), abs=0.012)  # 3 Monte-Carlo SDs
    same = np.full((3, 3), 0.01)  # identical attacks: the single-attack probability
    got = detection_probability(0.3, np.full(3, 0.5), same, same, 2.4, draws)
    assert got == pytest.approx(ndtr((0.3 * 0.5 - 2.4 * 0.1) / np.sqrt(0.005)), abs=0.012)


@pytest.mark.parametrize(("varied", "noise"), [(False, 0.2), (True, 0.5)])
def test_models_keeping_the_mdr_are_caught_at_the_stated_power(varied, noise):
    """The MDR's promise, by simulation: of 300 models that each keep a random MDR share
    of *this* audit's request (own training noise each), at least 80% are caught, less
    3 binomial SDs. ``varied``: heterogeneous membership effects, or one effect for all."""
    rng = np.random.default_rng(3)
    n_forget, n_non = 150, 450
    base = rng.normal(size=n_forget + n_non)
    y = np.arange(base.size) < n_forget
    mu = np.where(y, rng.gamma(2.0, 0.5, size=base.size) if varied else 1.0, 0.0)

    def model(kept):
        return base + kept * mu + noise * rng.normal(size=base.size)

    r, o, x = model(np.zeros(y.size)), model(y), model(np.zeros(y.size))
    power = minimum_detectable_residual({"a": o}, {"a": x}, {"a": r}, y, level=0.95, seed=0)
    assert power.mdr is not None and 0.05 < power.mdr < 0.5  # neither trivial nor powerless
    n = 300
    caught = sum(
        attack_residual(
            "a",
            model(y & (rng.random(y.size) < power.mdr)),
            r,
            o,
            y,
            n_boot=300,
            level=0.95,
            seed=i,
        ).score_diff_ci[0]
        > 0
        for i in range(n)
    )
    assert caught / n >= 0.8 - 3 * np.sqrt(0.8 * 0.2 / n), caught / n


# -- record weights ---------------------------------------------------------------------------


def test_weighted_normal_scores_match_a_plain_loop_and_unit_weights_change_nothing():
    from scipy.special import ndtri

    from unlearn_audit.audit.normal_score import boot_normal_scores, mean_normal_score

    rng = np.random.default_rng(2)
    s = np.round(rng.normal(size=70), 1)  # ties between forget and non-member scores
    y = np.arange(70) < 20
    w = rng.random(70)
    w[3] = 0.0  # a record no shadow could see weighs nothing

    def z(p, wp, q, wq):
        c = w[~y].mean() / 2  # half the mean weight of all non-members, in every resample
        u = [
            ((wq * (q < v)).sum() + 0.5 * (wq * (q == v)).sum() + c) / (wq.sum() + 2 * c) for v in p
        ]
        return float((wp * ndtri(np.array(u))).sum() / wp.sum())

    pos, neg, wp, wn = s[y], s[~y], w[y], w[~y]
    assert mean_normal_score(s, y, w) == pytest.approx(z(pos, wp, neg, wn))
    assert mean_normal_score(s, y, np.ones(70)) == pytest.approx(mean_normal_score(s, y), abs=1e-12)
    (boot,) = boot_normal_scores([s], y, 40, seed=5, weights=w)
    (plain,) = boot_normal_scores([s], y, 40, seed=5)
    (unit,) = boot_normal_scores([s], y, 40, seed=5, weights=np.ones(70))
    np.testing.assert_allclose(unit, plain, atol=1e-12)
    draws = np.random.default_rng(5)
    dp = draws.integers(0, 20, size=(40, 20))
    dn = draws.integers(0, 50, size=(40, 50))
    for b in range(40):
        assert boot[b] == pytest.approx(z(pos[dp[b]], wp[dp[b]], neg[dn[b]], wn[dn[b]]))


def test_record_weights_are_the_shadows_in_out_auc_and_match_a_plain_loop():
    from unlearn_audit.audit.normal_score import record_weights

    rng = np.random.default_rng(0)
    keep = rng.random((16, 30)) < 0.5
    keep[:, 0] = True  # never OUT: no separation can be measured
    effect = np.linspace(0, 3, 30)
    sig = rng.normal(size=(16, 30, 2)) + (keep * effect)[..., None]
    w = record_weights(sig, keep)
    s = sig.mean(axis=2)
    for i in range(30):
        a, b = s[keep[:, i], i], s[~keep[:, i], i]
        if b.size == 0:
            assert w[i] == 0.0
            continue
        auc = np.mean([(v > b).mean() + 0.5 * (v == b).mean() for v in a])
        assert w[i] == pytest.approx(max(0.0, 2 * auc - 1))
    assert ((w >= 0) & (w <= 1)).all()
    assert np.corrcoef(w[1:], effect[1:])[0, 1] > 0.8  # visible membership weighs most


def weighted_bank(rng, n_forget, n_non, rho, shift=0.0):
    """A bank with per-record visibility ``v``: membership effect ``2v``, weights ``v`` + noise.

    Each model also moves every record by ``a_m v`` (``a_m ~ N(0, shift)``): a
    model-wide change on atypical records, on forget samples and non-members alike.
    """
    n = n_forget + n_non
    v = rng.random(n) ** 3  # most records barely visible, a few very (as on real data)
    base = rng.normal(size=n) + v
    is_forget = np.arange(n) < n_forget
    mu = np.where(is_forget, 2.0 * v, 0.0)

    def model(kept: np.ndarray) -> np.ndarray:
        return base + kept * mu + rng.normal(0, shift) * v + 0.5 * rng.normal(size=n)

    kept = is_forget & (rng.random(n) < rho)
    weights = np.clip(v + 0.1 * rng.normal(size=n), 0, 1)  # estimated from shadows
    return model(kept), model(np.zeros(n)), model(is_forget), is_forget, weights


def test_weighted_residual_is_unbiased_and_covers_at_its_nominal_rate():
    """200 simulated audits; coverage >= 95% less 3 Monte-Carlo SDs, and no bias from weighting."""
    rng = np.random.default_rng(11)
    n_sim, covered, errors = 200, 0, []
    for k in range(n_sim):
        rho = [0.0, 0.3, 0.6][k % 3]
        m, r, o, y, w = weighted_bank(rng, 120, 400, rho)
        e = attack_residual("a", m, r, o, y, n_boot=300, level=0.95, seed=k, weights=w)
        covered += e.residual_ci[0] <= rho <= e.residual_ci[1]
        errors.append(e.residual - rho)
    assert covered / n_sim >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / n_sim)
    assert abs(np.mean(errors)) < 3 * np.std(errors) / np.sqrt(n_sim)


def test_weighting_narrows_the_interval_where_visibility_varies():
    rng = np.random.default_rng(3)
    widths = {"uniform": [], "weighted": []}
    for k in range(30):
        m, r, o, y, w = weighted_bank(rng, 150, 400, 0.3)
        for name, wt in (("uniform", None), ("weighted", w)):
            lo, hi = attack_residual(
                "a", m, r, o, y, n_boot=300, level=0.95, seed=k, weights=wt
            ).residual_ci
            widths[name].append(hi - lo)
    ratio = np.array(widths["weighted"]) / np.array(widths["uniform"])
    # measured: 0.789 +- 0.123 over these 30 banks (standard error 0.022): 0.9 is 5 away
    assert ratio.mean() < 0.9


def test_a_model_wide_shift_on_visible_records_is_not_read_as_membership():
    """Independent retrains that differ on atypical records stay within their detection interval.

    Weighting the forget samples alone (non-members at weight 1) flags 36% of these
    exact retrains on the same banks; weighting both strata keeps the nominal 5%.
    """
    rng = np.random.default_rng(5)
    n_sim, flagged = 200, 0
    for k in range(n_sim):
        m, r, o, y, w = weighted_bank(rng, 150, 400, 0.0, shift=0.5)
        e = attack_residual("a", m, r, o, y, n_boot=300, level=0.95, seed=k, weights=w)
        flagged += e.outcome != "indistinguishable"
    assert flagged / n_sim <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / n_sim)
