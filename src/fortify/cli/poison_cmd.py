"""`fortify poison make | inspect | audit`: backdoor a training set, inspect it, audit a filter."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from safetensors.torch import save

from fortify import data as datasets
from fortify._files import atomic_write_bytes, atomic_write_text
from fortify.audits import poisoning as P
from fortify.audits.poisoning.files import load_poisoned
from fortify.cli.app import app
from fortify.cli.common import (
    DatasetName,
    Device,
    Label,
    Mean,
    ModelArgs,
    ModelFile,
    Std,
    Threads,
    Weights,
    check_outputs,
    data_name,
    fresh_module,
    load_model_for,
    normalisation,
    setup_torch,
)
from fortify.cli.render import console, pct
from fortify.model import Classifier
from fortify.result import Environment, Result
from fortify.training import train
from fortify.types import FortifyError

poison_app = typer.Typer(help="Poisoned data and backdoors: make, inspect, audit.", no_args_is_help=True)
app.add_typer(poison_app, name="poison")

Attack = Annotated[str, typer.Option(help="badnets (dirty label) or clean-label (Turner et al. 2019)")]
Trigger = Annotated[
    str, typer.Option(help="patch (a checkerboard in the corner) or blend (a pattern over all)")
]
Rate = Annotated[float, typer.Option(help="share of the training set poisoned, in (0, 1)")]
Target = Annotated[int, typer.Option(help="the class the trigger sends inputs to")]
Size = Annotated[int, typer.Option(help="patch side in pixels")]
Alpha = Annotated[float, typer.Option(help="blend weight of the pattern, in (0, 1)")]
NTrain = Annotated[int, typer.Option(min=10, help="training images (the first N of the train split)")]
Seed = Annotated[int, typer.Option(help="seed of the poisoning draw and the training")]


def _attack(
    attack: str, trigger: str, size: int, alpha: float, rate: float, target: int, eps: float, seed: int
) -> P.BadNets:
    if attack == "badnets":
        return P.BadNets(trigger=trigger, size=size, alpha=alpha, rate=rate, target=target, seed=seed)
    if attack == "clean-label":
        return P.CleanLabel(
            eps=eps, trigger=trigger, size=size, alpha=alpha, rate=rate, target=target, seed=seed
        )
    raise FortifyError(f"--attack must be badnets or clean-label, got {attack!r}")


def _trainer(
    arch: str, dataset: str, epochs: int, seed: int, model_args: list[str] | None = None
) -> Callable[[torch.Tensor, torch.Tensor], Classifier]:
    """A function training a fresh ``arch`` (a zoo architecture, or the user's ``pkg.module:factory``
    called with ``model_args``) on ``(x, y)``."""
    info = datasets.info(dataset)

    def fit(x: torch.Tensor, y: torch.Tensor) -> Classifier:
        torch.manual_seed(seed)
        clf = Classifier(fresh_module(arch, dataset, model_args), num_classes=info.num_classes)
        train(clf, (x, y), epochs=epochs, lr=1e-3, batch_size=128, seed=seed, progress=False)
        return clf

    return fit


@poison_app.command("make")
def make_command(
    out: Annotated[Path, typer.Option(help="poisoned set as safetensors: x, y, poisoned (indices)")],
    data: DatasetName = "fashion-mnist",
    label: Label = None,
    n_train: NTrain = 10_000,
    attack: Attack = "badnets",
    trigger: Trigger = "patch",
    size: Size = 3,
    alpha: Alpha = 0.1,
    rate: Rate = 0.05,
    target: Target = 0,
    eps: Annotated[float, typer.Option(help="clean-label: Linf budget of the hardening PGD")] = 0.1,
    surrogate: Annotated[
        Path | None,
        typer.Option(
            help="clean-label: the model to perturb against (a fortify file, or pkg.module:factory)"
        ),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="the state dict of a --surrogate given as pkg.module:factory")
    ] = None,
    model_arg: ModelArgs = None,
    seed: Seed = 0,
) -> None:
    """Write a poisoned copy of the first N training images and the indices of what was changed."""
    check_outputs(out=out)
    chosen = _attack(attack, trigger, size, alpha, rate, target, eps, seed)
    data = data_name(data, label)
    x, y = datasets.load(data, "train", n=n_train)
    if isinstance(chosen, P.CleanLabel):
        if surrogate is None:
            raise FortifyError("--attack clean-label needs --surrogate MODEL")
        model = load_model_for(surrogate, data, torch.device("cpu"), weights, model_arg)
        x_p, y_p, idx = chosen.poison(x, y, model)
    else:
        x_p, y_p, idx = chosen.poison(x, y)
    meta = {"fortify": json.dumps({"dataset": data, "n_train": n_train, **chosen.describe()})}
    atomic_write_bytes(
        out, save({"x": x_p.contiguous(), "y": y_p.contiguous(), "poisoned": idx}, metadata=meta)
    )
    console.print(
        f"wrote {out}: {idx.numel()} of {x.shape[0]} training images poisoned ({chosen.describe()})"
    )


def _class_rates(items: list[str]) -> dict[int, float]:
    """``["0=0.35", ...]`` as ``{0: 0.35}``; a one-line error for anything else."""
    rates: dict[int, float] = {}
    for item in items:
        cls, sep, value = item.partition("=")
        try:
            key, rate = int(cls), float(value)
        except ValueError:
            key, rate = -1, float("nan")
        if not sep or key < 0 or not 0 < rate < 1 or key in rates:
            raise FortifyError(
                f"--class-rate must be CLASS=RATE with RATE in (0, 1), once per class, got {item!r}"
            )
        rates[key] = rate
    return rates


@poison_app.command("inspect")
def inspect_command(
    model: ModelFile,
    poisoned: Annotated[
        Path, typer.Option(help="a set from `fortify poison make` (or any x, y safetensors)")
    ],
    out: Annotated[Path, typer.Option(help="flagged indices as JSON")],
    method: Annotated[
        str, typer.Option(help="spectral (Tran et al. 2018) or clustering (Chen et al. 2018)")
    ] = "spectral",
    layer: Annotated[
        str | None, typer.Option(help="feature layer (default: the penultimate features)")
    ] = None,
    expected_rate: Annotated[
        float, typer.Option(help="spectral: upper bound on the share of each class poisoned")
    ] = 0.05,
    class_rate: Annotated[
        list[str] | None,
        typer.Option(
            help="spectral: CLASS=RATE, the bound for one class (repeatable; e.g. 0=0.35 for a suspected "
            "target class), overriding --expected-rate there"
        ),
    ] = None,
    data: DatasetName = "fashion-mnist",
    label: Label = None,
    weights: Weights = None,
    model_arg: ModelArgs = None,
    mean: Mean = None,
    std: Std = None,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Flag suspicious samples with a model trained on them (scored when the set names its poison)."""
    check_outputs(out=out)
    dev = setup_torch(threads, device)
    if method not in P.INSPECTIONS:
        raise FortifyError(f"--method must be one of {sorted(P.INSPECTIONS)}, got {method!r}")
    data = data_name(data, label)
    clf = load_model_for(model, data, dev, weights, model_arg, normalisation(mean, std, data))
    x, y, known = load_poisoned(poisoned, "--poisoned")
    rates = _class_rates(class_rate or [])
    if rates and method != "spectral":
        raise FortifyError("--class-rate applies to --method spectral")
    extra: dict[str, Any] = (
        {"expected_rate": expected_rate, "class_rates": rates} if method == "spectral" else {}
    )
    flagged = P.INSPECTIONS[method](clf, x, y, layer=layer, **extra)
    record: dict[str, object] = {
        "method": method,
        "layer": layer or "penultimate",
        **({"expected_rate": expected_rate, "class_rates": rates} if method == "spectral" else {}),
        "flagged": flagged.tolist(),
    }
    if known is not None:
        precision, recall = P.precision_recall(flagged, known)
        record.update(precision=precision, recall=recall)
        console.print(
            f"{method}: flagged {flagged.numel()}, precision {pct(precision)}, recall {pct(recall)}"
        )
    atomic_write_text(out, json.dumps(record))
    console.print(f"wrote {out}")


