"""`fortify guard build / inspect` and `fortify evaluate --guard`: a bundle from the CLI, end to end."""

from __future__ import annotations

import json

import pytest
import torch

import fortify as ft
from fortify.cli.main import main


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("guard-cli")
    x, y = ft.data.load("digits", "train")
    torch.manual_seed(0)
    clf = ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 10), num_classes=10)
    ft.train(clf, (x, y), epochs=8, lr=3e-3, batch_size=64, seed=0, progress=False)
    path = folder / "model.safetensors"
    ft.zoo.save(clf, path, dataset="digits")
    return path


@pytest.fixture(scope="module")
def bundle(model_file):
    out = model_file.parent / "bundle"
    args = ["guard", "build", "--model", str(model_file), "--calibrate", "digits", "--calibration-n", "200"]
    code = main(
        [
            *args,
            "--detectors",
            "squeeze,mahalanobis,confidence",
            "--preprocess",
            "median:2",
            "--out",
            str(out),
            "--threads",
            "1",
        ]
    )
    assert code == 0
    return out


def test_build_writes_a_verified_bundle_with_its_calibration_source(bundle, capsys):
    assert main(["guard", "inspect", str(bundle), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    cal = info["guard"]["calibration"]
    assert cal["source"] == {"dataset": "digits", "split": "test", "start": cal["source"]["start"], "n": 200}
    assert [d["key"] for d in info["guard"]["detectors"]] == ["squeeze", "mahalanobis", "confidence"]
    assert set(info["manifest"]["files"]) >= {"guard.json", "models/model-0.safetensors"}


def test_evaluate_guard_writes_a_result_with_the_guard_section(bundle, tmp_path):
    out = tmp_path / "guard.json"
    code = main(
        [
            "evaluate",
            "--guard",
            str(bundle),
            "--data",
            "digits",
            "--n",
            "40",
            "--eps",
            "0.2",
            "--suite",
            "quick",
            "--out",
            str(out),
            "--threads",
            "1",
        ]
    )
    assert code == 0
    result = ft.Result.load(str(out))
    section = result.sections["guard"]
    assert set(section["naive"]) == {"fgsm", "pgd", "square"}, "C&W is L2 only"
    assert result.detector["in_objective"] and result.model["guard_bundle"] == str(bundle)
    assert section["latency_ms"]["single_p50"] > 0


def test_evaluating_on_calibration_images_is_refused(bundle, capsys):
    code = main(["evaluate", "--guard", str(bundle), "--data", "digits", "--n", "10000", "--threads", "1"])
    assert code == 2
    assert "would score calibration images" in capsys.readouterr().err


def test_a_tampered_bundle_is_refused_in_one_line(bundle, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    spec = copy / "guard.json"
    spec.write_text(spec.read_text().replace('"confidence_threshold": 0.0', '"confidence_threshold": 0.5'))
    assert main(["guard", "inspect", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "does not match its SHA-256" in err and len(err.strip().splitlines()) <= 2


def test_bad_options_are_one_line_errors(model_file, tmp_path, capsys):
    for extra, message in [
        (["--detectors", "squeeze,bogus"], "unknown detector"),
        (["--preprocess", "blur:3"], "bad preprocessing step"),
    ]:
        args = [
            "guard",
            "build",
            "--model",
            str(model_file),
            "--calibrate",
            "digits",
            "--out",
            str(tmp_path / "b"),
        ]
        assert main([*args, *extra]) == 2
        assert message in capsys.readouterr().err
    assert main(["evaluate", "--data", "digits"]) == 2
    assert "exactly one of --model and --guard" in capsys.readouterr().err
