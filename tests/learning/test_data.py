import gzip
import struct

import numpy as np
import pytest
import torch

from unlearn_audit.learning.data import (
    DataError,
    available_datasets,
    load_dataset,
    load_npz,
    read_idx,
)

FASHION = "/usr/share/datasets/fashion-mnist"


def _write_idx(path, array, gz):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / ("a.idx.gz" if gz else "a.idx")
    _write_idx(p, arr, gz)
    np.testing.assert_array_equal(read_idx(p), arr)


def test_read_idx_rejects_truncated(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(DataError, match="truncated"):
        read_idx(p)


def test_idx_dataset_from_a_folder_of_gz_files(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        _write_idx(
            tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), True
        )
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,)), True)
    ds = load_dataset("fashion-mnist", tmp_path)
    assert ds.x.shape == (10, 1, 28, 28) and ds.x.dtype == torch.float32
    assert float(ds.x.max()) <= 1.0 and ds.classes[0] == "T-shirt/top"


def test_digits_is_embedded():
    ds = load_dataset("digits")
    assert len(ds) == 1797 and ds.shape == (1, 8, 8) and ds.num_classes == 10
    assert 0.0 <= float(ds.x.min()) and float(ds.x.max()) <= 1.0
    assert ds.fingerprint() == load_dataset("digits").fingerprint()


def test_limit_takes_a_prefix():
    full, part = load_dataset("digits"), load_dataset("digits", limit=100)
    assert len(part) == 100 and torch.equal(part.x, full.x[:100])


@pytest.mark.parametrize(
    ("name", "root", "match"),
    [
        ("nope", None, "unknown dataset 'nope'; valid: cifar10, cifar100, digits"),
        ("fashion-mnist", None, "needs a data root"),
        ("fashion-mnist", "/definitely/not/here", "does not exist"),
        ("cifar10", "/definitely/not/here", "does not exist"),
    ],
)
def test_bad_dataset_errors_name_the_problem(name, root, match):
    with pytest.raises(DataError, match=match):
        load_dataset(name, root)


def test_npz_loading_and_errors(tmp_path):
    p = tmp_path / "mine.npz"
    np.savez(p, x=np.zeros((8, 5, 5), np.uint8) + 255, y=np.arange(8) % 2, ids=np.arange(100, 108))
    ds = load_npz(p)
    assert ds.x.shape == (8, 1, 5, 5) and float(ds.x.max()) == 1.0 and ds.num_classes == 2
    assert list(ds.ids[:2]) == [100, 101]
    np.savez(tmp_path / "noy.npz", x=np.zeros((8, 5, 5)))
    with pytest.raises(DataError, match="missing array 'y'"):
        load_npz(tmp_path / "noy.npz")
    np.savez(tmp_path / "obj.npz", x=np.zeros((8, 5, 5)), y=np.array([object()] * 8))
    with pytest.raises(DataError, match="without pickle"):
        load_npz(tmp_path / "obj.npz")
    with pytest.raises(DataError, match="no such file"):
        load_npz(tmp_path / "missing.npz")


def test_available_datasets():
    assert set(available_datasets()) == {
        "digits",
        "mnist",
        "fashion-mnist",
        "cifar10",
        "cifar100",
        "svhn",
    }


@pytest.mark.slow
def test_real_fashion_mnist_debian_layout(require_fashion):
    ds = load_dataset("fashion-mnist", FASHION)
    assert ds.x.shape == (70000, 1, 28, 28)
    assert np.bincount(ds.y.numpy()).tolist() == [7000] * 10
