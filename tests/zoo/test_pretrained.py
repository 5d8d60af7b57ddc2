"""Shipped pretrained models: listed with the figures of their own Result, loaded only when intact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import fortify as ft
from fortify._files import file_sha256
from fortify.cli.main import main
from fortify.types import FortifyError


@pytest.fixture
def shipped(tmp_path: Path, tiny_cnn) -> Path:
    clf, x, y = tiny_cnn
    ft.zoo.save(clf, tmp_path / "tiny.safetensors", dataset="synthetic")
    result = ft.evaluate(clf, x[:32], y[:32], ft.Linf(0.05), suite="quick", seed=0)
    result.save(str(tmp_path / "tiny.result.json"))
    index = {
        "tiny-linf-0.05": {
            "weights": "tiny.safetensors",
            "result": "tiny.result.json",
            "sha256": file_sha256(tmp_path / "tiny.safetensors"),
            "description": "a test model",
        }
    }
    (tmp_path / "index.json").write_text(json.dumps(index))
    return tmp_path


def test_a_shipped_model_loads_and_lists_the_figures_of_its_result(shipped: Path, tiny_cnn) -> None:
    clf, x, y = tiny_cnn
    [entry] = ft.zoo.available(shipped)
    result = ft.Result.load(str(shipped / "tiny.result.json"))
    assert (entry.clean_accuracy, entry.robust_accuracy) == (result.clean_accuracy, result.robust_accuracy)
    assert entry.threat == "linf 0.05" and entry.n_samples == 32
    loaded = ft.zoo.pretrained("tiny-linf-0.05", folder=shipped)
    assert torch.equal(loaded(x[:8]), clf(x[:8]))
    assert loaded.metadata["pretrained"]["name"] == "tiny-linf-0.05"


def test_a_damaged_file_an_unknown_name_and_a_bad_index_are_refused(shipped: Path) -> None:
    with pytest.raises(FortifyError, match="no pretrained model 'nope'; shipped: tiny-linf-0.05"):
        ft.zoo.pretrained("nope", folder=shipped)
    data = bytearray((shipped / "tiny.safetensors").read_bytes())
    data[-1] ^= 1
    (shipped / "tiny.safetensors").write_bytes(bytes(data))
    with pytest.raises(FortifyError, match="does not match the SHA-256"):
        ft.zoo.pretrained("tiny-linf-0.05", folder=shipped)
    (shipped / "index.json").write_text(json.dumps({"x": {"weights": "../../etc/passwd", "result": "r"}}))
    with pytest.raises(FortifyError, match="plain file name"):
        ft.zoo.available(shipped)


def test_zoo_list_runs_on_what_this_installation_ships(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "cnn-wide" in out
    for model in ft.zoo.available():  # every shipped model loads intact, with its figures listed
        assert model.name in out
        assert isinstance(ft.zoo.pretrained(model.name), ft.Classifier)
