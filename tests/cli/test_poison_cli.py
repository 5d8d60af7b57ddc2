"""`fortify poison make / inspect / audit` on the synthetic set: files, one-line errors, an audit Result."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

import fortify as ft
from fortify.cli.main import main


def test_make_then_inspect_scores_the_flagged_set(tmp_path, capsys):
    poisoned = tmp_path / "p.safetensors"
    args = [
        "poison",
        "make",
        "--data",
        "synthetic",
        "--n-train",
        "400",
        "--rate",
        "0.1",
        "--out",
        str(poisoned),
    ]
    assert main(args) == 0
    tensors = load_file(str(poisoned))
    assert tensors["poisoned"].numel() == 40 and tensors["x"].shape == (400, 1, 8, 8)
    torch.manual_seed(0)
    clf = ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), num_classes=4)
    ft.train(clf, (tensors["x"], tensors["y"]), epochs=6, lr=3e-3, batch_size=64, seed=0, progress=False)
    model = tmp_path / "m.safetensors"
    ft.zoo.save(clf, model, dataset="synthetic")
    flagged = tmp_path / "flagged.json"
    code = main(
        [
            "poison",
            "inspect",
            "--model",
            str(model),
            "--poisoned",
            str(poisoned),
            "--data",
            "synthetic",
            "--expected-rate",
            "0.1",
            "--out",
            str(flagged),
        ]
    )
    assert code == 0
    record = json.loads(flagged.read_text())
    assert record["method"] == "spectral" and 0 <= record["precision"] <= 1 and len(record["flagged"]) > 0
    # the per-class bound: 30% of the target class, 10% elsewhere (flag 1.5 times each)
    inspect = ["poison", "inspect", "--model", str(model), "--poisoned", str(poisoned), "--data", "synthetic"]
    per_class = tmp_path / "per-class.json"
    rates = ["--expected-rate", "0.1", "--class-rate", "0=0.3", "--out", str(per_class)]
    assert main([*inspect, *rates]) == 0
    again = json.loads(per_class.read_text())
    labels = tensors["y"][torch.tensor(again["flagged"])]
    sizes = torch.bincount(tensors["y"], minlength=4)
    expected = [round(1.5 * (0.3 if c == 0 else 0.1) * int(sizes[c])) for c in range(4)]
    assert torch.bincount(labels, minlength=4).tolist() == expected and again["class_rates"] == {"0": 0.3}
    assert again["recall"] >= record["recall"]
    for bad in ("0=1.5", "zero=0.2", "9=0.2"):
        assert main([*inspect, "--class-rate", bad, "--out", str(tmp_path / "bad.json")]) == 2
        assert "class" in capsys.readouterr().err.lower()
    assert not (tmp_path / "bad.json").exists()


def test_audit_writes_an_audit_result(tmp_path):
    out = tmp_path / "audit.json"
    code = main(
        [
            "poison",
            "audit",
            "--data",
            "synthetic",
            "--arch",
            "cnn-tiny",
            "--n-train",
            "400",
            "--n-test",
            "100",
            "--epochs",
            "3",
            "--rate",
            "0.1",
            "--inspections",
            "spectral",
            "--out",
            str(out),
            "--threads",
            "1",
        ]
    )
    assert code == 0
    result = ft.Result.load(str(out))
    section = result.sections["poisoning"]
    assert (
        result.kind == "audit" and result.attack_success_rate == section["undefended"]["attack_success_rate"]
    )
    assert set(section["inspections"]["spectral"]) >= {"precision", "recall", "after_filter", "random_filter"}
    page = ft.report.render_html(result)
    assert 'id="poisoning"' in page and "perfect filter" in page and "random filter" in page


def test_bad_poisoning_options_are_one_line_errors(tmp_path, capsys):
    base = [
        "poison",
        "make",
        "--data",
        "synthetic",
        "--n-train",
        "100",
        "--out",
        str(tmp_path / "x.safetensors"),
    ]
    for extra, message in [
        (["--rate", "1.5"], "rate must lie in"),
        (["--size", "20"], "does not fit"),
        (["--target", "9"], "out of range"),
        (["--attack", "sleeper"], "--attack must be"),
    ]:
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


def test_train_on_a_poisoned_set_without_the_flagged_samples(tmp_path, capsys):
    poisoned = tmp_path / "p.safetensors"
    assert (
        main(
            [
                "poison",
                "make",
                "--data",
                "synthetic",
                "--n-train",
                "300",
                "--rate",
                "0.1",
                "--out",
                str(poisoned),
            ]
        )
        == 0
    )
    flagged = tmp_path / "flagged.json"
    flagged.write_text(json.dumps({"flagged": list(range(0, 300, 3))}))
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        "synthetic",
        "--arch",
        "cnn-tiny",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--threads",
        "1",
    ]
    assert main([*args, "--poisoned", str(poisoned), "--exclude", str(flagged)]) == 0
    meta = ft.zoo.read_metadata(out / "model.safetensors")
    assert meta["data_fingerprint"]["n_train"] == 200 and meta["data_fingerprint"]["excluded"] == str(flagged)
    flagged.write_text(json.dumps({"flagged": [999]}))
    assert main([*args, "--poisoned", str(poisoned), "--exclude", str(flagged)]) == 2
    assert "must list indices 0..299" in capsys.readouterr().err
