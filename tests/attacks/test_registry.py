"""Tests for attacks.registry and the package surface."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from unlearn_audit import attacks
from unlearn_audit.attacks import registry
from unlearn_audit.attacks.baselines import loss_attack
from unlearn_audit.attacks.lira import lira
from unlearn_audit.attacks.rmia import DEFAULT_OFFLINE_A, rmia, tune_rmia_a
from unlearn_audit.attacks.shadows import make_keep_matrix

EXPECTED = [
    "lira_offline",
    "lira_offline_fixed",
    "lira_online",
    "lira_online_fixed",
    "loss",
    "rmia_offline",
    "rmia_online",
]


@pytest.fixture()
def clean_registry() -> Iterator[None]:
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def _problem(m: int, n: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(m)
    keep = make_keep_matrix(m, n, seed=0)
    shadow = rng.normal(size=(m, n, 2)) + keep[:, :, None]
    return rng.normal(size=(n, 2)), shadow, keep


def test_available_lists_builtin_attacks() -> None:
    assert registry.available() == EXPECTED
    assert attacks.available() == EXPECTED


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(KeyError) as err:
        registry.get("nope")
    assert isinstance(err.value, registry.UnknownAttackError)
    for name in EXPECTED:
        assert name in str(err.value)


def test_attack_is_frozen() -> None:
    attack = registry.get("loss")
    assert not attack.needs_shadows
    with pytest.raises(dataclasses.FrozenInstanceError):
        attack.name = "other"  # type: ignore[misc]


def test_register_custom_and_reject_duplicates(clean_registry: None) -> None:
    custom = registry.Attack("zero", "always zero", False, lambda t, s, k: np.zeros(len(t)))
    registry.register(custom)
    assert registry.get("zero") is custom
    assert "zero" in registry.available()
    with pytest.raises(ValueError, match="already registered"):
        registry.register(custom)


def test_loss_entry_ignores_shadows() -> None:
    target = np.array([[0.5, 2.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(registry.get("loss").fn(target, None, None), loss_attack(target))


@pytest.mark.parametrize("name", [n for n in EXPECTED if n != "loss"])
def test_shadow_entries_need_shadows(name: str) -> None:
    attack = registry.get(name)
    assert attack.needs_shadows
    with pytest.raises(ValueError, match="shadow"):
        attack.fn(np.zeros(3), None, None)


@pytest.mark.parametrize(
    ("name", "online", "fixed"),
    [("lira_online_fixed", True, True), ("lira_offline_fixed", False, True)],
)
def test_fixed_entries(name: str, online: bool, fixed: bool) -> None:
    target, shadow, keep = _problem(64)
    got = registry.get(name).fn(target, shadow, keep)
    np.testing.assert_array_equal(
        got, lira(target, shadow, keep, online=online, fixed_variance=fixed)
    )


@pytest.mark.parametrize(
    ("m", "fixed"), [(4, True), (16, True), (62, True), (64, False), (80, False)]
)
@pytest.mark.parametrize("online", [True, False])
def test_auto_variance_rule(m: int, fixed: bool, online: bool) -> None:
    target, shadow, keep = _problem(m)
    name = "lira_online" if online else "lira_offline"
    got = registry.get(name).fn(target, shadow, keep)
    want = lira(target, shadow, keep, online=online, fixed_variance=fixed)
    np.testing.assert_array_equal(got, want)
    other = lira(target, shadow, keep, online=online, fixed_variance=not fixed)
    assert not np.array_equal(got, other)


def test_auto_rule_uses_fewest_models_on_a_used_side() -> None:
    # 64 shadows; sample 0 has 31 IN / 33 OUT, the others 32 / 32.
    # online uses both sides -> fixed (31 < 32); offline uses OUT only -> per-example.
    rng = np.random.default_rng(0)
    keep = make_keep_matrix(64, 3, seed=0)
    keep[:, 0] = np.arange(64) < 31
    shadow = rng.normal(size=(64, 3)) + keep
    target = rng.normal(size=3)
    online = registry.get("lira_online").fn(target, shadow, keep)
    np.testing.assert_array_equal(online, lira(target, shadow, keep, fixed_variance=True))
    offline = registry.get("lira_offline").fn(target, shadow, keep)
    want = lira(target, shadow, keep, online=False, fixed_variance=False)
    np.testing.assert_array_equal(offline, want)


def test_rmia_entries_use_sigmoid_of_signal_and_whole_pool() -> None:
    target, shadow, keep = _problem(8)
    p_t, p_s = 1 / (1 + np.exp(-target)), 1 / (1 + np.exp(-shadow))
    z = np.arange(target.shape[0])
    online = registry.get("rmia_online").fn(target, shadow, keep)
    np.testing.assert_allclose(online, rmia(p_t, p_s, keep, z, online=True), atol=1e-12)
    a = tune_rmia_a(p_s, keep)
    offline = registry.get("rmia_offline").fn(target, shadow, keep)
    np.testing.assert_allclose(offline, rmia(p_t, p_s, keep, z, online=False, a=a), atol=1e-12)


def test_rmia_offline_falls_back_to_default_a_with_two_shadows() -> None:
    target, shadow, keep = _problem(2)
    p_t, p_s = 1 / (1 + np.exp(-target)), 1 / (1 + np.exp(-shadow))
    got = registry.get("rmia_offline").fn(target, shadow, keep)
    want = rmia(p_t, p_s, keep, np.arange(20), online=False, a=DEFAULT_OFFLINE_A)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_package_does_not_import_torch() -> None:
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, attacks; assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'sklearn' not in sys.modules, 'sklearn imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


def test_public_names_exported() -> None:
    for name in attacks.__all__:
        assert hasattr(attacks, name)
