"""Dataset loading: shapes, ranges, checksums, missing files, no downloads."""

from __future__ import annotations

import shutil

import pytest
import torch

import fortify as ft
from fortify.data import fashion_mnist
from tests.conftest import needs_fashion_mnist


@pytest.mark.parametrize(
    ("name", "shape", "classes"),
    [("digits", (1, 8, 8), 10), ("breast-cancer", (30,), 2), ("synthetic", (1, 8, 8), 4)],
)
@pytest.mark.parametrize("split", ["train", "test"])
def test_shipped_datasets_are_float_in_unit_range(name, shape, classes, split):
    x, y = ft.data.load(name, split)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert tuple(x.shape[1:]) == shape and x.shape[0] == y.shape[0] > 0
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert set(y.tolist()) == set(range(classes))


def test_train_and_test_splits_are_disjoint_for_sklearn_sets():
    x_tr, _ = ft.data.load("digits", "train")
    x_te, _ = ft.data.load("digits", "test")
    train_rows = {tuple(r) for r in x_tr.flatten(1).tolist()}
    overlap = sum(tuple(r) in train_rows for r in x_te.flatten(1).tolist())
    assert overlap < 0.05 * x_te.shape[0]  # digits has a few exact duplicate images, nothing more


def test_synthetic_is_seeded():
    a = ft.data.make_synthetic(50, seed=4)
    b = ft.data.make_synthetic(50, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize(
    ("name", "split", "match"), [("cifar", "test", "unknown dataset"), ("digits", "val", "split")]
)
def test_bad_names_are_reported(name, split, match):
    with pytest.raises(ft.FortifyError, match=match):
        ft.data.load(name, split)


@needs_fashion_mnist
def test_fashion_mnist_test_split():
    x, y = ft.data.load("fashion-mnist", "test", n=100)
    assert x.shape == (100, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # the published first test labels


def test_missing_fashion_mnist_says_which_file_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FORTIFY_DATA", str(tmp_path))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "absent")
    with pytest.raises(ft.data.DataError if hasattr(ft.data, "DataError") else ft.FortifyError) as info:
        ft.data.load("fashion-mnist", "test")
    message = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in message and "apt-get install dataset-fashion-mnist" in message


@needs_fashion_mnist
def test_corrupt_fashion_mnist_file_fails_its_checksum(tmp_path, monkeypatch):
    for name in fashion_mnist.SHA256:
        shutil.copy(fashion_mnist.SYSTEM_DIR / name, tmp_path / name)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    monkeypatch.setenv("FORTIFY_DATA", str(tmp_path))
    with pytest.raises(ft.FortifyError, match="t10k-labels-idx1-ubyte.gz.*SHA-256"):
        ft.data.load("fashion-mnist", "test")


def test_nothing_downloads_without_being_asked(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(fashion_mnist.urllib.request, "urlopen", refuse)
    monkeypatch.setenv("FORTIFY_DATA", str(tmp_path))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "absent")
    with pytest.raises(ft.FortifyError):
        ft.data.load("fashion-mnist", "train")
