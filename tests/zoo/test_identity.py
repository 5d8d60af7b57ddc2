"""Model identity: a loaded model says what it is (architecture, parameters, the weights file and the
SHA-256 of its bytes, the training run it came from), every Result about it carries that, and a
crafted identity is refused like any other bad field."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import fortify as ft
from fortify.result import readers
from fortify.result.identity import config_digest, training_settings
from tests.report.factories import make_result

TRAINING = {"method": "pgd", "seed": 3, "config": {"epochs": 2, "lr": 0.01, "method": "pgd"}, "epochs": []}


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"
    ft.zoo.save(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), path, dataset="synthetic", training=TRAINING)
    return path


def test_a_loaded_model_names_its_file_digest_and_training_run(saved):
    clf = ft.zoo.load(saved)
    identity = clf.identity
    assert identity["architecture"] == "cnn-tiny" and identity["source"] == "zoo"
    assert identity["parameters"] == sum(p.numel() for p in clf.module.parameters())
    assert identity["weights_file"] == str(saved)
    assert identity["weights_sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    run = identity["training_run"]
    assert run == ft.zoo.read_metadata(saved)["training_run"]  # what the file records, not made up
    assert run["config_sha256"] == config_digest(training_settings(TRAINING)) and run["method"] == "pgd"
    assert len(run["id"]) == 32 and run["dataset"] == "synthetic"


def test_every_result_about_the_model_carries_its_identity(saved):
    clf = ft.zoo.load(saved)
    x, y = ft.data.load("synthetic", "test", n=8)
    result = ft.evaluate(clf, x, y, ft.Linf(0.05), suite="quick")
    assert readers.model_identity(result) == clf.identity
    again = ft.Result.from_json(result.to_json())
    assert again.model["identity"] == clf.identity
    defended = ft.defenses.defend(clf, preprocess=[ft.defenses.BitDepth(4)])
    assert defended.describe()["identity"] == clf.identity  # the same weights behind a defense


def test_two_saves_of_one_training_are_two_runs_and_a_given_run_is_kept(tmp_path, saved):
    first = ft.zoo.read_metadata(saved)["training_run"]
    model = ft.zoo.create("cnn-tiny", (1, 8, 8), 4)
    ft.zoo.save(model, tmp_path / "again.safetensors", training=TRAINING)
    second = ft.zoo.read_metadata(tmp_path / "again.safetensors")["training_run"]
    assert second["id"] != first["id"] and second["config_sha256"] == first["config_sha256"]
    ft.zoo.save(model, tmp_path / "kept.safetensors", training=TRAINING, training_run=first)
    assert ft.zoo.read_metadata(tmp_path / "kept.safetensors")["training_run"] == first
    ft.zoo.save(model, tmp_path / "plain.safetensors")
    assert "training_run" not in ft.zoo.read_metadata(tmp_path / "plain.safetensors")
    with pytest.raises(ft.FortifyError, match="training_run"):
        ft.zoo.save(model, tmp_path / "bad.safetensors", training_run={"id": "not-hex"})


@pytest.mark.parametrize(
    "run",
    [{"id": "z" * 32}, {"config_sha256": "abc"}, {"id": "a" * 32, "colour": "red"}, {"method": "x" * 5000}],
)
def test_a_crafted_training_run_in_a_model_file_is_refused_in_one_line(tmp_path, saved, run):
    header = {**ft.zoo.read_metadata(saved), "training_run": run}
    path = tmp_path / "crafted.safetensors"
    save_file(load_file(str(saved)), str(path), metadata={"fortify": json.dumps(header)})
    with pytest.raises(ft.FortifyError, match="crafted.safetensors: fortify metadata: training_run") as info:
        ft.zoo.load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("identity", "field"),
    [
        ({"weights_sha256": "0" * 63}, "weights_sha256"),
        ({"parameters": -1}, "parameters"),
        ({"source": "pickle"}, "source"),
        ({"architecture": "a", "colour": "red"}, "colour"),
        ({"training_run": {"id": "A" * 32}}, "identity.training_run.id"),
        ("cnn-tiny", "identity: Input should be a valid dictionary"),
    ],
)
def test_a_result_with_a_malformed_identity_is_refused_naming_the_field(identity, field):
    document = json.loads(make_result().to_json())
    document["model"]["identity"] = identity
    with pytest.raises(ft.FortifyError, match="not a valid fortify result") as info:
        ft.Result.from_json(json.dumps(document), source="eval.json")
    assert field in str(info.value) and "\n" not in str(info.value)


def test_results_written_before_identity_still_read():
    document = json.loads(make_result().to_json())
    document["schema_version"] = "1.4"
    document["environment"].pop("threads")
    result = ft.Result.from_json(json.dumps(document))
    assert readers.model_identity(result) is None and result.environment.threads is None
    assert "no weights file or training run recorded" in ft.report.render_html(result)
