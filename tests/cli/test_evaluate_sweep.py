"""`fortify sweep` and `fortify evaluate --suite`: the evaluation engine reached from the command line."""

from __future__ import annotations

import json

import pytest

import fortify as ft
from fortify.cli.common import parse_numbers
from fortify.cli.main import main


@pytest.fixture(scope="module")
def model_file(tiny_cnn, tmp_path_factory):
    clf, _, _ = tiny_cnn
    return ft.zoo.save(clf, tmp_path_factory.mktemp("m") / "tiny.safetensors", dataset="synthetic")


def test_sweep_writes_a_curve(model_file, tmp_path, capsys):
    out = tmp_path / "sweep.json"
    args = [
        "sweep",
        "--model",
        str(model_file),
        "--data",
        "synthetic",
        "--n",
        "12",
        "--eps",
        "0.1,0.3",
        "--suite",
        "quick",
        "--no-refine",
        "--out",
        str(out),
        "--threads",
        "1",
    ]
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert data["sweep"]["epsilons"] == [0.1, 0.3] and data["sweep"]["method"] == "min-norm"
    assert data["schema_version"] == ft.result.SCHEMA_VERSION
    assert "robust accuracy" in capsys.readouterr().out


def test_sweep_refuses_unsorted_or_malformed_epsilons(model_file, capsys):
    base = ["sweep", "--model", str(model_file), "--data", "synthetic", "--n", "4"]
    assert main([*base, "--eps", "0.3,0.1"]) == 2
    assert "increasing" in capsys.readouterr().err
    assert main([*base, "--eps", "0.1,abc"]) == 2
    assert parse_numbers("0.01, 0.1", "--eps") == [0.01, 0.1]


def test_evaluate_takes_the_standard_suite(model_file, tmp_path):
    out = tmp_path / "eval.json"
    args = [
        "evaluate",
        "--model",
        str(model_file),
        "--data",
        "synthetic",
        "--n",
        "6",
        "--eps",
        "0.3",
        "--suite",
        "standard",
        "--out",
        str(out),
        "--threads",
        "1",
    ]
    assert main(args) == 0
    result = ft.Result.load(str(out))
    assert result.suite == "standard" and [r.name for r in result.per_attack][0] == "apgd-ce"


def test_the_cli_names_model_findings_apart_from_unreliable_checks_and_smoke_tests(capsys):
    from fortify.cli.render import print_diagnostics
    from fortify.result import Diagnostic
    from tests.report.factories import make_result

    masking = Diagnostic(
        name="gradient_masking", passed=False, evidence="zero input gradients", scope="model"
    )
    result = make_result(suite="quick", smoke_test=True)
    result = result.model_copy(update={"diagnostics": [masking]})
    print_diagnostics(result)
    err = capsys.readouterr().err
    assert "MODEL FINDING: gradient_masking" in err and "UNRELIABLE" not in err
    assert "smoke test" in err and "--suite standard" in err
