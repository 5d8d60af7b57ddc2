"""`fortify report`: one self-contained HTML page from one or more Result JSON files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from torch import Tensor

from fortify import data as datasets
from fortify.cli.app import app
from fortify.cli.common import check_outputs
from fortify.cli.gate_cmd import read_result
from fortify.cli.render import console
from fortify.evaluation.replay import gallery_adversarials
from fortify.model import Classifier
from fortify.report import mlflow as track
from fortify.report import write_html
from fortify.report.images import is_image_batch
from fortify.result import Result
from fortify.result.gate_record import GateRecord
from fortify.threat import Threat
from fortify.types import FortifyError


def class_names_for(dataset: str | None) -> Sequence[str] | None:
    """Class names of a known dataset, for labelling the report; ``None`` for unknown ones."""
    if dataset is None or dataset not in datasets.DATASETS:
        return None
    return datasets.info(dataset).classes


@app.command("report")
def report_command(
    results: Annotated[
        list[Path], typer.Argument(help="Result JSON file(s); several (e.g. one per eps) form a curve")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write")] = Path("report.html"),
    title: Annotated[str | None, typer.Option(help="page title (default: model, data and threat)")] = None,
    gate: Annotated[
        Path | None,
        typer.Option(
            help="the verdict `fortify gate --out FILE` wrote for exactly these Result files: shown in "
            "the summary (refused if it gated other files)"
        ),
    ] = None,
) -> None:
    """Render Result JSON as an HTML report: summary (the most pessimistic of several, with a table of
    all), curve, attacks, classes, diagnostics, certification, model identity, environment."""
    check_outputs(out=out)
    read = [read_result(path) for path in results]
    verdict = GateRecord.load(gate) if gate is not None else None
    if verdict is not None and not verdict.covers([f.sha256 for _, f in read]):
        gated = ", ".join(f.path for f in verdict.results)
        raise FortifyError(
            f"--gate {gate} is the verdict on other Result files ({gated[:300]}); report the files it gated"
        )
    loaded = [r for r, _ in read]
    labels = [path.name for path in results] if len(results) > 1 else None
    if labels is not None and len(set(labels)) < len(labels):
        labels = [str(path) for path in results]
    page = write_html(
        loaded, out, class_names=class_names_for(loaded[0].dataset), title=title, labels=labels, gate=verdict
    )
    console.print(f"wrote {page}")


def publish(
    result: Result,
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    *,
    suite: str,
    seed: int,
    report: Path | None,
    mlflow: bool,
    out: Path | None,
) -> None:
    """After ``fortify evaluate``: write the HTML report (with a gallery for images) and/or log to MLflow.

    The gallery shows the adversarial examples kept in the result; only images too large to keep there
    are attacked again for it (see ``gallery_adversarials``).

    MLflow logs to the one store ``fortify train --mlflow`` uses too (``$MLFLOW_TRACKING_URI``, else
    ``runs/mlflow/mlflow.db`` under the current folder), so a model's runs sit side by side.
    """
    if report is not None:
        replay = result.gallery is None and is_image_batch(x)  # images too large to keep in the result
        x_adv = gallery_adversarials(clf, x, y, threat, result, suite, seed=seed) if replay else None
        write_html(
            result,
            report,
            x=x if x_adv is not None else None,
            x_adv=x_adv,
            bounds=clf.bounds,
            class_names=class_names_for(result.dataset),
        )
        console.print(f"wrote {report}")
    if mlflow:
        run_id = track.log(result, report=report if report is not None else True)
        console.print(f"logged MLflow run {run_id} to {track.store_uri()}")
