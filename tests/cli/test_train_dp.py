"""`fortify train --method dp`: the privacy budget spent reaches train.json, the model file, and every
Result about the model; DP options are checked with one-line errors."""

from __future__ import annotations

import pytest

import fortify as ft
from fortify.cli.main import main

pytest.importorskip("opacus")

DP = ["--method", "dp", "--epsilon", "3", "--delta", "1e-5", "--max-grad-norm", "1.0"]


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    out = tmp_path_factory.mktemp("dp")
    args = ["train", "--data", "digits", "--arch", "mlp", "--epochs", "2", "--n", "400", *DP]
    assert main([*args, "--out", str(out), "--threads", "1", "--progress", "none"]) == 0
    return out


def _checked(budget):
    assert 0 < budget["epsilon"] <= 3.0 and budget["delta"] == 1e-5 and budget["accountant"] == "rdp"
    assert budget["max_grad_norm"] == 1.0 and budget["steps"] == 2 * 4 and budget["noise_multiplier"] > 0


def test_the_budget_is_in_train_json_and_the_model_file(private):
    result = ft.Result.load(str(private / "train.json"))
    _checked(result.sections["training"]["privacy"])
    assert result.sections["training"]["options"]["epsilon"] == 3.0
    _checked(result.model["identity"]["training_run"]["privacy"])
    meta = ft.zoo.read_metadata(private / "model.safetensors")
    _checked(meta["training_run"]["privacy"])
    assert meta["training_run"]["privacy"] == result.sections["training"]["privacy"]


def test_every_result_about_the_model_carries_its_budget(private, tmp_path):
    model = str(private / "model.safetensors")
    out = tmp_path / "mi.json"
    assert (
        main(["audit", "membership", "--model", model, "--data", "digits", "--n", "100", "--out", str(out)])
        == 0
    )
    audit = ft.Result.load(str(out))
    _checked(audit.model["identity"]["training_run"]["privacy"])
    page = ft.report.render_html(audit)
    assert "differential privacy" in page and "-DP by the rdp accountant" in page


def test_lira_shadows_can_be_trained_as_the_dp_target_was(private, tmp_path):
    out = tmp_path / "lira.json"
    args = ["audit", "membership", "--model", str(private / "model.safetensors"), "--data", "digits"]
    lira = ["--attack", "lira", "--shadows", "2", "--shadows-like-target", "--n", "100"]
    assert main([*args, *lira, "--out", str(out)]) == 0
    section = ft.Result.load(str(out)).sections["membership"]
    assert section["attack"] == "lira-offline" and section["shadow_method"] == "dp"
    assert section["shadow_epochs"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "dp"], "--method dp needs --epsilon"),
        (["--epsilon", "3"], "--epsilon go with --method dp"),
        (["--method", "dp", "--epsilon", "0"], "epsilon must be a finite number > 0"),
        (["--method", "dp", "--epsilon", "3", "--delta", "2"], "delta must be a number in (0, 1)"),
        (["--method", "dp", "--epsilon", "3", "--accountant", "moments"], "accountant must be one of"),
        (["--method", "dp", "--epsilon", "3", "--base", "pgd"], "--method dp needs --eps"),
    ],
)
def test_bad_dp_options_are_one_line_errors(tmp_path, capsys, extra, message):
    args = ["train", "--data", "digits", "--arch", "mlp", "--n", "100", "--out", str(tmp_path), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3
