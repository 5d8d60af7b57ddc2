"""`fortify audit extraction`: steal a model (a local file, or a served endpoint) through its outputs.

With ``--url`` the thief is a client of ``fortify serve``: queries go through the endpoint's auth, limits
and guard, and, when the key (``FORTIFY_API_KEY``) may read ``GET /alerts``, the monitor's PRADA alert is
watched after every ``--chunk`` queries. The Result is rewritten (atomically) after every measured
budget, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import torch
import typer

from fortify import data as datasets
from fortify import zoo
from fortify.audits import extraction
from fortify.cli.audit_cmd import Out, audit_app
from fortify.cli.common import (
    MODEL_HELP,
    DatasetName,
    Device,
    Label,
    Mean,
    ModelArgs,
    Seed,
    Std,
    Threads,
    Weights,
    check_outputs,
    data_name,
    load_model_for,
    normalisation,
    parse_numbers,
    setup_torch,
)
from fortify.cli.render import console, pct
from fortify.model import BlackBox, Classifier
from fortify.result import Environment, Result
from fortify.result.sections import Sections
from fortify.types import FortifyError

if TYPE_CHECKING:
    from fortify.service.client import RemoteBlackBox, RemoteModel
    from fortify.service.theft import AlertWatch

QUERY_HELP = (
    "query set: train (the last N training images: in-distribution, disjoint from a model trained on "
    "the first ones), noise (uniform), or perturbed (10 training images, each resent with a random "
    "sign perturbation of 0.1: the synthetic queries PRADA was built to catch)"
)


def _budgets(text: str) -> list[int]:
    values = parse_numbers(text, "--budgets")
    if not values or any(b < 1 or b != int(b) for b in values):
        raise FortifyError(f"--budgets must be positive integers, got {text!r}")
    return sorted({int(b) for b in values})


def _queries(kind: str, data: str, n: int, seed: int) -> torch.Tensor:
    if kind not in ("train", "noise", "perturbed"):
        raise FortifyError(f"--queries must be train, noise or perturbed, got {kind!r}")
    x_train, _ = datasets.load(data, "train")
    pool = x_train[-n:] if kind == "train" else x_train[-10:]
    if kind == "train" and pool.shape[0] < n:
        raise FortifyError(f"--budgets: {n} queries asked, the training split holds {x_train.shape[0]}")
    return extraction.query_set("natural" if kind == "train" else kind, pool, n, seed=seed)


def _endpoint(url: str, chunk: int) -> tuple[RemoteBlackBox, AlertWatch | None, str | None]:
    """The endpoint as a ``RemoteBlackBox``, its alert watch (None when the key cannot read alerts), and
    why not."""
    from fortify.service.client import from_url
    from fortify.service.theft import AlertWatch

    bb = from_url(
        url,
        model=os.environ.get("FORTIFY_ENDPOINT_MODEL", "fortify"),
        api_key=os.environ.get("FORTIFY_API_KEY"),
        output="auto",
        batch_size=chunk,
    )
    try:
        return bb, AlertWatch(bb.endpoint), None
    except FortifyError as exc:
        console.print(f"queries until the alert are not measured: {exc}", highlight=False, soft_wrap=True)
        return bb, None, str(exc)


@audit_app.command("extraction")
def extraction_command(
    out: Out,
    model: Annotated[Path | None, typer.Option(help=MODEL_HELP + "; or --url")] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="steal a served endpoint (http://host:port, Open Inference Protocol v2) instead of --model; "
            "the key in FORTIFY_API_KEY, the model name in FORTIFY_ENDPOINT_MODEL (default fortify)"
        ),
    ] = None,
    weights: Weights = None,
    model_arg: ModelArgs = None,
    data: DatasetName = "fashion-mnist",
    label: Label = None,
    mean: Mean = None,
    std: Std = None,
    budgets: Annotated[str, typer.Option(help="query budgets, comma-separated")] = "250,1000,5000",
    queries: Annotated[str, typer.Option(help=QUERY_HELP)] = "train",
    harden: Annotated[
        str, typer.Option(help="victim's outputs: full, top1, round:D or reverse-sigmoid (not with --url)")
    ] = "full",
    chunk: Annotated[
        int, typer.Option(min=1, help="queries per request, and between checks of the endpoint's alerts")
    ] = 50,
    arch: Annotated[str, typer.Option(help="the student's architecture")] = "cnn-small",
    epochs: Annotated[int, typer.Option(min=1, help="student training epochs per budget")] = 5,
    n_test: Annotated[int, typer.Option(min=10, help="test images for accuracy and agreement")] = 1000,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Steal the model through its outputs (knockoff) at several query budgets, optionally hardened; with
    --url, through a served endpoint, counting the queries until its monitor raises the extraction alert."""
    check_outputs(out=out)
    if (model is None) == (url is None):
        raise FortifyError("give exactly one of --model (a local file) and --url (a served endpoint)")
    if url is not None and harden != "full":
        raise FortifyError("--harden applies to a local --model; an endpoint serves what it is set to")
    steps = _budgets(budgets)
    dev = setup_torch(threads, device)
    data = data_name(data, label)
    info = datasets.info(data)
    x_test, y_test = datasets.load(data, "test", n=n_test)
    watch: AlertWatch | None = None
    remote: RemoteModel | None = None
    alerts_note, cost = None, 0.0
    victim: BlackBox | Classifier
    if model is None:
        victim, watch, alerts_note = _endpoint(str(url), chunk)
        remote = victim.endpoint
        described: dict[str, Any] = victim.describe()
    else:
        clf = load_model_for(model, data, dev, weights, model_arg, normalisation(mean, std, data))
        victim = clf if harden == "full" else extraction.hardened(clf, harden)
        if isinstance(victim, BlackBox):
            cost = extraction.accuracy_cost(clf, victim, x_test)
        described = clf.describe()
    x_q = _queries(queries, data, steps[-1], seed)

    def student() -> Classifier:
        torch.manual_seed(seed)
        module = zoo.create(arch, info.shape, info.num_classes)
        return Classifier(module, num_classes=info.num_classes).to(dev)

    def section(curve: extraction.ExtractionCurve, partial: bool) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if remote is not None:
            extra = {
                "endpoint": remote.stats(),
                "alert": None if watch is None else watch.alert,
                "alert_checks": None if watch is None else watch.checks,
                "alerts_note": alerts_note,
            }
        return {
            **curve.to_dict(),
            "queries": queries,
            "harden": harden,
            "label_cost": cost,
            "arch": arch,
            "chunk": chunk,
            "partial": partial,
            **extra,
        }

    def save(curve: extraction.ExtractionCurve, partial: bool) -> None:
        Result(
            kind="audit",
            dataset=data,
            model=described,
            environment=Environment.capture(str(dev)),
            sections=Sections(extraction=section(curve, partial)),
            seed=seed,
            n_samples=n_test,
            clean_accuracy=curve.victim_accuracy,
        ).save(str(out))

    try:
        _, curve = extraction.knockoff(
            victim,
            x_q,
            steps,
            student,
            x_test,
            y_test,
            epochs=epochs,
            seed=seed,
            chunk=chunk,
            detected=watch,
            on_update=lambda c: save(c, partial=True),
            progress=lambda msg: console.print(f"  {msg}", highlight=False),
        )
    finally:
        if remote is not None:
            remote.close()
    save(curve, partial=False)
    if curve.detected_at is not None and curve.at_detection is not None:
        console.print(
            f"the extraction alert fired after {curve.detected_at} queries; the student then: accuracy "
            f"{pct(curve.at_detection['accuracy'])}, agreement {pct(curve.at_detection['agreement'])}"
        )
    elif watch is not None:
        console.print(f"no extraction alert in {curve.queried} queries")
    if curve.stopped:
        console.print(f"stopped early: {curve.stopped}", highlight=False, soft_wrap=True)
    console.print(f"wrote {out}")
