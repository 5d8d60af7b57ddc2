"""Bring your own data and say what it costs: ``--data csv:FILE --label COLUMN`` (untrusted, parsed
defensively), ``--mean/--std`` stored in the classifier and recorded in the Result, import-path models
in the guard, audit and poison commands, and the estimated cost of a long attack before it starts."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import fortify as ft
from fortify.cli.main import main
from tests.byo_package import models

TABLE = "tests.byo_package.tables:mlp"
CNN = "tests.byo_package.models:tiny_cnn"


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A CSV of 100 rows: three features in [0, 1] and a label column of class names (no / yes)."""
    path = tmp_path_factory.mktemp("csv") / "rows.csv"
    g = torch.Generator().manual_seed(0)
    x = torch.rand(100, 3, generator=g)
    lines = ["age,amount,score,kind"]
    lines += [f"{a:.4f},{b:.4f},{c:.4f},{'yes' if a + b > 1 else 'no'}" for a, b, c in x.tolist()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(table, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    args = [
        "train",
        "--arch",
        TABLE,
        "--model-arg",
        "features=3",
        "--data",
        f"csv:{table}",
        "--label",
        "kind",
    ]
    args += ["--mean", "0.5", "--std", "0.25", "--epochs", "30", "--lr", "0.01", "--batch-size", "16"]
    assert main([*args, "--test-n", "8", "--threads", "1", "--quiet", "--out", str(out)]) == 0
    return out / "model.safetensors"


def _user_model(weights):
    return ["--model", TABLE, "--weights", str(weights), "--model-arg", "features=3"]


def test_a_csv_table_trains_and_evaluates_with_its_normalisation_recorded(table, trained, tmp_path):
    meta = ft.zoo.read_metadata(trained)
    assert (meta["mean"], meta["std"]) == ([0.5], [0.25])  # the normalisation travels with the model
    out = tmp_path / "r.json"
    data = ["--data", f"csv:{table}", "--label", "kind"]
    code = main(
        ["evaluate", *_user_model(trained), *data, "--eps", "0.05", "--threads", "1", "--out", str(out)]
    )
    result = ft.Result.load(str(out))
    assert code == 0 and result.n_samples == 20  # every fifth row is test
    assert result.dataset == f"csv:{table}?label=kind"
    assert (result.model["mean"], result.model["std"]) == ([0.5], [0.25])
    assert {s.key for s in result.slices if s.kind == "class"} == {"no", "yes"}
    assert result.clean_accuracy > 0.7
    attack = ["attack", *_user_model(trained), *data, "--attack", "pgd", "--eps", "0.05", "--threads", "1"]
    assert main(attack) == 0


def test_mean_and_std_go_into_a_model_that_has_none(tiny_cnn, tmp_path):
    clf, _, _ = tiny_cnn
    model = ft.zoo.save(clf, tmp_path / "m.safetensors", dataset="synthetic")
    out = tmp_path / "r.json"
    args = ["evaluate", "--model", str(model), "--data", "synthetic", "--n", "8", "--mean", "0.1"]
    assert main([*args, "--std", "2", "--threads", "1", "--quiet", "--out", str(out)]) == 0
    assert (ft.Result.load(str(out)).model["mean"], ft.Result.load(str(out)).model["std"]) == ([0.1], [2.0])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mean", "0.1"], "records its own mean [0.5]"),
        (["--mean", "0.5,0.5"], "has 2 values; csv:"),
        (["--std", "0"], "must be finite and > 0"),
        (["--mean", "x"], "comma-separated numbers"),
    ],
)
def test_a_normalisation_that_does_not_fit_is_one_line(table, trained, capsys, extra, message):
    args = ["evaluate", *_user_model(trained), "--data", f"csv:{table}", "--label", "kind", *extra]
    assert main([*args, "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    ("text", "label", "message"),
    [
        ("a,b,kind\n0.1,0.2,x\n0.1,zz,y\n", "kind", "row 3, column 'b': 'zz' is not a number"),
        ("a,b,kind\n0.1,7,x\n", "kind", "row 2, column 'b': 7 is outside [0, 1]"),
        ("a,b,kind\n0.1,0.2\n", "kind", "row 2: 2 cells, the header has 3"),
        ("a,b,kind\n0.1,0.2,x\n", None, "no label column 'label' (name it with --label COLUMN)"),
        ("a,a,kind\n0.1,0.2,x\n", "kind", "header names column 'a' twice"),
        ("a,b,kind\n0.1,inf,x\n", "kind", "column 'b': inf is outside [0, 1]"),
        ("", "kind", "the file is empty"),
    ],
)
def test_a_bad_csv_is_refused_naming_the_row_and_column(tmp_path, capsys, text, label, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    args = ["evaluate", "--model", CNN, "--data", f"csv:{path}", *(["--label", label] if label else [])]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_a_csv_larger_than_the_limit_is_not_read(tmp_path, monkeypatch):
    from fortify.data import tables

    path = tmp_path / "big.csv"
    path.write_text("a,label\n" + "0.5,1\n" * 100)
    monkeypatch.setattr(tables, "MAX_CSV_BYTES", 64)
    with pytest.raises(ft.FortifyError, match="larger than 64 bytes"):
        ft.data.load(f"csv:{path}")


def test_whole_number_labels_are_class_ids(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("f,label\n" + "".join(f"0.{i},{i % 3}\n" for i in range(10)))
    info = ft.data.info(f"csv:{path}")
    assert (info.num_classes, info.shape, info.classes) == (3, (1,), None)


def test_label_goes_with_csv_data_only(capsys):
    assert main(["evaluate", "--model", CNN, "--data", "synthetic", "--label", "kind"]) == 2
    assert "--label names the label column of --data csv:FILE" in capsys.readouterr().err


@pytest.fixture(scope="module")
def cnn_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "w.safetensors"
    save_file(models.tiny_cnn(width=3).state_dict(), str(path))
    return path


def test_guard_build_takes_the_users_model_and_loading_the_bundle_needs_trust(cnn_weights, tmp_path, capsys):
    bundle = tmp_path / "guard"
    own = ["--model", CNN, "--weights", str(cnn_weights), "--model-arg", "width=3"]
    args = ["guard", "build", *own, "--calibrate", "synthetic", "--calibration-n", "64"]
    assert main([*args, "--threads", "1", "--out", str(bundle)]) == 0
    before = len(models.CALLS)
    assert main(["guard", "inspect", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert f"importing {CNN}" in err and "--trust-code" in err and len(models.CALLS) == before
    assert main(["guard", "inspect", str(bundle), "--trust-code"]) == 0
    assert ft.Guard.load(str(bundle), trust_code=True).models[0].metadata["factory"] == CNN


def test_guard_build_pairs_weights_with_import_paths(cnn_weights, tmp_path, capsys):
    args = ["guard", "build", "--model", CNN, "--calibrate", "synthetic", "--out", str(tmp_path / "g")]
    assert main(args) == 2
    assert "one --weights per --model pkg.module:factory" in capsys.readouterr().err


def test_audit_and_poison_commands_take_the_users_model(cnn_weights, tmp_path):
    own = ["--model", CNN, "--weights", str(cnn_weights), "--model-arg", "width=3", "--data", "synthetic"]
    membership = ["audit", "membership", *own, "--members-n", "64", "--n", "10", "--threads", "1"]
    assert main([*membership, "--out", str(tmp_path / "m.json")]) == 0
    assert ft.Result.load(str(tmp_path / "m.json")).model["identity"]["architecture"] == CNN
    poisoned = tmp_path / "p.safetensors"
    assert main(["poison", "make", "--data", "synthetic", "--n-train", "64", "--out", str(poisoned)]) == 0
    inspect = ["poison", "inspect", *own, "--poisoned", str(poisoned), "--threads", "1"]
    assert main([*inspect, "--out", str(tmp_path / "i.json")]) == 0
    assert "flagged" in json.loads((tmp_path / "i.json").read_text())


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["attack", "--attack", "square", "--steps", "300"], True),
        (["attack", "--attack", "square", "--steps", "300", "--quiet"], False),
        (["attack", "--attack", "fgsm"], False),  # one step: nothing to estimate
        (["evaluate", "--suite", "standard"], True),
    ],
)
def test_a_long_attack_says_its_estimated_cost_before_it_starts(tiny_cnn, tmp_path, capsys, args, shown):
    clf, _, _ = tiny_cnn
    model = ft.zoo.save(clf, tmp_path / "m.safetensors", dataset="synthetic")
    command = [args[0], "--model", str(model), "--data", "synthetic", "--n", "8", "--threads", "1", *args[1:]]
    assert main(command) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("estimated cost: ~")]
    assert len(lines) == (1 if shown else 0), err
    if shown:
        assert "model passes" in lines[0] and "for 8 samples" in lines[0]
