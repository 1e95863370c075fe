"""Reading a TOML-shaped table into the frozen config, and TOML files in and out.

:func:`build` turns a nested dict into an :class:`AuditConfig`: unknown keys and wrong
types fail with a message that names the key and the fix. :func:`check_values` and
:func:`check_relations` are the value checks that need no registry. With
:mod:`audit.config_types` this is the configuration's leaf: no registry is imported
here; :mod:`audit.config` adds the checks that ask one.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from unlearn_audit.audit.config_types import RESERVED, WEIGHTINGS, AuditConfig, ConfigError
from unlearn_audit.learning.train import Recipe


def check_type(key: str, value: Any, hint: Any) -> Any:
    """``value`` of config key ``key`` checked against the type ``hint``, as the config
    holds it (a whole number for a float key becomes a float, a list a tuple)."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"config key '{key}' must be a list of strings, got {value!r}")
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"config key '{key}' must be a list of strings, got {value!r}")
        return tuple(value)
    if origin is dict:
        inner = typing.get_args(hint)[1]
        want: type | tuple[type, ...] = object
        what = "a table"
        if typing.get_origin(inner) is dict:
            want, what = dict, "a table of tables"
        elif inner is str:
            want, what = str, "a table of strings"
        if not isinstance(value, dict) or not all(isinstance(v, want) for v in value.values()):
            raise ConfigError(f"config key '{key}' must be {what}, got {value!r}")
        return dict(value)
    if origin in (types.UnionType, typing.Union):
        return value
    raise ConfigError(f"config key '{key}': unsupported type {hint}")  # pragma: no cover


def _build(cls: type, table: Any, prefix: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"config key '{prefix}' must be a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        where = f"[{prefix}]" if prefix else "the top level"
        raise ConfigError(
            f"unknown config key '{(prefix + '.' if prefix else '') + unknown[0]}'; "
            f"valid keys in {where}: {', '.join(sorted(fields))}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, key)  # type: ignore[arg-type]
        else:
            kwargs[name] = check_type(key, value, hint)
    if cls is Recipe:
        kwargs = {**dataclasses.asdict(AuditConfig().train), **kwargs}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{prefix}]: {exc}") from exc


def build(table: dict[str, Any]) -> AuditConfig:
    """The config a (TOML-shaped) nested dict describes, its keys and types checked."""
    cfg: AuditConfig = _build(AuditConfig, table, "")
    return cfg


def check_values(cfg: AuditConfig) -> None:
    """Checks of single keys that need no registry (a config file passes them on its own,
    before flags merge)."""
    a, v = cfg.attack, cfg.verdict
    if cfg.train.epochs < 1:
        raise ConfigError(
            f"train.epochs (--epochs) must be >= 1: every model the audit trains needs at "
            f"least one pass over its data, got {cfg.train.epochs}"
        )
    if a.shadows < 4 or a.shadows % 2:
        raise ConfigError(
            f"attack.shadows must be an even number >= 4 (LiRA needs at least two models on "
            f"each side of every sample to estimate a variance), got {a.shadows}"
        )
    if a.queries < 0:
        raise ConfigError(f"attack.queries must be >= 0 (0 = auto), got {a.queries}")
    if not 0.5 < v.level < 1:
        raise ConfigError(f"verdict.level must lie in (0.5, 1), got {v.level}")
    if v.n_boot < 100:
        raise ConfigError(f"verdict.n_boot must be >= 100, got {v.n_boot}")
    if v.correction not in ("bonferroni", "none"):
        raise ConfigError(
            f"verdict.correction must be 'bonferroni' or 'none', got '{v.correction}'"
        )
    if not 0 <= v.min_forget_quality <= 1:
        raise ConfigError(
            f"verdict.min_forget_quality must lie in [0, 1], got {v.min_forget_quality}"
        )
    if not 0 < v.max_residual < 1:
        raise ConfigError(
            f"verdict.max_residual must lie in (0, 1) (a share of the original's membership "
            f"evidence), got {v.max_residual}"
        )
    if v.weighting not in WEIGHTINGS:
        raise ConfigError(
            f"verdict.weighting must be one of {', '.join(map(repr, WEIGHTINGS))}, "
            f"got {v.weighting!r}"
        )
    if not 0 < v.fdr < 1:
        raise ConfigError(f"verdict.fdr must lie in (0, 1), got {v.fdr}")
    if not 0 <= v.planted_fraction < 1:
        raise ConfigError(
            f"verdict.planted_fraction must lie in [0, 1) (0 = no planted control), "
            f"got {v.planted_fraction}"
        )
    if not 0 <= v.utility_tolerance <= 1:
        raise ConfigError(
            f"verdict.utility_tolerance must lie in [0, 1], got {v.utility_tolerance}"
        )
    if not 0 < cfg.difficulty.bar <= 1:
        raise ConfigError(
            f"difficulty.bar must lie in (0, 1] (a residual; 0.5 = as if retrained), "
            f"got {cfg.difficulty.bar}"
        )
    if cfg.data.limit < 0:
        raise ConfigError(f"data.limit must be >= 0, got {cfg.data.limit}")
    ex = cfg.execution
    if ex.executor == "ray" and cfg.device.startswith("cuda") and not ex.gpus_per_job:
        raise ConfigError(
            f"device = '{cfg.device}' with execution.executor = 'ray' needs "
            "execution.gpus_per_job > 0 (Ray places GPU work by the GPUs each job reserves)"
        )
    if ex.executor == "ray" and cfg.device in ("cpu", "mps") and ex.gpus_per_job:
        raise ConfigError(
            f"execution.gpus_per_job = {ex.gpus_per_job} reserves GPUs that device = "
            f"'{cfg.device}' does not use; set it to 0 or device = 'cuda'"
        )
    if len(set(cfg.unlearn.methods)) != len(cfg.unlearn.methods):
        raise ConfigError(f"unlearn.methods lists a method twice: {list(cfg.unlearn.methods)}")


def check_relations(cfg: AuditConfig) -> None:
    """Checks that relate keys to each other (on the merged config: a flag may complete them)."""
    clash = sorted(set(cfg.unlearn.checkpoints) & {*cfg.unlearn.methods, *RESERVED})
    if clash:
        raise ConfigError(
            f"unlearned checkpoint name '{clash[0]}' is taken; reserved: "
            f"{', '.join(RESERVED)} and the names in unlearn.methods"
        )
    stray = sorted(set(cfg.unlearn.params) - set(cfg.unlearn.methods))
    if stray:
        raise ConfigError(
            f"unlearn.params.{stray[0]} is given but '{stray[0]}' is not in unlearn.methods"
        )


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into a dict (a clear error if missing or malformed)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {p} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); TOML files must be UTF-8: save it with that encoding"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"config file {p} cannot be read ({exc.strerror or exc})") from None


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base`` (overrides win)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def to_toml(table: dict[str, Any]) -> str:
    """Serialise a nested dict of scalars and lists to TOML (enough for our configs)."""
    lines: list[str] = []

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} to TOML")

    def emit(tbl: dict[str, Any], prefix: str) -> None:
        subs = {k: v for k, v in tbl.items() if isinstance(v, dict)}
        for k, v in tbl.items():
            if not isinstance(v, dict):
                lines.append(f"{k} = {scalar(v)}")
        for k, v in subs.items():
            name = f"{prefix}.{k}" if prefix else k
            lines.append("")
            lines.append(f"[{name}]")
            emit(v, name)

    emit(table, "")
    return "\n".join(lines).lstrip("\n") + "\n"
