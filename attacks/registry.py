"""Registry of membership inference attacks, so callers never branch on attack names.

Every attack is called as ``fn(target, shadow, keep) -> scores`` with
``target`` of shape ``(n,)`` or ``(n, A)``, ``shadow`` of shape ``(m, n)`` or
``(m, n, A)`` (or ``None``) and ``keep`` a boolean ``(m, n)`` (or ``None``);
scores have shape ``(n,)`` and higher means more likely a member.

Automatic variance choice for ``lira_online`` / ``lira_offline``: Carlini et
al. (IEEE S&P 2022, Sec. IV) find per-example variances only pay off with many
shadow models and advise a single global variance when few are available
(their experiments switch below 64 shadow models, i.e. about 32 per side).
We therefore use the fixed variance whenever some sample has fewer than
:data:`FIXED_VARIANCE_BELOW` models on a side the attack uses (IN for online,
OUT for both; taking the minimum over samples is our choice for general keep
matrices), and per-example variances otherwise.

RMIA entries (``rmia_online``, ``rmia_offline``; Zarifzadeh et al., ICML 2024,
see :mod:`attacks.rmia`) turn the logit-scaled signal back into the
true-class probability, ``p_y = sigmoid(phi)`` (exact, since
``phi = log(p_y / (1 - p_y))``). The registry form knows no non-member set,
so the population ``z`` is the whole pool; for one target model and one query
the ranking is that of ``Pr(x | theta) / Pr(x)`` whatever the population (see
:mod:`attacks.rmia`), so this only sets the resolution. ``rmia_offline`` tunes
``a`` on the shadow models with :func:`attacks.rmia.tune_rmia_a` (shadow 0 as
temporary target) and falls back to :data:`attacks.rmia.DEFAULT_OFFLINE_A`
when the bank is too small to tune (fewer than 4 complementary shadows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from unlearn_audit.attacks.baselines import loss_attack
from unlearn_audit.attacks.lira import lira
from unlearn_audit.attacks.rmia import DEFAULT_OFFLINE_A, rmia, tune_rmia_a

__all__ = ["FIXED_VARIANCE_BELOW", "Attack", "UnknownAttackError", "available", "get", "register"]

AttackFn = Callable[[np.ndarray, np.ndarray | None, np.ndarray | None], np.ndarray]

#: Use LiRA's fixed variance when a side has fewer models than this for some sample.
FIXED_VARIANCE_BELOW = 32


@dataclass(frozen=True)
class Attack:
    """A registered attack.

    Attributes:
        name: Unique registry key.
        description: One-line human-readable description (for reports).
        needs_shadows: Whether ``fn`` requires ``shadow`` and ``keep``.
        fn: ``fn(target, shadow, keep) -> scores`` (higher = more likely member).
    """

    name: str
    description: str
    needs_shadows: bool
    fn: AttackFn


class UnknownAttackError(KeyError):
    """Raised by :func:`get` for an unregistered name; the message lists valid names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_REGISTRY: dict[str, Attack] = {}


def register(attack: Attack) -> None:
    """Add an attack to the registry.

    Args:
        attack: The attack to register.

    Raises:
        ValueError: If an attack with the same name is already registered.
    """
    if attack.name in _REGISTRY:
        raise ValueError(f"attack {attack.name!r} is already registered")
    _REGISTRY[attack.name] = attack


def get(name: str) -> Attack:
    """Look up an attack by name.

    Raises:
        UnknownAttackError: (a ``KeyError``) if ``name`` is not registered; the
            message lists the valid names.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownAttackError(
            f"unknown attack {name!r}; valid names: {', '.join(available())}"
        ) from None


def available() -> list[str]:
    """Sorted names of all registered attacks."""
    return sorted(_REGISTRY)


def _require(shadow: np.ndarray | None, keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if shadow is None or keep is None:
        raise ValueError("this attack needs shadow signals and a keep matrix")
    return shadow, keep


def _auto_fixed(keep: np.ndarray, online: bool) -> bool:
    """Carlini et al.'s rule: fixed variance when a used side has < 32 models for some sample."""
    k = np.asarray(keep, dtype=bool)
    n_in = k.sum(axis=0)
    n_out = k.shape[0] - n_in
    fewest = min(int(n_in.min()), int(n_out.min())) if online else int(n_out.min())
    return fewest < FIXED_VARIANCE_BELOW


def _lira_fn(online: bool, fixed: bool | None) -> AttackFn:
    def fn(target: np.ndarray, shadow: np.ndarray | None, keep: np.ndarray | None) -> np.ndarray:
        s, k = _require(shadow, keep)
        use_fixed = _auto_fixed(k, online) if fixed is None else fixed
        return lira(target, s, k, online=online, fixed_variance=use_fixed)

    return fn


def _rmia_fn(online: bool) -> AttackFn:
    def fn(target: np.ndarray, shadow: np.ndarray | None, keep: np.ndarray | None) -> np.ndarray:
        s, k = _require(shadow, keep)
        p_target = expit(np.asarray(target, dtype=np.float64))
        p_shadow = expit(np.asarray(s, dtype=np.float64))
        a = DEFAULT_OFFLINE_A
        if not online:
            try:
                a = tune_rmia_a(p_shadow, np.asarray(k))
            except ValueError:
                a = DEFAULT_OFFLINE_A
        z = np.arange(p_target.shape[0])
        return rmia(p_target, p_shadow, k, z, online=online, a=a)

    return fn


def _loss_fn(target: np.ndarray, shadow: np.ndarray | None, keep: np.ndarray | None) -> np.ndarray:
    return loss_attack(target)


register(Attack("loss", "Loss threshold (Yeom et al. 2018): score = -loss", False, _loss_fn))
register(
    Attack(
        "lira_online",
        "LiRA online (Carlini et al. 2022); fixed variance if < 32 IN/OUT models per sample",
        True,
        _lira_fn(online=True, fixed=None),
    )
)
register(
    Attack(
        "lira_offline",
        "LiRA offline one-sided test (Carlini et al. 2022); fixed variance if < 32 OUT models",
        True,
        _lira_fn(online=False, fixed=None),
    )
)
register(
    Attack(
        "lira_online_fixed",
        "LiRA online with a pooled fixed variance per side",
        True,
        _lira_fn(online=True, fixed=True),
    )
)
register(
    Attack(
        "lira_offline_fixed",
        "LiRA offline one-sided test with a pooled fixed OUT variance",
        True,
        _lira_fn(online=False, fixed=True),
    )
)
register(
    Attack(
        "rmia_online",
        "RMIA online (Zarifzadeh et al. 2024): Pr(x|theta)/Pr(x) vs the population, IN+OUT refs",
        True,
        _rmia_fn(online=True),
    )
)
register(
    Attack(
        "rmia_offline",
        "RMIA offline (Zarifzadeh et al. 2024): OUT refs, a tuned on a shadow model",
        True,
        _rmia_fn(online=False),
    )
)
