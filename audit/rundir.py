"""The run directory's content-addressed model cache.

Every file is written atomically (:mod:`unlearn_audit.runfiles.write`: to a temporary
name in the same folder, then renamed into place), so a killed run never leaves a
half-written file under its real name. Checkpoints live in ``RUN/models/`` named by a
hash of everything that made them, so a second run with the same config trains nothing
and an interrupted run resumes with the models it had finished.

Every cached artifact is verified when it is read back: the metadata sidecar
(``LABEL-KEY.json``, written last) records the sha256 digest of the weights
(``.pt``), of the signals (``.npy``) and of its own content. A file that does not
match, or does not parse, is reported in one log line, moved aside to
``NAME.corrupt-<UTC timestamp>`` and recomputed (docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unlearn_audit.runfiles.write import atomic_write_bytes, atomic_write_json

CACHE_VERSION = 1  # bump when a change of code invalidates cached models
INTEGRITY = "integrity"  # the sidecar's digest block: {"sha256": {"pt", "npy", "json"}}
_META_ONLY = ("key", "label", INTEGRITY)  # what the store adds to a model's metadata

_logger = logging.getLogger(__name__)


def content_key(spec: dict[str, Any]) -> str:
    """A short, stable hash of a JSON-serialisable description of an artifact."""
    payload = json.dumps({"cache_version": CACHE_VERSION, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def index_digest(idx: np.ndarray) -> str:
    """A hash of a set of sample indices (part of a model's cache key)."""
    return hashlib.sha256(np.sort(np.asarray(idx, dtype=np.int64)).tobytes()).hexdigest()[:16]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _meta_digest(doc: dict[str, Any]) -> str:
    """The digest of a sidecar's content (everything but its digest block), canonical JSON."""
    body = {k: v for k, v in doc.items() if k != INTEGRITY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return sha256(text.encode("utf-8"))


class CorruptArtifact(Exception):
    """A cached file that does not match its recorded digest or cannot be parsed."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path, self.why = path, why


class ModelStore:
    """Checkpoints (state dict + JSON metadata + signals) keyed by content hash.

    Args:
        root: The folder (``RUN/models``); created by the first save (building a
            store writes nothing, so an audit can build it before its first file).
        log: Receives one line per damaged file moved aside (and one note the first
            time an entry without digests is met); default: this module's logger.
    """

    def __init__(self, root: Path, log: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.log = log or _logger.warning
        self._legacy_noted = False

    def _paths(self, label: str, key: str) -> tuple[Path, Path, Path]:
        stem = self.root / f"{label}-{key}"
        return stem.with_suffix(".pt"), stem.with_suffix(".json"), stem.with_suffix(".npy")

    def path(self, label: str, key: str) -> Path:
        return self._paths(label, key)[0]

    # -- verification ---------------------------------------------------------------
    def _read_meta(self, label: str, key: str) -> dict[str, Any]:
        """The parsed, self-consistent sidecar of ``label-key`` (raises CorruptArtifact)."""
        meta_path = self._paths(label, key)[1]
        try:
            doc = json.loads(meta_path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptArtifact(meta_path, f"not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise CorruptArtifact(meta_path, "not a JSON object")
        if doc.get("key") != key or doc.get("label") != label:
            raise CorruptArtifact(
                meta_path, f"it describes {doc.get('label')}-{doc.get('key')}, not {label}-{key}"
            )
        block = doc.get(INTEGRITY)
        if block is None:
            return doc  # written before digests existed (see _note_legacy)
        digests = block.get("sha256") if isinstance(block, dict) else None
        if not isinstance(digests, dict) or not all(
            isinstance(digests.get(k), str) for k in ("pt", "npy", "json")
        ):
            raise CorruptArtifact(meta_path, "its digest block is malformed")
        if digests["json"] != _meta_digest(doc):
            raise CorruptArtifact(meta_path, "sha256 of its content does not match its record")
        return doc

    @staticmethod
    def _checked_bytes(path: Path, digest: str | None) -> bytes:
        data = path.read_bytes()
        if digest is not None and sha256(data) != digest:
            raise CorruptArtifact(
                path, "sha256 does not match the digest recorded when it was written"
            )
        return data

    def _digests(self, doc: dict[str, Any]) -> dict[str, str]:
        block = doc.get(INTEGRITY)
        return block["sha256"] if isinstance(block, dict) else {}

    def _quarantine(self, bad: CorruptArtifact) -> None:
        """Move a damaged file aside (``NAME.corrupt-<timestamp>``) and say so in one line."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = bad.path.with_name(f"{bad.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = bad.path.with_name(f"{bad.path.name}.corrupt-{stamp}-{n}")
            n += 1
        try:
            os.replace(bad.path, target)
            where = f"moved aside to {target.name}"
        except FileNotFoundError:
            where = "already gone"
        self.log(f"damaged cache file {bad.path}: {bad.why}; {where}; recomputing it")

    def _note_legacy(self) -> None:
        if not self._legacy_noted:
            self._legacy_noted = True
            self.log(
                f"note: {self.root} holds models cached before integrity digests existed; "
                "they are used when they load cleanly and get digests now "
                f"(delete {self.root} to recompute them)"
            )

    def has(self, label: str, key: str) -> bool:
        """Whether ``label-key`` is cached with intact weights and metadata.

        A damaged weights or metadata file is moved aside (and reported) and the
        entry counts as absent; damaged signals are left to :meth:`fetch`, which
        recomputes them from the weights.
        """
        ckpt, meta_path, sig = self._paths(label, key)
        if not (ckpt.exists() and meta_path.exists() and sig.exists()):
            return False
        try:
            digest = self._digests(self._read_meta(label, key)).get("pt")
            if digest is not None:  # an entry without digests is checked when it is loaded
                self._checked_bytes(ckpt, digest)
        except CorruptArtifact as bad:
            self._quarantine(bad)
            return False
        return True

    def fetch(
        self, label: str, key: str, model: nn.Module
    ) -> tuple[dict[str, Any], np.ndarray | None] | None:
        """Load ``label-key`` into ``model`` after verifying it; None when it must be produced.

        Returns ``(metadata, signals)``; ``signals`` is None when only the signal file was
        damaged (the weights are intact: the caller recomputes the signals from them).
        A damaged file is moved aside and reported in one log line.
        """
        ckpt, meta_path, sig = self._paths(label, key)
        if not (ckpt.exists() and meta_path.exists()):
            return None
        try:
            doc = self._read_meta(label, key)
            digests = self._digests(doc)
            data = self._checked_bytes(ckpt, digests.get("pt"))
            try:
                state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
                model.load_state_dict(state)
            except Exception as exc:  # unreadable or not this model's weights
                raise CorruptArtifact(ckpt, _one_line(f"cannot be loaded ({exc})")) from None
        except CorruptArtifact as bad:
            self._quarantine(bad)
            return None
        meta = {k: v for k, v in doc.items() if k != INTEGRITY}
        signals = None
        if sig.exists():
            try:
                raw = self._checked_bytes(sig, digests.get("npy"))
                try:
                    signals = np.load(io.BytesIO(raw), allow_pickle=False)
                except Exception as exc:
                    raise CorruptArtifact(sig, _one_line(f"cannot be read ({exc})")) from None
            except CorruptArtifact as bad:
                self._quarantine(bad)
        if not digests:
            self._note_legacy()
            if signals is not None:  # it loaded cleanly: record its digests from now on
                self.save(label, key, model, _model_meta(meta), signals)
        return meta, signals

    def load(self, label: str, key: str, model: nn.Module) -> tuple[dict[str, Any], np.ndarray]:
        """Load weights into ``model``; return the metadata and the cached signals.

        Raises:
            CorruptArtifact: A file is missing its digest's content or cannot be parsed
                (nothing is moved; :func:`cached` is the self-healing path).
        """
        ckpt, _, sig = self._paths(label, key)
        doc = self._read_meta(label, key)
        digests = self._digests(doc)
        data = self._checked_bytes(ckpt, digests.get("pt"))
        model.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
        raw = self._checked_bytes(sig, digests.get("npy"))
        meta = {k: v for k, v in doc.items() if k != INTEGRITY}
        return meta, np.load(io.BytesIO(raw), allow_pickle=False)

    def save(
        self, label: str, key: str, model: nn.Module, meta: dict[str, Any], signals: np.ndarray
    ) -> None:
        """Write the signals and weights first and the metadata last (it marks completion).

        The metadata records the sha256 of both files and of itself.
        """
        ckpt, meta_path, sig = self._paths(label, key)
        buf = io.BytesIO()
        np.save(buf, signals)
        sig_bytes = buf.getvalue()
        atomic_write_bytes(sig, sig_bytes)
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
        pt_bytes = buf.getvalue()
        atomic_write_bytes(ckpt, pt_bytes)
        doc = {"key": key, "label": label, **_model_meta(meta)}
        doc[INTEGRITY] = {
            "sha256": {"pt": sha256(pt_bytes), "npy": sha256(sig_bytes), "json": _meta_digest(doc)}
        }
        atomic_write_json(meta_path, doc)


def _model_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """A model's own metadata, without what the store adds."""
    return {k: v for k, v in meta.items() if k not in _META_ONLY}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


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
    A damaged cache file is moved aside and recomputed: damaged signals from the
    intact weights, damaged weights or metadata by producing the model again.
    Returns the model, its metadata, its signals and whether it came from the cache.
    """
    found = store.fetch(label, key, model)
    if found is not None:
        meta, signals = found
        if signals is not None and (signal_key is None or meta.get("signal_key") == signal_key):
            return model, meta, signals, True
        meta = _model_meta(meta)
        if signal_key is not None:
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
