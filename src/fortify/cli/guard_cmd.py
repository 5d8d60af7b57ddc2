"""`fortify guard build` and `fortify guard inspect`: make a calibrated guard bundle, and read one back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import torch
import typer

from fortify.cli.app import app
from fortify.cli.common import (
    MODEL_HELP,
    DatasetName,
    Device,
    Label,
    Mean,
    ModelArgs,
    Normalisation,
    Std,
    Threads,
    TrustCode,
    data_name,
    load_model_for,
    normalisation,
    setup_torch,
)
from fortify.cli.render import console, pct
from fortify.model import Classifier
from fortify.runtime import DEFAULT_DETECTORS, DEFAULT_REJECT_FPR, Guard, build_guard, parse_detectors
from fortify.runtime.build import DEFAULT_CALIBRATION_N
from fortify.runtime.bundle import verify_bundle
from fortify.types import FortifyError
from fortify.zoo.factory import is_import_path

guard_app = typer.Typer(help="Guard bundles: build (calibrate) one, inspect one.", no_args_is_help=True)
app.add_typer(guard_app, name="guard")


@guard_app.command("build")
def build_command(
    model: Annotated[list[Path], typer.Option(help=f"{MODEL_HELP}; repeat for an ensemble")],
    out: Annotated[Path, typer.Option(help="the bundle folder to write (replaced atomically)")],
    weights: Annotated[
        list[Path] | None,
        typer.Option(help="the state dict of each --model given as pkg.module:factory, in their order"),
    ] = None,
    model_arg: ModelArgs = None,
    calibrate: DatasetName = "fashion-mnist",
    label: Label = None,
    mean: Mean = None,
    std: Std = None,
    preprocess: Annotated[str, typer.Option(help="steps in front of the models, e.g. median:2,bits:5")] = "",
    detectors: Annotated[
        str,
        typer.Option(
            help="comma-separated: squeeze, mahalanobis, confidence, entropy, input-stats, disagreement, "
            "strip (backdoor triggers: Gao et al. 2019; overlays from the first train images)"
        ),
    ] = ",".join(DEFAULT_DETECTORS),
    strip_overlays: Annotated[
        int, typer.Option(min=1, help="strip: clean images superimposed on each input")
    ] = 16,
    strip_overlay: Annotated[
        str, typer.Option(help="strip: add (the paper's, clipped) or blend (the average)")
    ] = "add",
    fpr: Annotated[float, typer.Option(help="share of clean inputs the guard may send to REVIEW")] = 0.05,
    reject_fpr: Annotated[
        float, typer.Option(help="share of clean inputs it may REJECT")
    ] = DEFAULT_REJECT_FPR,
    confidence_threshold: Annotated[float, typer.Option(help="REVIEW below this softmax confidence")] = 0.0,
    combine: Annotated[str, typer.Option(help="ensemble rule: mean_probs, mean_logits, vote")] = "mean_probs",
    calibration_n: Annotated[
        int, typer.Option(min=2, help="held-out images: the last N of the test split")
    ] = DEFAULT_CALIBRATION_N,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Calibrate a guard (models, preprocessing, detectors) on held-out images and write its bundle.

    A model given as pkg.module:factory is stored with its import path: loading the bundle then needs
    --trust-code."""
    dev = setup_torch(threads, device)
    _check_writable(out)
    calibrate = data_name(calibrate, label)
    guard = build_guard(
        _models(model, weights or [], model_arg, calibrate, dev, normalisation(mean, std, calibrate)),
        calibrate=calibrate,
        n=calibration_n,
        fpr=fpr,
        reject_fpr=reject_fpr,
        detectors=parse_detectors(detectors),
        preprocess=preprocess,
        combine=combine,
        confidence_threshold=confidence_threshold,
        strip_overlays=strip_overlays,
        strip_overlay=strip_overlay,
        device=dev,
    )
    guard.save(str(out))
    cal = guard.calibration or {}
    console.print(
        f"wrote {out}: {len(guard.models)} model(s), detectors {', '.join(guard.names) or 'none'}; "
        f"clean review rate {pct(cal.get('clean_review_rate'))} on {cal.get('n_threshold')} held-out images",
        highlight=False,
    )


@guard_app.command("inspect")
def inspect_command(
    bundle: Annotated[Path, typer.Argument(help="a guard bundle folder")],
    as_json: Annotated[bool, typer.Option("--json", help="print the description as JSON")] = False,
    trust_code: TrustCode = False,
) -> None:
    """Verify a bundle (hashes, and the signature when FORTIFY_BUNDLE_KEY is set) and describe it."""
    manifest = verify_bundle(bundle)
    guard = Guard.load(str(bundle), trust_code=trust_code)
    info = guard.describe()
    if as_json:
        typer.echo(json.dumps({"manifest": manifest.model_dump(), "guard": info}, indent=2, default=str))
        return
    console.print(f"{bundle}: verified ({len(manifest.files)} files, fortify {manifest.fortify_version})")
    console.print(f"models: {len(info['models'])} ({info['combine']}); input shape {info['input_shape']}")
    console.print(f"preprocess: {[p['name'] for p in info['preprocess']] or 'none'}")
    for det in info["detectors"]:
        reject = det["reject_threshold"]
        console.print(
            f"detector {det['key']}: review above {det['threshold']:.4g}, reject above "
            f"{'never' if reject is None else format(reject, '.4g')}",
            highlight=False,
        )
    cal = info["calibration"] or {}
    console.print(
        f"calibrated at fpr {cal.get('fpr')} on {cal.get('n')} images ({cal.get('source') or 'given data'}); "
        f"data {manifest.data_fingerprint}",
        highlight=False,
    )
    if guard.result is not None:
        console.print(
            f"shipped with an evaluation: clean {pct(guard.result.clean_accuracy)}, robust "
            f"{pct(guard.result.robust_accuracy)} ({guard.result.suite}, {guard.result.threat})",
            highlight=False,
        )


def _models(
    paths: list[Path],
    weights: list[Path],
    model_args: list[str] | None,
    dataset: str,
    device: torch.device,
    norm: Normalisation,
) -> list[Classifier]:
    """The models ``--model`` names, the import paths among them paired in order with ``--weights``."""
    own = [is_import_path(str(p)) and not p.exists() for p in paths]
    if len(weights) != sum(own):
        raise FortifyError(
            f"give one --weights per --model pkg.module:factory ({sum(own)} such model(s), "
            f"{len(weights)} --weights)"
        )
    if model_args and not any(own):
        raise FortifyError("--model-arg goes with a --model pkg.module:factory")
    if any(p.suffix.lower() == ".onnx" for p in paths):
        raise FortifyError(
            "a guard bundle stores models as safetensors: give fortify model files or your own code"
        )
    pairs = iter(weights)
    return [
        load_model_for(p, dataset, device, next(pairs), model_args, norm)
        if mine
        else load_model_for(p, dataset, device, None, None, norm)
        for p, mine in zip(paths, own, strict=True)
    ]


def _check_writable(target: Path) -> None:
    parent = target.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise FortifyError(f"cannot write {target}: {parent} is not writable")
