import numpy as np
import pytest

from unlearn_audit.attacks.epsilon import forget_quality
from unlearn_audit.audit.verdict import (
    ForgetEpsilons,
    Rule,
    apply_controls,
    forget_quality_evidence,
    judge,
)

RNG = np.random.default_rng(0)
IS_FORGET = np.r_[np.ones(200, bool), np.zeros(800, bool)]
CHANCE = RNG.normal(size=1000)
OTHER = RNG.normal(size=1000)  # a second attack's reference scores
RULE = Rule(n_boot=500)
MEMBER = 3.0  # the original's membership effect: a strong signal, so the residual is tight


def _judge(scores, test_acc=0.9, error=None, second=None, rule=RULE, epsilons=None):
    s = None if scores is None else {"lira_online": scores}
    ref = {"lira_online": CHANCE}
    orig = {"lira_online": CHANCE + MEMBER * IS_FORGET}
    if second is not None:
        s = {**(s or {}), "rmia_online": second}
        ref["rmia_online"] = OTHER
        orig["rmia_online"] = OTHER + MEMBER * IS_FORGET
    return judge(
        s,
        ref,
        orig,
        IS_FORGET,
        test_acc=test_acc,
        reference_test_acc=0.9,
        rule=rule,
        epsilons=epsilons,
        error=error,
    )


def test_identical_to_reference_passes():
    v = _judge(CHANCE.copy())
    assert v.status == "pass" and v.evidence["auc_diff"] == 0.0
    assert v.evidence["per_attack"]["lira_online"]["outcome"] == "indistinguishable"


def test_residual_membership_fails():
    v = _judge(CHANCE + 1.5 * IS_FORGET)
    assert v.status == "fail" and "residual membership" in v.reasons[0]
    assert v.evidence["ci"][0] > 0


def test_over_forgetting_fails():
    v = _judge(CHANCE - 1.5 * IS_FORGET)
    assert v.status == "fail" and "over-forgetting" in v.reasons[0]


def test_utility_drop_fails_with_reason():
    v = _judge(CHANCE.copy(), test_acc=0.8)
    assert v.status == "fail" and any("utility" in r for r in v.reasons)
    assert _judge(CHANCE.copy(), test_acc=0.86).status == "pass"


def test_failed_method_fails():
    v = _judge(None, error="DivergenceError: loss became nan")
    assert v.status == "fail" and "loss became nan" in v.reasons[0]


def test_any_attack_that_sees_membership_fails_the_model_and_is_named():
    v = _judge(CHANCE.copy(), second=OTHER + 1.5 * IS_FORGET)
    assert v.status == "fail" and not v.evidence["membership_ok"]
    assert v.evidence["attack"] == "lira_online"  # the headline stays the primary attack
    assert [r.split(":")[0] for r in v.reasons] == ["residual membership"]
    assert "rmia_online AUC" in v.reasons[0]
    assert v.evidence["per_attack"]["rmia_online"]["outcome"] == "residual membership"
    ok = _judge(CHANCE.copy(), second=OTHER.copy())
    assert ok.status == "pass" and "1 other attack" in ok.reasons[0]


def test_bonferroni_widens_each_interval_to_keep_the_family_level():
    assert Rule(level=0.95).attack_level(1) == pytest.approx(0.95)
    assert Rule(level=0.95).attack_level(4) == pytest.approx(0.9875)
    assert Rule(level=0.95, correction="none").attack_level(4) == 0.95
    shifted = CHANCE + 0.25 * IS_FORGET  # a small effect near the edge of the interval
    one = _judge(shifted)
    two = _judge(shifted, second=OTHER.copy())
    w1 = np.diff(one.evidence["per_attack"]["lira_online"]["ci"])[0]
    w2 = np.diff(two.evidence["per_attack"]["lira_online"]["ci"])[0]
    assert w2 > w1 and two.evidence["attack_level"] == pytest.approx(0.975)


def test_forget_quality_rule_fails_below_the_retrain_control_and_below_the_bar():
    rng = np.random.default_rng(1)
    noise = rng.uniform(0, 1.0, 200)  # retrain's ε: small-bank noise only
    high = noise + 2.0  # a method whose forget samples stay far from retraining
    n = 8
    bad = _judge(CHANCE.copy(), epsilons=ForgetEpsilons(high, noise, n))
    fq = bad.evidence["forget_quality"]
    assert bad.status == "fail" and fq["below_retrain"] and fq["ci"][1] < 0
    assert fq["value"] == pytest.approx(forget_quality(high, n_models=n))
    assert fq["retrain_control"] == pytest.approx(forget_quality(noise, n_models=n))
    assert any(r.startswith("forget quality: below exact unlearning") for r in bad.reasons)
    same = _judge(CHANCE.copy(), epsilons=ForgetEpsilons(noise.copy(), noise, n))
    assert same.status == "pass" and same.evidence["forget_quality"]["diff"] == 0.0
    strict = Rule(n_boot=500, min_forget_quality=0.9)
    barred = _judge(CHANCE.copy(), epsilons=ForgetEpsilons(noise.copy(), noise, n), rule=strict)
    assert barred.status == "fail" and "below the bar 0.900" in barred.reasons[-1]
    assert "forget_quality" not in _judge(CHANCE.copy()).evidence  # no bank: rule skipped


