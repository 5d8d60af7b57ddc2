"""The `fortify` command: train and evaluate end to end on a small shipped dataset; exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fortify.cli.main import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(
        [
            "train",
            "--data",
            "digits",
            "--arch",
            "cnn-tiny",
            "--epochs",
            "3",
            "--out",
            str(out),
            "--threads",
            "1",
        ]
    )
    assert code == 0
    return out


def test_train_writes_model_and_training_result(trained):
    assert (trained / "model.safetensors").is_file()
    record = json.loads((trained / "train.json").read_text())
    assert record["kind"] == "training" and record["clean_accuracy"] > 0.7
    assert len(record["sections"]["training"]["epochs"]) == 3


def test_evaluate_writes_a_result(trained, tmp_path):
    out = tmp_path / "eval.json"
    code = main(
        [
            "evaluate",
            "--model",
            str(trained / "model.safetensors"),
            "--data",
            "digits",
            "--eps",
            "0.1",
            "--norm",
            "linf",
            "--n",
            "50",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["n_samples"] == 50 and result["threat"] == {"norm": "linf", "eps": 0.1}
    assert result["robust_accuracy"] <= result["clean_accuracy"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--model", "missing.safetensors", "--data", "digits"], "does not exist"),
        (["evaluate", "--model", "MODEL", "--data", "digits", "--eps", "-1"], "eps"),
        (["evaluate", "--model", "MODEL", "--data", "digits", "--norm", "l7"], "unknown norm"),
        (["evaluate", "--model", "MODEL", "--data", "imagenet"], "unknown dataset"),
        (["evaluate", "--model", "MODEL", "--data", "digits", "--suite", "nope"], "unknown suite"),
        (["train", "--data", "digits", "--arch", "nope", "--out", "OUT"], "unknown architecture"),
        (["evaluate", "--model", "MODEL", "--data", "digits", "--device", "cuda:7"], "device"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(trained, tmp_path, capsys, args, message):
    args = [
        a.replace("MODEL", str(trained / "model.safetensors")).replace("OUT", str(tmp_path)) for a in args
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3  # one message, possibly soft-wrapped by the terminal width


def test_a_real_process_gets_exit_code_2_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fortify.cli.main", "evaluate", "--model", str(tmp_path / "x.safetensors")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_unknown_option_is_a_usage_error():
    assert main(["evaluate", "--no-such-flag"]) == 2


def test_pickle_model_is_refused_from_the_cli(tmp_path):
    import torch

    bad = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(1)}, bad)
    assert main(["evaluate", "--model", str(bad), "--data", "digits"]) == 2


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("train", "evaluate", "demo", "data"):
        assert command in out


def test_attacks_lists_every_catalogued_attack_with_its_paper(capsys):
    from fortify.attacks.catalog import CATALOG

    assert main(["attacks"]) == 0
    out = capsys.readouterr().out
    for name in CATALOG:
        assert name in out
    assert "Madry" in out and "Croce" in out


@pytest.mark.parametrize(
    ("attack", "norm", "eps"),
    [("apgd-ce", "linf", "0.2"), ("deepfool", "l2", "2.0"), ("square", "linf", "0.2")],
)
def test_attack_saves_the_adversarial_batch_inside_the_ball(trained, tmp_path, attack, norm, eps):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    import fortify as ft

    out = tmp_path / "adv.safetensors"
    code = main(
        [
            "attack",
            "--model",
            str(trained / "model.safetensors"),
            "--data",
            "digits",
            "--attack",
            attack,
            "--norm",
            norm,
            "--eps",
            eps,
            "--n",
            "40",
            "--steps",
            "20",
            "--save",
            str(out),
        ]
    )
    assert code == 0
    saved = load_file(str(out))
    threat = ft.make_threat(norm, float(eps))
    assert bool(threat.contains(saved["x_adv"], saved["x"]).all())
    with safe_open(str(out), framework="pt") as handle:
        summary = json.loads(handle.metadata()["fortify"])
    clf = ft.zoo.load(trained / "model.safetensors")
    assert torch.equal(clf.predict(saved["x_adv"]), saved["adv_pred"])
    fooled = (saved["clean_pred"] == saved["y"]) & (saved["adv_pred"] != saved["y"])
    assert summary["success_rate"] == pytest.approx(
        float(fooled.sum()) / float((saved["clean_pred"] == saved["y"]).sum())
    )
    result = ft.Result.load(str(out.with_suffix(".json")))
    assert result.kind == "attack" and result.per_attack[0].n_succeeded == int(fooled.sum())
    assert result.attack_success_rate == summary["success_rate"]
    assert result.threat is not None and result.threat.norm == norm


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--attack", "nope"], "unknown attack"),
        (["--attack", "pgd", "--eps", "8"], "eps/255"),
        (["--attack", "cw", "--norm", "linf"], "supports l2"),
        (["--attack", "pgd", "--data", "fashion-mnist"], "takes inputs (1, 8, 8)"),
        (["--attack", "fgsm", "--steps", "5"], "no iteration"),
        (["--attack", "pgd", "--target", "first"], "--target takes"),
        (["--attack", "pgd", "--target", "12"], "outside [0, 9]"),
        (["--attack", "deepfool", "--target", "next"], "no targeted variant"),
    ],
)
def test_attack_bad_input_is_one_line(trained, capsys, args, message):
    assert main(["attack", "--model", str(trained / "model.safetensors"), "--data", "digits", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("target", ["next", "random", "3"])
def test_targeted_attack_from_the_cli_reaches_its_targets(trained, tmp_path, target):
    from safetensors import safe_open
    from safetensors.torch import load_file

    out = tmp_path / "adv.safetensors"
    args = ["attack", "--model", str(trained / "model.safetensors"), "--data", "digits", "--attack", "pgd"]
    args += ["--eps", "0.3", "--n", "40", "--steps", "20", "--target", target, "--save", str(out)]
    assert main(args) == 0
    saved = load_file(str(out))
    with safe_open(str(out), framework="pt") as handle:
        summary = json.loads(handle.metadata()["fortify"])
    assert summary["target"] == target
    assert not bool((saved["y"] == 3).any()) if target == "3" else saved["y"].shape == (40,)
    hit = saved["adv_pred"] == 3 if target == "3" else saved["adv_pred"] != saved["y"]
    assert float(hit.float().mean()) > 0.5
