import numpy as np

from audit.verdict import apply_controls, judge

RNG = np.random.default_rng(0)
IS_FORGET = np.r_[np.ones(200, bool), np.zeros(800, bool)]
CHANCE = RNG.normal(size=1000)


def _judge(scores, test_acc=0.9, error=None):
    return judge(
        scores,
        CHANCE,
        IS_FORGET,
        test_acc=test_acc,
        reference_test_acc=0.9,
        attack="lira_online",
        level=0.95,
        n_boot=500,
        utility_tolerance=0.05,
        seed=0,
        error=error,
    )


def test_identical_to_reference_passes():
    v = _judge(CHANCE.copy())
    assert v.status == "pass" and v.evidence["auc_diff"] == 0.0


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
