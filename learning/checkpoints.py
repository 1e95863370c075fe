"""Loading a user's checkpoints and model factories safely.

Checkpoints are state dicts in safetensors (``.safetensors``) or PyTorch
format. PyTorch files are loaded with ``weights_only=True`` only, so a pickle
that would run code on load is refused, never executed. A checkpoint that does
not fit the architecture fails with the mismatching keys named.
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint or model factory that cannot be used; the message says why and the fix."""


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (first 20 hex digits), for cache keys and provenance."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:20]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a PyTorch file (``weights_only=True``).

    A PyTorch file holding ``{"state_dict": ...}`` or ``{"model": ...}`` is unwrapped.

    Raises:
        CheckpointError: missing file, unreadable file, a pickle with code in it, or
            something that is not a mapping of names to tensors.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(p), device="cpu"))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"checkpoint {p}: not a valid safetensors file ({exc})") from exc
    try:
        obj: Any = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {p} refused: it is not a plain tensor state dict and loading it "
            f"would run code ({first}); save model.state_dict() with torch.save or safetensors"
        ) from exc
    except Exception as exc:
        raise CheckpointError(f"checkpoint {p}: cannot read ({type(exc).__name__}: {exc})") from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"checkpoint {p}: expected a state dict of tensors, got {type(obj)}")
    return obj


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load ``path`` into ``model`` strictly, naming every mismatching key on failure."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = []
    if missing:
        problems.append(f"missing {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected {_few(unexpected)}")
    if shapes:
        problems.append(
            "shape mismatch "
            + _few([f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in shapes])
        )
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not fit the architecture: {'; '.join(problems)} "
            "(check --model and its kwargs)"
        )
    check_finite_weights(state, f"checkpoint {path}")
    model.load_state_dict(state)
    return model


def check_finite_weights(state: dict[str, torch.Tensor], what: str) -> None:
    """Raise :class:`CheckpointError` if a floating-point tensor of ``state`` holds NaN or inf.

    A model with such weights outputs non-finite values: every measurement of it is
    meaningless, so it is refused before anything is trained.
    """
    bad = sorted(
        k
        for k, v in state.items()
        if v.is_floating_point() or v.is_complex()
        if not bool(torch.isfinite(v).all())
    )
    if bad:
        raise CheckpointError(
            f"{what} holds NaN or infinite weights in {len(bad)} tensor(s) ({_few(bad)}); "
            "such a model cannot be audited: check how it was trained and saved"
        )


def _few(items: list[str], k: int = 4) -> str:
    more = f" and {len(items) - k} more" if len(items) > k else ""
    return ", ".join(items[:k]) + more


def import_object(spec: str, what: str) -> Any:
    """Import ``package.module:attribute`` (a model factory or an unlearner class)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CheckpointError(f"{what} '{spec}' must look like package.module:name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CheckpointError(
            f"{what} '{spec}': cannot import module '{module_name}' ({exc}); is it installed "
            "or on PYTHONPATH?"
        ) from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CheckpointError(f"{what} '{spec}': module '{module_name}' has no '{attr}'")
        obj = getattr(obj, part)
    return obj


def load_factory(spec: str) -> Callable[..., nn.Module]:
    """The model factory named by ``package.module:function``."""
    factory = import_object(spec, "model factory")
    if not callable(factory):
        raise CheckpointError(f"model factory '{spec}' is not callable")
    return factory
