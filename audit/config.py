"""The audit configuration: TOML file and/or CLI flags -> one frozen, validated config.

Every key has a default, so an empty config is the embedded default audit
(scikit-learn's ``digits``, an MLP, 10% random forget). Unknown keys and
wrong types fail here, before any training, with a message that names the key
and the fix.

Three modules, imports in one direction:

* :mod:`audit.config_types`: the frozen dataclasses and their single-value checks;
* :mod:`audit.config_file`: a TOML-shaped table read into them (key names, types),
  the value checks that need no registry, TOML files in and out;
* this module: the one validation step that asks the registries
  (:func:`check_keys`: the paradigm's name, each method's ``Params``) and the two
  entry points that run every check before any training, :func:`from_dict` and
  :func:`check_file`.

The first two are the configuration's data leaf: they import no registry, so the
paradigms (and any module they import) read the config from them. This module sits
above the registries and re-exports the leaf's names, so ``from
unlearn_audit.audit.config import AuditConfig, from_dict`` is the one public place.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from unlearn_audit import unlearners
from unlearn_audit.audit.config_file import (
    build,
    check_relations,
    check_type,
    check_values,
    load_toml,
    merge,
    to_toml,
)
from unlearn_audit.audit.config_types import (
    EXECUTORS,
    RESERVED,
    WEIGHTINGS,
    AttackConfig,
    AuditConfig,
    ConfigError,
    ContrastiveConfig,
    DataConfig,
    DifficultyConfig,
    ExecutionConfig,
    ForgetConfig,
    ModelConfig,
    UnlearnConfig,
    VerdictConfig,
)
from unlearn_audit.audit.paradigms import check_paradigm, paradigm_defaults

__all__ = [
    "EXECUTORS",
    "RESERVED",
    "WEIGHTINGS",
    "AttackConfig",
    "AuditConfig",
    "ConfigError",
    "ContrastiveConfig",
    "DataConfig",
    "DifficultyConfig",
    "ExecutionConfig",
    "ForgetConfig",
    "ModelConfig",
    "UnlearnConfig",
    "VerdictConfig",
    "check_file",
    "check_params",
    "check_keys",
    "from_dict",
    "with_paradigm_defaults",
    "load_toml",
    "merge",
    "to_toml",
]


def check_params(method: str, params: dict[str, Any]) -> None:
    """Check ``unlearn.params.METHOD`` against the fields of the method's ``Params``."""
    cls = unlearners.get(method).Params
    fields = {f.name for f in dataclasses.fields(cls)}
    prefix = f"unlearn.params.{method}"
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}.{unknown[0]}'; valid keys of {method}: "
            f"{', '.join(sorted(fields)) or 'none (it takes no parameter)'}"
        )
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a plugin's annotations that do not resolve: its own checks decide
        hints = {}
    for name, value in params.items():
        hint = hints.get(name)
        if hint in (bool, int, float, str):
            check_type(f"{prefix}.{name}", value, hint)
        elif typing.get_origin(hint) is typing.Literal and value not in typing.get_args(hint):
            valid = ", ".join(repr(v) for v in typing.get_args(hint))
            raise ConfigError(f"config key '{prefix}.{name}' must be one of {valid}, got {value!r}")
    try:
        cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{prefix}: {exc}") from exc


def check_keys(cfg: AuditConfig) -> None:
    """Every check of single keys (a config file passes them on its own, before flags merge).

    The registries' checks around the leaf's: the paradigm's name
    (:func:`audit.paradigms.check_paradigm`) first, then every value that needs no
    registry (:func:`audit.config_file.check_values`), then each
    ``unlearn.params.METHOD`` table against its method's ``Params`` (an unknown method
    is the registry's :class:`unlearners.UnlearnerError`); in this order a config with
    several faults is refused for the same one as ever.
    """
    check_paradigm(cfg.paradigm)
    check_values(cfg)
    for method, params in cfg.unlearn.params.items():
        check_params(method, params)


def with_paradigm_defaults(table: dict[str, Any]) -> dict[str, Any]:
    """``table`` over the defaults of the paradigm it names (``paradigm``, default
    ``supervised``): the built-in defaults, then the paradigm's
    (:func:`audit.paradigms.paradigm_defaults`), then every key of ``table``."""
    name = table.get("paradigm", AuditConfig.paradigm)
    return merge(paradigm_defaults(name), table) if isinstance(name, str) else table


def from_dict(table: dict[str, Any]) -> AuditConfig:
    """Build and validate a config from a (TOML-shaped) nested dict.

    Keys the table leaves out take the defaults of the paradigm it names
    (:func:`with_paradigm_defaults`), else the built-in ones.
    """
    cfg = build(with_paradigm_defaults(table))
    check_keys(cfg)
    check_relations(cfg)
    return cfg


def check_file(table: dict[str, Any]) -> None:
    """Validate a config file's table on its own, before CLI flags are merged into it.

    Every key and value of the file must be valid even where a flag overrides it
    (``[train] epochs = "five"`` with ``--epochs 5`` is an error, not silently
    replaced). Checks that relate keys to each other (parameters of a method that
    only a flag adds) wait for the merged config (:func:`from_dict`).
    """
    check_keys(build(with_paradigm_defaults(table)))
