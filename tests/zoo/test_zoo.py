"""Model files: safetensors round trip, metadata, pickles refused."""

from __future__ import annotations

import pickle

import pytest
import torch

import fortify as ft


@pytest.mark.parametrize(
    ("arch", "shape", "classes"),
    [("cnn-small", (1, 28, 28), 10), ("cnn-tiny", (3, 8, 8), 4), ("mlp", (30,), 2)],
)
def test_round_trip_gives_identical_logits(tmp_path, arch, shape, classes):
    torch.manual_seed(0)
    clf = ft.Classifier(ft.zoo.create(arch, shape, classes), num_classes=classes, mean=0.5, std=0.25)
    path = ft.zoo.save(clf, tmp_path / "m.safetensors", dataset="x", metrics={"acc": 0.5})
    back = ft.zoo.load(path)
    x = torch.rand(5, *shape)
    assert torch.equal(back.logits(x), clf.logits(x))
    assert back.metadata["arch"] == arch and back.metadata["metrics"] == {"acc": 0.5}
    assert back.metadata["fortify_version"] == ft.__version__
    assert ft.zoo.read_metadata(path)["dataset"] == "x"


def test_cnn_small_matches_the_benchmark_model_size():
    params = sum(p.numel() for p in ft.zoo.create("cnn-small", (1, 28, 28), 10).parameters())
    assert 1.1e6 < params < 1.3e6


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl", ".safetensors"])
def test_pickles_are_refused_with_an_explanation(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    if suffix == ".safetensors":  # a pickle in disguise
        path.write_bytes(pickle.dumps({"w": 1}))
    else:
        torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(ft.FortifyError, match="refuses to unpickle"):
        ft.zoo.load(path)


def test_unknown_module_cannot_be_saved_by_name(tmp_path):
    with pytest.raises(ft.FortifyError, match="zoo.create"):
        ft.zoo.save(torch.nn.Linear(2, 2), tmp_path / "m.safetensors")


def test_missing_and_foreign_files_are_reported(tmp_path):
    with pytest.raises(ft.FortifyError, match="does not exist"):
        ft.zoo.load(tmp_path / "none.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ft.FortifyError, match="no fortify metadata"):
        ft.zoo.load(tmp_path / "plain.safetensors")


def test_unknown_architecture_is_reported():
    with pytest.raises(ft.FortifyError, match="unknown architecture"):
        ft.zoo.create("resnet-9000", (1, 8, 8), 2)
    with pytest.raises(ft.FortifyError, match="images"):
        ft.zoo.create("cnn-small", (30,), 2)
