"""Datasets as in-memory tensors.

Every dataset is loaded once into memory as ``x: float32 (n, c, h, w)`` in
[0, 1] and ``y: int64 (n,)``. The embedded default, scikit-learn's bundled
``digits``, needs no download. MNIST and Fashion-MNIST are read from their
IDX files (gzipped or not) under a data root, which covers torchvision's
``raw/`` layout and Debian's ``/usr/share/datasets/fashion-mnist``. CIFAR-10,
CIFAR-100 and SVHN go through torchvision with ``download=False``. A user's
own data comes from an ``.npz`` file holding ``x`` and ``y`` (and optionally
``ids`` and ``classes``; :mod:`learning.npz`). The type, :class:`Dataset`, and the
checks every source runs are :mod:`learning.dataset`.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from unlearn_audit.learning.dataset import DataError, Dataset, check_finite, check_ids
from unlearn_audit.learning.npz import load_npz

# the dataset type and its checks live in learning.dataset; callers import them from here
__all__ = [
    "DataError",
    "Dataset",
    "available_datasets",
    "check_finite",
    "check_ids",
    "default_size",
    "load_dataset",
    "load_npz",
    "read_idx",
]


def _digits(root: Path | None) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    return Dataset("digits", x, y, tuple(str(i) for i in range(10)))


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({data.size} values for shape {dims})")
    return data.reshape(dims)


def _find_idx(root: Path, stem: str) -> Path:
    """Find ``stem`` (e.g. ``train-images-idx3-ubyte``) under root, gzipped or not."""
    for name in (stem, stem + ".gz"):
        hits = sorted(root.rglob(name))
        if hits:
            return hits[0]
    raise DataError(f"{root}: no {stem}[.gz] found below the data root")


MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _idx_dataset(name: str, classes: tuple[str, ...]) -> Callable[[Path | None], Dataset]:
    def load(root: Path | None) -> Dataset:
        root = _require_root(name, root)
        xs, ys = [], []
        for split in ("train", "t10k"):
            xs.append(read_idx(_find_idx(root, f"{split}-images-idx3-ubyte")))
            ys.append(read_idx(_find_idx(root, f"{split}-labels-idx1-ubyte")))
        x = torch.from_numpy(np.concatenate(xs)).float().unsqueeze(1) / 255.0
        y = torch.from_numpy(np.concatenate(ys).astype(np.int64))
        return Dataset(name, x, y, classes)

    return load


def _torchvision_dataset(name: str, flippable: bool) -> Callable[[Path | None], Dataset]:
    def load(root: Path | None) -> Dataset:
        import torchvision.datasets as tvd

        root = _require_root(name, root)
        cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "svhn": tvd.SVHN}[name]
        parts = []
        try:
            if name == "svhn":
                parts = [cls(str(root), split=s, download=False) for s in ("train", "test")]
            else:
                parts = [cls(str(root), train=t, download=False) for t in (True, False)]
        except (RuntimeError, FileNotFoundError) as exc:
            raise DataError(
                f"{name}: raw files not found under {root} ({exc}). Download them once with "
                f"torchvision (e.g. torchvision.datasets.{cls.__name__}('{root}', download=True))"
            ) from exc
        xs, ys = [], []
        for part in parts:
            data = np.asarray(part.data)
            if data.shape[-1] == 3:  # CIFAR: (n, h, w, c)
                data = data.transpose(0, 3, 1, 2)
            xs.append(data)
            ys.append(np.asarray(part.labels if name == "svhn" else part.targets))
        x = torch.from_numpy(np.concatenate(xs)).float() / 255.0
        y = torch.from_numpy(np.concatenate(ys).astype(np.int64))
        classes = tuple(getattr(parts[0], "classes", None) or [str(i) for i in range(10)])
        return Dataset(name, x, y, classes, flippable=flippable)

    return load


def _require_root(name: str, root: Path | None) -> Path:
    if root is None:
        raise DataError(f"{name}: needs a data root (--data-root DIR holding its raw files)")
    if not root.is_dir():
        raise DataError(f"{name}: data root {root} does not exist or is not a folder")
    return root


LOADERS: dict[str, Callable[[Path | None], Dataset]] = {
    "digits": _digits,
    "mnist": _idx_dataset("mnist", MNIST_CLASSES),
    "fashion-mnist": _idx_dataset("fashion-mnist", FASHION_CLASSES),
    "cifar10": _torchvision_dataset("cifar10", flippable=True),
    "cifar100": _torchvision_dataset("cifar100", flippable=True),
    "svhn": _torchvision_dataset("svhn", flippable=False),
}


# The size a dataset is audited at when the config's ``data.limit`` is 0 (absent: all of it).
# digits: its first 1,000 images; a model trained on 500 of them memorises each member
# more than one trained on 898, and 300 forget records (60% of the members) give the
# embedded default audit its power (benchmarks/results/validity_default.txt,
# docs/verdict.md "The embedded default").
DEFAULT_SIZES = {"digits": 1000}


def default_size(name: str) -> int | None:
    """How many samples of ``name`` an audit uses when ``data.limit`` is 0 (None: all)."""
    return DEFAULT_SIZES.get(name)


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset` (besides a path to an ``.npz`` file)."""
    return sorted(LOADERS)


def load_dataset(name: str, root: str | Path | None = None, limit: int | None = None) -> Dataset:
    """Load a dataset by name, or from an ``.npz`` path.

    Args:
        name: One of :func:`available_datasets`, or a path ending in ``.npz``.
        root: Folder with the raw files (not needed for ``digits`` or ``.npz``).
        limit: Keep only the first ``limit`` samples (a fixed, documented subset).

    Raises:
        DataError: unknown name, missing root or files, malformed data.
    """
    root_path = Path(root) if root is not None else None
    if name.endswith(".npz"):
        ds = load_npz(Path(name))
    elif name in LOADERS:
        ds = LOADERS[name](root_path)
    else:
        raise DataError(
            f"unknown dataset '{name}'; valid: {', '.join(available_datasets())} or a path to .npz"
        )
    if limit is not None and limit < len(ds):
        ids = ds.ids[:limit] if ds.ids is not None else None
        ds = Dataset(
            ds.name, ds.x[:limit].clone(), ds.y[:limit].clone(), ds.classes, ds.flippable, ids
        )
    return ds
