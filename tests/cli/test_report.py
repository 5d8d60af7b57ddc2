"""`fortify report`, `fortify evaluate --report/--mlflow`: files written; bad input is one line, exit 2."""

from __future__ import annotations

import json

import pytest

import fortify as ft
from fortify.cli.main import main
from tests.report.factories import make_result, seed_mlflow_store


def test_report_command_renders_several_results_as_one_page(tmp_path, capsys):
    paths = []
    for eps, robust in ((0.05, 0.7), (0.1, 0.4)):
        path = tmp_path / f"eval-{eps}.json"
        make_result(eps=eps, robust=robust).save(str(path))
        paths.append(str(path))
    out = tmp_path / "out" / "report.html"
    assert main(["report", *paths, "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "linf, 2 evaluations" in page  # the curve
    assert "lowest robust accuracy (worst case; linf 0.1, eval-0.1.json)" in page  # named by file
    assert str(out) in capsys.readouterr().out


def test_report_command_draws_the_gallery_the_evaluation_kept(tiny_cnn, tmp_path, monkeypatch):
    clf, x, y = tiny_cnn
    result = ft.evaluate(clf, x[:12], y[:12], ft.Linf(0.3))
    result.save(str(tmp_path / "eval.json"))
    del result
    monkeypatch.setattr("fortify.cli.report_cmd.gallery_adversarials", _no_attack)
    assert main(["report", str(tmp_path / "eval.json"), "-o", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3 * 8 and "carries no gallery" not in page


def _no_attack(*args: object, **kwargs: object) -> None:
    raise AssertionError("the report attacked again although the result keeps its gallery")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read result file"),
        ("{not json", "invalid JSON"),
        ("[1, 2]", "schema_version"),
        ('{"schema_version": "9.0"}', "schema version '9.0' is not supported"),
        ('{"schema_version": "1.0", "n_samples": "many", "colour": "red"}', "n_samples"),
        ('{"schema_version": "1.0", "colour": "red"}', "colour: Extra inputs are not permitted"),
    ],
)
def test_report_refuses_bad_files_with_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "result.json"
    if content is not None:
        path.write_text(content)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_evaluate_writes_a_report_with_a_gallery_and_logs_to_mlflow(tiny_cnn, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    clf, _, _ = tiny_cnn
    model = ft.zoo.save(clf, tmp_path / "model.safetensors", dataset="synthetic")
    monkeypatch.setattr("fortify.cli.report_cmd.gallery_adversarials", _no_attack)
    monkeypatch.chdir(tmp_path)
    run, store = tmp_path / "run", tmp_path / "runs" / "mlflow"  # the one default store
    seed_mlflow_store(store)
    code = main(
        [
            "evaluate",
            "--model",
            str(model),
            "--data",
            "synthetic",
            "--eps",
            "0.3",
            "--n",
            "12",
            "--out",
            str(run / "eval.json"),
            "--report",
            str(run / "report.html"),
            "--mlflow",
            "--threads",
            "1",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    page = (run / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3 * 8  # clean, adversarial, perturbation for 8 samples
    assert len(json.loads((run / "eval.json").read_text())["gallery"]) == 8
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("fortify").experiment_id])
    assert len(runs) == 1 and runs[0].data.params["threat.eps"] == "0.3"
    reports = list((store / "mlartifacts").rglob("report.html"))
    assert len(reports) == 1 and reports[0].read_text(encoding="utf-8") == page
    assert json.loads(next((store / "mlartifacts").rglob("result.json")).read_text())["n_samples"] == 12