@poison_app.command("audit")
def audit_command(
    out: Annotated[Path, typer.Option(help="the audit Result JSON (kind 'audit')")],
    data: DatasetName = "fashion-mnist",
    label: Label = None,
    arch: Annotated[
        str,
        typer.Option(help="architecture trained on the poisoned set: a zoo name, or pkg.module:factory"),
    ] = "cnn-small",
    model_arg: ModelArgs = None,
    n_train: NTrain = 10_000,
    n_test: Annotated[int, typer.Option(min=10, help="test images measured")] = 2000,
    epochs: Annotated[int, typer.Option(min=1, help="training epochs of every model")] = 2,
    attack: Attack = "badnets",
    trigger: Trigger = "patch",
    size: Size = 3,
    alpha: Alpha = 0.1,
    rate: Rate = 0.05,
    target: Target = 0,
    eps: Annotated[float, typer.Option(help="clean-label: Linf budget of the hardening PGD")] = 0.1,
    inspections: Annotated[
        str, typer.Option(help="comma-separated: spectral, clustering")
    ] = "spectral,clustering",
    layer: Annotated[
        str | None, typer.Option(help="feature layer (default: the penultimate features)")
    ] = None,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Poison, train, inspect, retrain without the flagged samples; beside a random and a perfect filter.

    Trains 2 + 2 x (number of inspections) models: the undefended one, the perfect filter's, and per
    inspection the filtered and the random-filter one.
    """
    check_outputs(out=out)
    setup_torch(threads, device)
    chosen = _attack(attack, trigger, size, alpha, rate, target, eps, seed)
    names = [n.strip() for n in inspections.split(",") if n.strip()]
    data = data_name(data, label)
    x, y = datasets.load(data, "train", n=n_train)
    x_test, y_test = datasets.load(data, "test", n=n_test)
    fit = _trainer(arch, data, epochs, seed, model_arg)
    surrogate = fit(x, y) if isinstance(chosen, P.CleanLabel) else None
    console.print(
        f"auditing {chosen.describe()}: {2 + 2 * len(names)} trainings of {arch} on {x.shape[0]} images"
    )
    section = P.audit(
        chosen,
        fit,
        x,
        y,
        x_test,
        y_test,
        inspections=names,
        layer=layer,
        surrogate=surrogate,
        seed=seed,
        progress=lambda msg: console.print(f"  {msg}", highlight=False),
    )
    section["arch"], section["epochs"] = arch, epochs
    undefended = section["undefended"]
    result = Result(
        kind="audit",
        dataset=data,
        seed=seed,
        n_samples=x_test.shape[0],
        clean_accuracy=undefended["clean_accuracy"],
        attack_success_rate=undefended["attack_success_rate"],
        model={"arch": arch, "epochs": epochs, "trained_on": f"{data} train[:{x.shape[0]}], poisoned"},
        timing={"total_s": section["time_s"]},
        environment=Environment.capture(),
        sections={"poisoning": section},
    )
    result.save(str(out))
    console.print(_summary(section), highlight=False)
    console.print(f"wrote {out}")


def _summary(section: dict[str, Any]) -> str:
    def row(label: str, scores: dict[str, float]) -> str:
        clean, success = pct(scores["clean_accuracy"]), pct(scores["attack_success_rate"])
        return f"  {label:<40} clean {clean}, attack success {success}"

    lines = [
        row("undefended", section["undefended"]),
        row("perfect filter (exactly the poison)", section["perfect_filter"]),
    ]
    for name, item in section["inspections"].items():
        precision, recall = pct(item["precision"]), pct(item["recall"])
        lines.append(row(f"{name} filter (P {precision}, R {recall})", item["after_filter"]))
        lines.append(row(f"random filter, as many as {name}", item["random_filter"]))
    return "\n".join(lines)
