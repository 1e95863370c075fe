"""Tests for attacks.leakage.retain_exposure_increase."""

from __future__ import annotations

import numpy as np
import pytest

from unlearn_audit.attacks.leakage import retain_exposure_increase
from unlearn_audit.attacks.metrics import auc_difference_ci, roc_metrics


def _case(shift_after: float, seed: int = 0) -> tuple[dict, dict]:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    member = np.r_[np.ones(300, bool), np.zeros(300, bool)]
    base = rng.normal(size=600)
    before = {"scores": base + 0.3 * member, "is_member": member}
    after = {"scores": base + (0.3 + shift_after) * member, "is_member": member.copy()}
    return before, after


def test_no_change_is_not_an_increase() -> None:
    before, after = _case(0.0)
    res = retain_exposure_increase(before, after)
    assert res["diff"] == 0.0 and res["low"] == 0.0 and res["high"] == 0.0
    assert res["increased"] is False
    assert res["auc_before"] == res["auc_after"] == roc_metrics(**before)["auc"]


def test_clear_increase_is_flagged_and_matches_paired_bootstrap() -> None:
    before, after = _case(1.0)
    res = retain_exposure_increase(before, after, 0.9, n_boot=300, seed=4)
    assert res["increased"] is True
    ci = auc_difference_ci(
        after["scores"], before["scores"], after["is_member"], n_boot=300, level=0.9, seed=4
    )
    assert (res["diff"], res["low"], res["high"]) == (ci["diff"], ci["low"], ci["high"])
    assert res["level"] == 0.9 and res["n_boot"] == 300
    decrease = retain_exposure_increase(after, before, n_boot=300)
    assert decrease["increased"] is False and decrease["high"] < 0


def test_invalid() -> None:
    before, after = _case(0.0)
    with pytest.raises(ValueError, match="missing"):
        retain_exposure_increase({"scores": before["scores"]}, after)
    flipped = dict(after, is_member=~after["is_member"])
    with pytest.raises(ValueError, match="same samples"):
        retain_exposure_increase(before, flipped)
