"""Datasets as in-memory tensors.

Every dataset is loaded once into memory as ``x: float32 (n, c, h, w)`` in
[0, 1] and ``y: int64 (n,)``. The embedded default, scikit-learn's bundled
``digits``, needs no download. MNIST and Fashion-MNIST are read from their
IDX files (gzipped or not) under a data root, which covers torchvision's
``raw/`` layout and Debian's ``/usr/share/datasets/fashion-mnist``. CIFAR-10,
CIFAR-100 and SVHN go through torchvision with ``download=False``. A user's
own data comes from an ``.npz`` file holding ``x`` and ``y`` (and optionally
``ids`` and ``classes``).
"""

from __future__ import annotations

import gzip
import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
