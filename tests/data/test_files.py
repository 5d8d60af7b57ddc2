"""The user's own data sets: folder:PATH of PNG/JPEG class folders and npz:FILE, with disjoint splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import fortify as ft
from fortify.types import DataError


def _images(root, classes=("cat", "dog"), per_class=5, size=(6, 4), mode="RGB"):
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            value = 40 * k + i
            Image.new(mode, size, (value,) * 3 if mode == "RGB" else value).save(root / name / f"{i}.png")
    return root


def test_a_class_folder_gives_chw_floats_and_disjoint_splits(tmp_path):
    _images(tmp_path / "pets")
    name = f"folder:{tmp_path / 'pets'}"
    info = ft.data.info(name)
    assert (info.num_classes, info.shape, info.classes) == (2, (3, 4, 6), ("cat", "dog"))
    x_train, y_train = ft.data.load(name, "train")
    x_test, y_test = ft.data.load(name, "test")
    assert x_train.dtype == torch.float32 and float(x_train.min()) >= 0 and float(x_train.max()) <= 1
    assert len(x_train) + len(x_test) == 10 and len(x_test) == 2
    seen = {round(float(v) * 255) for v in torch.cat([x_train, x_test])[:, 0, 0, 0]}
    assert len(seen) == 10  # every image once, in one split only
    assert torch.equal(torch.bincount(torch.cat([y_train, y_test])), torch.tensor([5, 5]))


def test_grayscale_images_are_one_channel_and_train_test_folders_are_used(tmp_path):
    _images(tmp_path / "d" / "train", mode="L", per_class=3)
    _images(tmp_path / "d" / "test", mode="L", per_class=2)
    name = f"folder:{tmp_path / 'd'}"
    assert ft.data.info(name).shape == (1, 4, 6)
    assert len(ft.data.load(name, "train")[0]) == 6 and len(ft.data.load(name, "test", n=3)[0]) == 3


def test_bad_folders_are_named(tmp_path):
    _images(tmp_path / "odd")
    Image.new("RGB", (5, 5)).save(tmp_path / "odd" / "dog" / "big.png")
    with pytest.raises(DataError, match="big.png: 5x5 pixels"):
        ft.data.info(f"folder:{tmp_path / 'odd'}")
    (tmp_path / "one" / "only").mkdir(parents=True)
    with pytest.raises(DataError, match="at least 2"):
        ft.data.info(f"folder:{tmp_path / 'one'}")
    with pytest.raises(DataError, match="no such folder"):
        ft.data.info(f"folder:{tmp_path / 'nowhere'}")


def test_npz_arrays(tmp_path):
    path = tmp_path / "set.npz"
    x = np.arange(10 * 3, dtype=np.uint8).reshape(10, 3)
    np.savez(path, x=x, y=np.arange(10) % 3)
    info = ft.data.info(f"npz:{path}")
    assert (info.num_classes, info.shape) == (3, (3,))
    x_test, _ = ft.data.load(f"npz:{path}", "test")
    assert torch.allclose(x_test, torch.from_numpy(x[::5].astype(np.float32) / 255))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 2))}, "needs arrays x and y"),
        ({"x": np.full((4, 2), 2.0), "y": np.zeros(4, dtype=int)}, "in \\[0, 1\\]"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(4)}, "class indices"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(3, dtype=int)}, "x must be"),
    ],
)
def test_bad_npz_is_named(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        ft.data.load(f"npz:{path}", "train")
