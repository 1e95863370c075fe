"""The run directory: atomic writes and the content-addressed model cache.

Every file is written to a temporary name in the same folder and renamed into
place, so a killed run never leaves a half-written file under its real name.
Checkpoints live in ``RUN/models/`` named by a hash of everything that made
them, so a second run with the same config trains nothing and an interrupted
run resumes with the models it had finished.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CACHE_VERSION = 1  # bump when a change of code invalidates cached models


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(path, buf.getvalue())


def content_key(spec: dict[str, Any]) -> str:
    """A short, stable hash of a JSON-serialisable description of an artifact."""
    payload = json.dumps({"cache_version": CACHE_VERSION, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def index_digest(idx: np.ndarray) -> str:
    """A hash of a set of sample indices (part of a model's cache key)."""
    return hashlib.sha256(np.sort(np.asarray(idx, dtype=np.int64)).tobytes()).hexdigest()[:16]


class ModelStore:
    """Checkpoints (state dict + JSON metadata + signals) keyed by content hash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _paths(self, label: str, key: str) -> tuple[Path, Path, Path]:
        stem = self.root / f"{label}-{key}"
        return stem.with_suffix(".pt"), stem.with_suffix(".json"), stem.with_suffix(".npy")

    def has(self, label: str, key: str) -> bool:
        return all(p.exists() for p in self._paths(label, key))

    def load(self, label: str, key: str, model: nn.Module) -> tuple[dict[str, Any], np.ndarray]:
        """Load weights into ``model``; return the metadata and the cached signals."""
        ckpt, meta, sig = self._paths(label, key)
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return json.loads(meta.read_text()), np.load(sig)

    def save(
        self, label: str, key: str, model: nn.Module, meta: dict[str, Any], signals: np.ndarray
    ) -> None:
        """Write the signals and weights first and the metadata last (it marks completion)."""
        ckpt, meta_path, sig = self._paths(label, key)
        buf = io.BytesIO()
        np.save(buf, signals)
        atomic_write_bytes(sig, buf.getvalue())
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
        atomic_write_bytes(ckpt, buf.getvalue())
        atomic_write_json(meta_path, {"key": key, "label": label, **meta})

    def path(self, label: str, key: str) -> Path:
        return self._paths(label, key)[0]


def cached(
    store: ModelStore,
    label: str,
    key: str,
    model: nn.Module,
    produce: Callable[[], tuple[nn.Module, dict[str, Any]]],
    signals_of: Callable[[nn.Module], np.ndarray],
    signal_key: str | None = None,
) -> tuple[nn.Module, dict[str, Any], np.ndarray, bool]:
    """Load ``label-key`` into ``model`` if cached, else ``produce`` it and cache it.

    The model's membership signals are cached beside it with ``signal_key``, a
    hash of what they depend on besides the weights (the paradigm's signal
    settings, the query views). They are reused only under the same
    ``signal_key`` (always when it is None); otherwise they are recomputed from
    the cached weights and saved, and the model itself is not retrained.
    Returns the model, its metadata, its signals and whether it came from the cache.
    """
    if store.has(label, key):
        meta, signals = store.load(label, key, model)
        if signal_key is None or meta.get("signal_key") == signal_key:
            return model, meta, signals, True
        meta = {k: v for k, v in meta.items() if k not in ("key", "label")}
        meta["signal_key"] = signal_key
        signals = signals_of(model)
        store.save(label, key, model, meta, signals)
        return model, meta, signals, True
    trained, meta = produce()
    signals = signals_of(trained)
    if signal_key is not None:
        meta = {**meta, "signal_key": signal_key}
    store.save(label, key, trained, meta, signals)
    return trained, meta, signals, False
