"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747): 70,000 28x28 grey images, 10 classes.

Files are looked for in ``$FORTIFY_DATA`` (or its ``fashion-mnist/`` subfolder), then in Debian's
``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``). Only with ``download=True``
are they fetched from the dataset's canonical source. Every file is SHA-256 checked before use.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

import numpy as np

from fortify._files import atomic_write_bytes
from fortify.data.idx import parse_idx
from fortify.types import DataError

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
SOURCE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CLASSES = (
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

SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
_PREFIX = {"train": "train", "test": "t10k"}

HOW_TO_GET = (
    "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), or put the four "
    ".gz files in a folder named by $FORTIFY_DATA, or run `fortify data fetch fashion-mnist`"
)


def search_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("FORTIFY_DATA")
    if env:
        dirs += [Path(env), Path(env) / "fashion-mnist"]
    return [*dirs, SYSTEM_DIR]


def _find(filename: str) -> Path | None:
    for folder in search_dirs():
        if (folder / filename).is_file():
            return folder / filename
    return None


def verified_bytes(path: Path, filename: str) -> bytes:
    """The file's bytes, after checking their SHA-256 against the published archive's."""
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256[filename]:
        raise DataError(
            f"{path} is corrupt or not the original Fashion-MNIST file (SHA-256 {digest[:16]}..., "
            f"expected {SHA256[filename][:16]}...); delete it and {HOW_TO_GET}"
        )
    return raw


def download(target: Path) -> None:
    """Fetch the four archives into ``target`` (checked before they are kept)."""
    target.mkdir(parents=True, exist_ok=True)
    for filename, digest in SHA256.items():
        if (target / filename).is_file():
            continue
        with urllib.request.urlopen(SOURCE_URL + filename, timeout=60) as response:  # noqa: S310
            raw = response.read()
        if hashlib.sha256(raw).hexdigest() != digest:
            raise DataError(f"downloaded {filename} failed its SHA-256 check; nothing was kept")
        atomic_write_bytes(target / filename, raw)


def load_arrays(split: str, *, download_to: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 28, 28), labels uint8 (N,))`` for ``split`` in ``{"train", "test"}``."""
    if split not in _PREFIX:
        raise DataError(f"fashion-mnist has splits 'train' and 'test', not {split!r}")
    arrays = []
    for kind in ("images-idx3", "labels-idx1"):
        filename = f"{_PREFIX[split]}-{kind}-ubyte.gz"
        path = _find(filename)
        if path is None and download_to is not None:
            download(download_to)
            path = download_to / filename
        if path is None:
            where = ", ".join(str(d) for d in search_dirs())
            raise DataError(f"Fashion-MNIST file {filename} not found in {where}; {HOW_TO_GET}")
        arrays.append(parse_idx(verified_bytes(path, filename), str(path)))
    images, labels = arrays
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"Fashion-MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels
