"""Bring your own model: every model-taking command accepts ``--model pkg.module:factory --weights W``
(the import path typed is the consent to run that code) and ONNX files."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import pytest
import torch
from safetensors.torch import save_file

import fortify as ft
from fortify.cli.main import main
from tests.byo_package import models

FACTORY = "tests.byo_package.models:tiny_cnn"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A plain safetensors state dict, as ``safetensors.torch.save_file`` writes it (no fortify metadata)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "weights.safetensors"
    save_file(models.tiny_cnn(width=3).state_dict(), str(path))
    return path


def _evaluate(model, tmp_path, *extra):
    out = tmp_path / "r.json"
    args = ["evaluate", "--model", str(model), *extra, "--data", "synthetic", "--n", "8", "--eps", "0.05"]
    return main([*args, "--suite", "quick", "--threads", "1", "--out", str(out)]), out


def test_evaluate_builds_the_users_model_from_its_import_path(weights, tmp_path):
    before = len(models.CALLS)
    code, out = _evaluate(FACTORY, tmp_path, "--weights", str(weights), "--model-arg", "width=3")
    assert code == 0
    assert models.CALLS[before:] == [{"width": 3, "num_classes": 4}]
    result = ft.Result.load(str(out))
    assert result.n_samples == 8 and 0.0 <= result.robust_accuracy <= result.clean_accuracy
    identity = result.model["identity"]  # which model: the import path typed and the weights read
    assert identity["architecture"] == FACTORY and identity["source"] == "factory"
    assert identity["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert identity["parameters"] == sum(p.numel() for p in models.tiny_cnn(width=3).parameters())


def test_attack_and_sweep_take_the_same_options(weights, tmp_path):
    args = ["--model", FACTORY, "--weights", str(weights), "--model-arg", "width=3", "--data", "synthetic"]
    out = tmp_path / "s.json"
    sweep = [
        "sweep",
        *args,
        "--n",
        "6",
        "--eps",
        "0.05,0.1",
        "--no-refine",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    assert main(sweep) == 0 and out.is_file()
    attack = ["attack", *args, "--n", "6", "--eps", "0.05", "--threads", "1"]
    assert main(attack) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "needs --weights"),
        (["--weights", "WEIGHTS", "--model-arg", "width=5"], "do not load into"),
        (["--weights", "WEIGHTS", "--model-arg", "width=3", "--model-arg", "num_classes=3"], "do not load"),
        (["--weights", "WEIGHTS", "--model-arg", "width"], "name=value"),
        (["--weights", "missing.safetensors"], "does not exist"),
        (["--weights", "w.pt"], "pickle"),
    ],
)
def test_user_model_errors_are_one_line(weights, tmp_path, capsys, extra, message):
    (tmp_path / "w.pt").write_bytes(b"\x80\x04")
    extra = [
        str(weights) if e == "WEIGHTS" else str(tmp_path / e) if e.endswith((".pt", "s.safetensors")) else e
        for e in extra
    ]
    code, _ = _evaluate(FACTORY, tmp_path, *extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_wrong_output_shape_for_the_dataset_is_named(tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "ten.safetensors"
    save_file(models.tiny_cnn(width=3, num_classes=10).state_dict(), str(path))
    code, _ = _evaluate(
        FACTORY, tmp_path, "--weights", str(path), "--model-arg", "width=3", "--model-arg", "num_classes=10"
    )
    err = capsys.readouterr().err
    assert code == 2 and "expected (1, 4) logits" in err


def test_a_fortify_file_takes_no_weights(tiny_cnn, weights, tmp_path, capsys):
    clf, _, _ = tiny_cnn
    model = ft.zoo.save(clf, tmp_path / "m.safetensors", dataset="synthetic")
    code, _ = _evaluate(model, tmp_path, "--weights", str(weights))
    assert code == 2 and "go with --model pkg.module:factory" in capsys.readouterr().err


def test_a_factory_file_needs_its_import_path_typed(tmp_path, capsys):
    torch.manual_seed(0)
    saved = ft.zoo.save(
        ft.Classifier(models.tiny_cnn(width=3), num_classes=4),
        tmp_path / "own.safetensors",
        factory=FACTORY,
        factory_kwargs={"width": 3},
        input_shape=(1, 8, 8),
        num_classes=4,
    )
    before = len(models.CALLS)
    code, _ = _evaluate(saved, tmp_path)
    assert code == 2 and f"--model {FACTORY}" in capsys.readouterr().err
    assert len(models.CALLS) == before  # the file alone imported nothing
    code, out = _evaluate(FACTORY, tmp_path, "--weights", str(saved), "--model-arg", "width=3")
    assert code == 0 and json.loads(out.read_text())["n_samples"] == 8


def test_an_onnx_file_is_evaluated_white_box(tiny_cnn, tmp_path):
    pytest.importorskip("onnx")
    if importlib.util.find_spec("onnx2torch") is None:
        pytest.skip("onnx2torch is not installed (pip install 'fortify[onnx]')")
    from tests.model.test_blackbox import _export

    clf, x, _ = tiny_cnn
    path = tmp_path / "tiny.onnx"
    _export(clf.module, x[:2], str(path))
    code, out = _evaluate(path, tmp_path)
    result = ft.Result.load(str(out))
    assert code == 0 and result.n_samples == 8
    identity = result.model["identity"]
    assert identity["source"] == "onnx" and identity["architecture"] == "onnx:tiny.onnx"
    assert identity["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_train_builds_fine_tunes_and_saves_the_users_model(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--arch", FACTORY, "--model-arg", "width=3", "--data", "synthetic", "--n", "64"]
    assert main([*args, "--epochs", "1", "--test-n", "8", "--threads", "1", "--out", str(out)]) == 0
    saved = out / "model.safetensors"
    meta = ft.zoo.read_metadata(saved)
    assert (meta["factory"], meta["factory_kwargs"], meta["num_classes"]) == (FACTORY, {"width": 3}, 4)
    assert ft.zoo.load(saved, trust_code=True).num_classes == 4
    tuned = tmp_path / "tuned"
    again = ["train", "--init", FACTORY, "--weights", str(saved), "--model-arg", "width=3"]
    again += ["--data", "synthetic", "--n", "32", "--epochs", "1", "--test-n", "8", "--threads", "1"]
    assert main([*again, "--out", str(tuned)]) == 0
    assert ft.zoo.read_metadata(tuned / "model.safetensors")["finetuned_from"] == FACTORY