def test_forget_quality_interval_matches_a_plain_bootstrap_loop():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0, 2, 50), rng.uniform(0, 2, 50)
    rule = Rule(n_boot=300, seed=5)
    fq = forget_quality_evidence(ForgetEpsilons(a, b, 16), rule)
    pa = np.array([forget_quality(np.array([e]), n_models=16) for e in a])
    pb = np.array([forget_quality(np.array([e]), n_models=16) for e in b])
    boot_rng = np.random.default_rng(5)
    idx = boot_rng.integers(0, 50, size=(300, 50))
    diffs = [np.mean(pa[row]) - np.mean(pb[row]) for row in idx]
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    assert fq["ci"] == pytest.approx([lo, hi]) and fq["diff"] == pytest.approx(
        pa.mean() - pb.mean()
    )


def test_controls_separate_or_everything_is_inconclusive():
    good = {
        "noop": _judge(CHANCE + 1.5 * IS_FORGET),
        "retrain": _judge(CHANCE.copy()),
        "m": _judge(CHANCE.copy()),
    }
    c = apply_controls(good)
    assert c["separated"] and good["m"].status == "pass"
    weak = {
        "noop": _judge(CHANCE.copy()),
        "retrain": _judge(CHANCE.copy()),
        "m": _judge(CHANCE + 1.5 * IS_FORGET),
    }
    c = apply_controls(weak)
    assert not c["separated"] and "noop control was not caught" in c["reasons"][0]
    assert {v.status for v in weak.values()} == {"inconclusive"}
    assert weak["m"].evidence["raw_status"] == "fail"


def test_controls_say_whether_forget_quality_has_power():
    noise = np.random.default_rng(3).uniform(0, 1.0, 200)
    eps = ForgetEpsilons(noise + 2.0, noise, 8)
    verdicts = {
        "noop": _judge(CHANCE + 1.5 * IS_FORGET, epsilons=eps),
        "retrain": _judge(CHANCE.copy(), epsilons=ForgetEpsilons(noise, noise, 8)),
    }
    assert any("forget quality separates" in r for r in apply_controls(verdicts)["reasons"])
    blind = {
        "noop": _judge(CHANCE + 1.5 * IS_FORGET, epsilons=ForgetEpsilons(noise, noise, 8)),
        "retrain": _judge(CHANCE.copy(), epsilons=ForgetEpsilons(noise, noise, 8)),
    }
    c = apply_controls(blind)
    assert c["separated"] and any("no power here" in r for r in c["reasons"])


def test_reasons_name_the_level_each_interval_has():
    one = _judge(CHANCE.copy())
    assert "(95% CI" in one.reasons[0]
    two = _judge(CHANCE.copy(), second=OTHER.copy())
    assert "(97.5% CI" in two.reasons[0]


def test_planted_control_must_not_pass():
    def controls(planted):
        planted.evidence["planted_fraction"] = 0.5
        return {
            "noop": _judge(CHANCE + MEMBER * IS_FORGET),
            "retrain": _judge(CHANCE.copy()),
            "planted": planted,
            "m": _judge(CHANCE.copy()),
        }

    caught = controls(_judge(CHANCE + 0.5 * MEMBER * IS_FORGET))
    c = apply_controls(caught)
    assert caught["planted"].status == "fail"
    assert c["separated"] and any("50% of the request kept) was caught" in r for r in c["reasons"])
    assert caught["m"].status == "pass"
    certified = controls(_judge(CHANCE.copy()))  # a planted model the rule passed
    c = apply_controls(certified)
    assert not c["separated"] and any("PASSED" in r for r in c["reasons"])
    assert certified["m"].status == "inconclusive"
    weak = _judge(CHANCE + 0.5 * MEMBER * IS_FORGET, rule=Rule(n_boot=500, max_residual=0.99))
    weak.status = "inconclusive"  # as a low-power audit would leave it
    blind = controls(weak)
    c = apply_controls(blind)
    assert c["separated"] and any("lacks power against partial" in r for r in c["reasons"])
