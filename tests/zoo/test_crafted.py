"""Crafted model files: the metadata is validated (pydantic) before anything is built, the architecture
is compared with the file's tensors on torch's meta device before any allocation, and every failure is
one line naming the file."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import fortify as ft

GOOD = {"arch": "cnn-tiny", "input_shape": [1, 8, 8], "num_classes": 4}


@pytest.fixture(scope="module")
def tensors(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "model.safetensors"
    torch.manual_seed(0)
    ft.zoo.save(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), path)
    return load_file(str(path))


def crafted(tmp_path, tensors, header: str) -> str:
    path = tmp_path / "crafted.safetensors"
    save_file(tensors, str(path), metadata={"fortify": header})
    return str(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (json.dumps({"input_shape": [1, 8, 8], "num_classes": 4}), "arch: Field required"),
        ("not json{", "invalid JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        (json.dumps({**GOOD, "input_shape": [1, 100000, 100000]}), "values per input"),
        (json.dumps({**GOOD, "input_shape": [1, 4000, 4000]}), "of another shape"),
        (json.dumps({**GOOD, "input_shape": [1, 8]}), "cannot take input shape"),
        (json.dumps({**GOOD, "input_shape": "1,8,8"}), "input_shape"),
        (json.dumps({**GOOD, "num_classes": True}), "num_classes"),
        (json.dumps({**GOOD, "num_classes": 10}), "5.weight [4, 256] vs [10, 256]"),
        (json.dumps({**GOOD, "bounds": [1, 0]}), "low < high"),
        (json.dumps({**GOOD, "mean": [0.1, 0.2, 0.3]}), "mean has 3 values for 1 input channel"),
        (json.dumps({**GOOD, "arch": "nope"}), "unknown architecture 'nope'"),
        (json.dumps(GOOD)[:-1] + ', "n": ' + "1" * 5000 + "}", "integer of 5000 digits"),
        (json.dumps({**GOOD, "x": 1}).replace('"x": 1', '"x": ' + "[" * 200 + "]" * 200), "nested"),
        (json.dumps(GOOD).replace("4}", "NaN}"), "not a finite number"),
    ],
)
def test_crafted_metadata_is_refused_in_one_line(tmp_path, tensors, header, message):
    with pytest.raises(ft.FortifyError, match="crafted.safetensors") as info:
        ft.zoo.load(crafted(tmp_path, tensors, header))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_state_dict_mismatch_is_one_line_not_torchs_dump(tmp_path, tensors):
    fewer = {k: v for k, v in tensors.items() if k != "0.bias"}
    path = tmp_path / "crafted.safetensors"
    save_file(fewer, str(path), metadata={"fortify": json.dumps(GOOD)})
    with pytest.raises(
        ft.FortifyError, match=r"weights do not match architecture 'cnn-tiny': 1 missing \(0.bias\)"
    ) as info:
        ft.zoo.load(path)
    assert "\n" not in str(info.value)


def test_zoo_save_is_atomic_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    ft.zoo.save(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), path)
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", full_disk)
    with pytest.raises(ft.FortifyError, match="cannot write .*No space left on device"):
        ft.zoo.save(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
