"""`fortify train --method noise --sigma` and `fortify certify` end to end on the synthetic set."""

from __future__ import annotations

import pytest

import fortify as ft
from fortify.cli.main import main


@pytest.fixture(scope="module")
def noise_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("noise")
    argv = [
        "train",
        "--data",
        "synthetic",
        "--arch",
        "cnn-tiny",
        "--method",
        "noise",
        "--sigma",
        "0.5",
        "--epochs",
        "3",
        "--lr",
        "0.003",
        "--test-n",
        "20",
        "--out",
        str(out),
        "--threads",
        "1",
    ]
    assert main(argv) == 0
    return out / "model.safetensors"


def test_train_records_the_noise_method_and_sigma(noise_model):
    training = ft.zoo.read_metadata(noise_model)["training"]
    assert training["method"] == "noise" and training["options"] == {"sigma": 0.5}


def test_certify_prints_the_curve_and_writes_a_certification_result(noise_model, tmp_path, capsys):
    out = tmp_path / "cert.json"
    argv = [
        "certify",
        "--model",
        str(noise_model),
        "--data",
        "synthetic",
        "--sigma",
        "0.5",
        "--n",
        "200",
        "--n0",
        "20",
        "--alpha",
        "0.01",
        "--n-samples",
        "10",
        "--radii",
        "0,0.5,1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "certified accuracy" in printed and "abstained on" in printed
    section = ft.Result.load(str(out)).sections["certification"]
    assert section["radii"] == [0.0, 0.5, 1.0] and len(section["samples"]) == 10
    assert section["certified_accuracy"][0] >= 0.8


@pytest.mark.parametrize(
    "extra", [["--sigma", "0"], ["--alpha", "1.5"], ["--radii", "0,a"], ["--radii", "-1"], ["--n0", "0"]]
)
def test_certify_bad_options_exit_with_code_2(noise_model, extra):
    argv = ["certify", "--model", str(noise_model), "--data", "synthetic", "--n", "10", "--n-samples", "2"]
    assert main(argv + extra) == 2
