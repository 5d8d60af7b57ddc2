"""`fortify audit membership / inversion / extraction`: an audit Result per run, one-line errors."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file, save_file

import fortify as ft
from fortify.cli.main import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit")
    args = ["train", "--data", "digits", "--arch", "mlp", "--epochs", "10", "--n", "300", "--out", str(out)]
    assert main([*args, "--threads", "1"]) == 0
    return out / "model.safetensors"


def test_membership_audit_reads_the_training_size_from_the_model(trained, tmp_path):
    out = tmp_path / "mi.json"
    assert (
        main(
            [
                "audit",
                "membership",
                "--model",
                str(trained),
                "--data",
                "digits",
                "--n",
                "200",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = ft.Result.load(str(out))
    section = result.sections["membership"]
    assert result.kind == "audit" and section["n_members"] == 200 and 0 <= section["auc"] <= 1
    assert set(section["tpr_at_fpr"]) == {"0.001", "0.01"}


def test_extraction_audit_records_the_curve_and_the_hardening_cost(trained, tmp_path):
    out = tmp_path / "ex.json"
    code = main(
        [
            "audit",
            "extraction",
            "--model",
            str(trained),
            "--data",
            "digits",
            "--budgets",
            "50,300",
            "--arch",
            "mlp",
            "--epochs",
            "3",
            "--harden",
            "top1",
            "--n-test",
            "100",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    section = ft.Result.load(str(out)).sections["extraction"]
    assert section["budgets"] == [50, 300] and section["output"] == "labels" and section["label_cost"] == 0.0


def test_bad_audit_options_are_one_line_errors(trained, tmp_path, capsys):
    base = [
        "audit",
        "extraction",
        "--model",
        str(trained),
        "--data",
        "digits",
        "--out",
        str(tmp_path / "x.json"),
    ]
    for extra, message in [
        (["--harden", "blur"], "unknown output hardening"),
        (["--queries", "web"], "--queries"),
        (["--budgets", "0"], "--budgets must be positive integers"),
    ]:
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    assert (
        main(
            [
                "audit",
                "membership",
                "--model",
                str(trained),
                "--data",
                "digits",
                "--attack",
                "lira",
                "--members-n",
                "1437",
                "--out",
                str(tmp_path / "m.json"),
            ]
        )
        == 2
    )
    assert "beyond the model's own" in capsys.readouterr().err


def test_inversion_audit_writes_representatives_the_report_draws(trained, tmp_path):
    out = tmp_path / "inv.json"
    args = ["audit", "inversion", "--model", str(trained), "--data", "digits", "--classes", "0,7"]
    assert main([*args, "--steps", "60", "--n-reference", "500", "--out", str(out)]) == 0
    result = ft.Result.load(str(out))
    section = result.sections["inversion"]
    assert result.kind == "audit" and section["shape"] == [1, 8, 8] and section["n_reference"] == 500
    assert [row["label"] for row in section["classes"]] == [0, 7]
    assert all(len(row["cosine"]) == 10 and "image" in row for row in section["classes"])
    page = tmp_path / "inv.html"
    assert main(["report", str(out), "--out", str(page)]) == 0
    assert page.read_text().count('alt="inverted"') == 2


def test_bad_inversion_options_are_one_line_errors(trained, tmp_path, capsys):
    base = [
        "audit",
        "inversion",
        "--model",
        str(trained),
        "--data",
        "digits",
        "--out",
        str(tmp_path / "i.json"),
    ]
    for extra, message in [
        (["--classes", "10"], "--classes must be 'all' or integers in [0, 9]"),
        (["--classes", "a"], "--classes must be comma-separated numbers"),
        (["--start", "noise"], "start must be one of"),
    ]:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_shadows_like_target_needs_a_replayable_training_record(trained, tmp_path, capsys):
    args = ["audit", "membership", "--model", str(trained), "--data", "digits", "--attack", "lira"]
    out = tmp_path / "m.json"
    assert main([*args, "--shadows", "1", "--shadows-like-target", "--n", "50", "--out", str(out)]) == 0
    assert ft.Result.load(str(out)).sections["membership"]["shadow_method"] == "standard"
    meta = ft.zoo.read_metadata(trained)
    meta["training"]["config"]["lr"] = -1
    crafted = tmp_path / "crafted.safetensors"
    save_file(load_file(str(trained)), str(crafted), metadata={"fortify": json.dumps(meta)})
    bad = ["audit", "membership", "--model", str(crafted), "--data", "digits", "--attack", "lira"]
    assert main([*bad, "--shadows-like-target", "--n", "50", "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "--shadows-like-target" in err and "lr" in err and "Traceback" not in err
