"""The in-memory dataset type, its error and the checks every source of data runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch


class DataError(ValueError):
    """A dataset could not be loaded; the message names the problem and the fix."""


@dataclass(frozen=True)
class Dataset:
    """An in-memory labelled image dataset.

    Attributes:
        name: Dataset name (``digits``, ``fashion-mnist``, a file name...).
        x: Images, float32 ``(n, c, h, w)`` scaled to [0, 1].
        y: Labels, int64 ``(n,)`` in ``0..len(classes)-1``.
        classes: Human-readable class names.
        flippable: Whether a horizontal flip preserves the label semantics.
        ids: Optional user-facing sample ids, ``(n,)`` (defaults to indices).
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    flippable: bool = False
    ids: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise DataError(
                f"{self.name}: x must have shape (n, c, h, w), got {tuple(self.x.shape)}"
            )
        if self.y.ndim != 1 or self.y.shape[0] != self.x.shape[0]:
            raise DataError(
                f"{self.name}: y must have shape ({self.x.shape[0]},), got {tuple(self.y.shape)}"
            )
        if len(self.x) < 4:
            raise DataError(f"{self.name}: needs at least 4 samples, got {len(self.x)}")
        if min(self.x.shape[1:]) < 1:
            raise DataError(
                f"{self.name}: images must not be empty, got shape (c, h, w) = "
                f"{tuple(self.x.shape[1:])}"
            )
        if self.x.is_floating_point():
            check_finite(self.name, self.x)
        if self.y.is_floating_point() or self.y.dtype == torch.bool:
            raise DataError(f"{self.name}: y must hold integer labels, got dtype {self.y.dtype}")
        if len(self.classes) < 2:
            raise DataError(
                f"{self.name}: a classifier needs at least 2 classes, got {len(self.classes)}"
            )
        if int(self.y.min()) < 0 or int(self.y.max()) >= len(self.classes):
            raise DataError(
                f"{self.name}: labels must lie in 0..{len(self.classes) - 1}, "
                f"got {int(self.y.min())}..{int(self.y.max())}"
            )
        if self.ids is not None:
            check_ids(self.name, self.ids, len(self.x))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """The image shape ``(c, h, w)``."""
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        """A content hash of the data (used in cache keys)."""
        h = hashlib.sha256()
        h.update(self.name.encode())
        h.update(self.x.numpy().tobytes())
        h.update(self.y.numpy().tobytes())
        return h.hexdigest()[:16]


def check_finite(where: object, x: torch.Tensor) -> None:
    """Raise :class:`DataError` if the images ``x`` hold a NaN or an infinity.

    Checked in blocks of samples, so a large dataset needs no full-size mask.
    """
    block, first, n_bad = 4096, -1, 0
    for start in range(0, len(x), block):
        part = x[start : start + block]
        bad = ~torch.isfinite(part).reshape(len(part), -1).all(1)
        if bool(bad.any()):
            n_bad += int(bad.sum())
            if first < 0:
                first = start + int(torch.nonzero(bad)[0, 0])
    if n_bad:
        raise DataError(
            f"{where}: x holds NaN or infinite values in {n_bad} sample(s) (first: sample "
            f"{first}); the audit cannot train on them: drop or impute those samples"
        )


def check_ids(where: object, ids: np.ndarray, n: int) -> None:
    """Raise :class:`DataError` unless ``ids`` is ``(n,)`` with every id distinct (as text)."""
    ids = np.asarray(ids)
    if ids.shape != (n,):
        raise DataError(f"{where}: ids must have shape ({n},), got {ids.shape}")
    text = [str(v) for v in ids.tolist()]
    seen: set[str] = set()
    dups: list[str] = []
    for t in text:
        if t in seen and len(dups) < 3 and t not in dups:
            dups.append(t)
        seen.add(t)
    if dups:
        n_dup = len(text) - len(seen)
        raise DataError(
            f"{where}: ids must name each sample once, but {n_dup} sample(s) repeat an id "
            f"(first: {', '.join(repr(d) for d in dups)}); a forget or members file "
            "could not tell them apart: make the ids unique"
        )
