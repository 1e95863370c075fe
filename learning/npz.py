"""A user's own dataset from an ``.npz`` file (``x``, ``y``, optional ``ids`` and ``classes``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from unlearn_audit.learning.dataset import DataError, Dataset, check_finite, check_ids


def _npz_labels(path: Path, y: np.ndarray, classes: np.ndarray | None) -> tuple[str, ...]:
    """Check ``y`` (and ``classes``) of an ``.npz``; the class names."""
    if y.ndim != 1:
        raise DataError(f"{path}: y must be a 1-d array of labels, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: y must hold integer labels, got dtype {y.dtype}")
    n = y.size
    if n == 0:
        raise DataError(f"{path}: y holds no label")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0:
        raise DataError(f"{path}: labels must be >= 0 (class indices 0..K-1), got {lo}")
    present = np.unique(y)
    if present.size < 2:
        raise DataError(
            f"{path}: every sample has label {lo}; a classifier audit needs samples of at "
            "least 2 classes"
        )
    if classes is not None:
        if classes.ndim != 1:
            raise DataError(f"{path}: classes must be a 1-d array of names, got {classes.shape}")
        names = tuple(str(c) for c in classes.tolist())
        if hi >= len(names):
            raise DataError(
                f"{path}: labels must lie in 0..{len(names) - 1} (the {len(names)} names in "
                f"classes), got up to {hi}"
            )
    else:
        k = hi + 1
        if present.size != k:
            missing = np.setdiff1d(np.arange(min(k, present.size + 3)), present)
            raise DataError(
                f"{path}: labels must be the class indices 0..K-1, but y holds "
                f"{present.size} distinct labels between {lo} and {hi} (absent: "
                f"{', '.join(map(str, missing[:3]))}{'...' if k - present.size > 3 else ''}); "
                "map them to 0..K-1 (np.unique(y, return_inverse=True)) or store the class "
                "names in a 'classes' array"
            )
        names = tuple(str(i) for i in range(k))
    if len(names) > n:
        raise DataError(
            f"{path}: {len(names)} classes for {n} samples; a class needs samples to be "
            "learned: check y (labels must be class indices 0..K-1, not raw codes)"
        )
    return names


def load_npz(path: Path) -> Dataset:
    """Load a user dataset from ``.npz`` with ``x`` (n, c, h, w) or (n, h, w) and ``y`` (n,).

    Integer images are scaled by 255; float images are taken as they are and must
    be finite. ``y`` holds class indices ``0..K-1`` of at least 2 classes (K = the
    length of ``classes`` when given, else every index up to the largest label must
    occur). Optional arrays: ``ids`` (user-facing sample ids, all distinct) and
    ``classes`` (names). Pickled object arrays are refused.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path}: not a valid .npz file (an .npz is a zip archive of arrays; write it "
            "with numpy.savez or numpy.savez_compressed)"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        raise DataError(f"{path}: cannot read as .npz without pickle ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a valid .npz file ({exc})") from exc
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path}: missing array '{key}' (found: {sorted(arrays)})")
    x = arrays["x"]
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataError(f"{path}: x must be (n, c, h, w) or (n, h, w), got shape {x.shape}")
    if min(x.shape[1:]) < 1:
        raise DataError(f"{path}: images must not be empty, got x of shape {x.shape}")
    if x.shape[0] < 4:
        raise DataError(f"{path}: needs at least 4 samples, got {x.shape[0]}")
    if not (
        np.issubdtype(x.dtype, np.integer)
        or np.issubdtype(x.dtype, np.floating)
        or x.dtype == np.bool_
    ):
        raise DataError(f"{path}: x must hold integer or float pixels, got dtype {x.dtype}")
    y = arrays["y"]
    if y.shape[:1] != x.shape[:1]:
        raise DataError(
            f"{path}: y must have shape ({x.shape[0]},) (one label per image), got {y.shape}"
        )
    classes = _npz_labels(path, y, arrays.get("classes"))
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf: caught
        xt = torch.from_numpy(x.astype(np.float32))
    if np.issubdtype(x.dtype, np.integer):
        xt = xt / 255.0
    check_finite(path, xt)
    ids = arrays.get("ids")
    if ids is not None:
        check_ids(path, ids, y.shape[0])
    return Dataset(path.stem, xt, torch.from_numpy(y.astype(np.int64)), classes, ids=ids)
