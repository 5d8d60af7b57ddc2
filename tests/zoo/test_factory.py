"""ft.zoo.save stores any module with the import path that rebuilds it; ft.zoo.load imports it only
when trusted."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.types import FortifyError
from fortify.zoo.factory import build, parse_model_args
from tests.byo_package import models


def _saved(tmp_path):
    torch.manual_seed(0)
    module = models.tiny_cnn(width=3)
    clf = ft.Classifier(module, num_classes=4, mean=0.5, std=0.25)
    path = ft.zoo.save(
        clf,
        tmp_path / "own.safetensors",
        factory="tests.byo_package.models:tiny_cnn",
        factory_kwargs={"width": 3},
        input_shape=(1, 8, 8),
    )  # num_classes from the Classifier
    return clf, path


def test_any_module_round_trips_through_its_factory(tmp_path):
    clf, path = _saved(tmp_path)
    loaded = ft.zoo.load(path, trust_code=True)
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(loaded(x), clf(x))
    assert loaded.metadata["factory"] == "tests.byo_package.models:tiny_cnn"
    assert loaded.metadata["factory_kwargs"] == {"width": 3}


def test_a_file_alone_never_imports_code(tmp_path):
    _, path = _saved(tmp_path)
    before = len(models.CALLS)
    with pytest.raises(FortifyError, match="trust_code=True .*--model tests.byo_package.models:tiny_cnn"):
        ft.zoo.load(path)
    assert len(models.CALLS) == before


def test_saving_a_foreign_module_needs_a_factory_and_shape(tmp_path):
    with pytest.raises(FortifyError, match="factory='pkg.module:function'"):
        ft.zoo.save(models.tiny_cnn(), tmp_path / "a.safetensors")
    with pytest.raises(FortifyError, match="input_shape"):
        ft.zoo.save(
            models.tiny_cnn(), tmp_path / "a.safetensors", factory="tests.byo_package.models:tiny_cnn"
        )
    with pytest.raises(FortifyError, match="import path"):
        ft.zoo.save(models.tiny_cnn(), tmp_path / "a.safetensors", factory="os.system('x')")


def test_weights_that_do_not_fit_the_factory_are_one_line(tmp_path):
    _, path = _saved(tmp_path)
    # the same file, but the factory's kwargs now build a wider model
    meta = ft.zoo.read_metadata(path)
    assert meta["factory_kwargs"] == {"width": 3}
    module = models.tiny_cnn(width=5)
    other = ft.zoo.save(
        ft.Classifier(module, num_classes=4),
        tmp_path / "wide.safetensors",
        factory="tests.byo_package.models:tiny_cnn",
        factory_kwargs={"width": 3},
        input_shape=(1, 8, 8),
        num_classes=4,
    )
    with pytest.raises(FortifyError, match="do not match") as info:
        ft.zoo.load(other, trust_code=True)
    assert "\n" not in str(info.value)


def test_bad_factories_are_named():
    with pytest.raises(FortifyError, match="cannot import"):
        build("tests.byo_package.nowhere:tiny_cnn")
    with pytest.raises(FortifyError, match="no attribute"):
        build("tests.byo_package.models:missing")
    with pytest.raises(FortifyError, match="not callable"):
        build("tests.byo_package.models:NOT_A_FACTORY")
    with pytest.raises(FortifyError, match="failed"):
        build("tests.byo_package.models:tiny_cnn", {"depth": 2})


def test_model_args_are_json_values_or_strings():
    assert parse_model_args(["width=8", "act=relu", "flag=true", "p=0.5"]) == {
        "width": 8,
        "act": "relu",
        "flag": True,
        "p": 0.5,
    }
    with pytest.raises(FortifyError, match="name=value"):
        parse_model_args(["width"])
    with pytest.raises(FortifyError, match="twice"):
        parse_model_args(["a=1", "a=2"])
