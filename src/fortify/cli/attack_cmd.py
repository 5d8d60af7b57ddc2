"""`fortify attack` (run one attack, save the adversarial batch) and `fortify attacks` (the catalogue)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.table import Table
from safetensors.torch import save as save_tensors

from fortify import data as datasets
from fortify._files import atomic_write_bytes
from fortify.attacks.base import resolve_precision
from fortify.attacks.catalog import CATALOG, lookup
from fortify.attacks.runner import run_batched
from fortify.cli.app import app
from fortify.cli.common import (
    BatchSize,
    DatasetName,
    Device,
    Label,
    Mean,
    ModelArgs,
    ModelFile,
    Precision,
    Seed,
    Split,
    Std,
    Threads,
    Weights,
    check_outputs,
    data_name,
    load_model_for,
    normalisation,
    setup_torch,
    threat_for,
)
from fortify.cli.estimate import attack_cost
from fortify.cli.progress import ProgressMode, Quiet, bar, configure
from fortify.cli.render import console, pct
from fortify.evaluation.ledger import jsonable
from fortify.model import Classifier
from fortify.result import AttackRecord, Environment, Result, ThreatSpec
from fortify.threat import Threat
from fortify.types import FortifyError


@app.command("attacks")
def attacks_command() -> None:
    """List every attack with its paper, threat types and what it needs from the model."""
    table = Table(title="fortify attacks")
    for column in ("name", "threats", "needs", "paper"):
        table.add_column(column)
    for entry in CATALOG.values():
        table.add_row(entry.name, ", ".join(entry.norms), entry.access, entry.paper)
    console.print(table)


def targets_for(spec: str, y: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    """Target labels for ``--target``: ``next`` (label + 1 mod K), ``random`` (seeded, never the label) or
    a class index (samples of that class cannot be sent to it and are refused by the attack's check)."""
    if spec == "next":
        return (y + 1) % num_classes
    if spec == "random":
        generator = torch.Generator().manual_seed(seed)
        shift = torch.randint(1, num_classes, y.shape, generator=generator)
        return (y + shift) % num_classes
    try:
        cls = int(spec)
    except ValueError:
        raise FortifyError(f"--target takes 'next', 'random' or a class index, got {spec!r}") from None
    if not 0 <= cls < num_classes:
        raise FortifyError(f"--target class {cls} is outside [0, {num_classes - 1}]")
    return torch.full_like(y, cls)


def attack_result(
    clf: Classifier,
    name: str,
    config: dict[str, Any],
    threat: Threat,
    dataset: str,
    seed: int,
    summary: dict[str, Any],
    correct: torch.Tensor,
    fooled: torch.Tensor,
) -> Result:
    """The Result (kind ``"attack"``) of one attack run: its numbers as one ``per_attack`` record."""
    record = AttackRecord(
        name=name,
        config=jsonable(config),
        ran_on="all",
        n_attacked=int(correct.sum()),
        n_succeeded=int(fooled.sum()),
        accuracy=summary["robust_accuracy"],
        cumulative_accuracy=summary["robust_accuracy"],
        time_s=summary["time_s"],
    )
    return Result(
        kind="attack",
        model=clf.describe(),
        dataset=dataset,
        threat=ThreatSpec(norm=threat.norm, eps=threat.eps),
        suite=name,
        seed=seed,
        n_samples=summary["n"],
        clean_accuracy=summary["clean_accuracy"],
        robust_accuracy=summary["robust_accuracy"],
        attack_success_rate=summary["success_rate"],
        per_attack=[record],
        precision="bf16" if config.get("precision") == "bf16" else "fp32",
        timing={"total_s": summary["time_s"]},
        environment=Environment.capture(str(clf.device)),
    )


@app.command("attack")
def attack_command(
    model: ModelFile,
    weights: Weights = None,
    model_arg: ModelArgs = None,
    attack: Annotated[str, typer.Option(help="attack name; `fortify attacks` lists them")] = "pgd",
    data: DatasetName = "fashion-mnist",
    label: Label = None,
    mean: Mean = None,
    std: Std = None,
    eps: Annotated[float, typer.Option(help="threat radius (a pixel count for --norm l0)")] = 0.1,
    norm: Annotated[str, typer.Option(help="linf, l2 or l0")] = "linf",
    n: Annotated[int, typer.Option(min=1, help="number of test samples")] = 500,
    steps: Annotated[
        int | None,
        typer.Option(min=1, help="iterations (queries for black-box attacks); default: the attack's own"),
    ] = None,
    split: Split = "test",
    seed: Seed = 0,
    precision: Precision = "fp32",
    target: Annotated[
        str | None,
        typer.Option(help="targeted attack: 'next' (label+1), 'random', or a class index (others only)"),
    ] = None,
    batch_size: BatchSize = 250,
    save: Annotated[
        Path | None,
        typer.Option(help="write x_adv, x, y and predictions (safetensors) and the Result beside it (.json)"),
    ] = None,
    device: Device = "auto",
    threads: Threads = None,
    progress: ProgressMode = "auto",
    quiet: Quiet = False,
) -> None:
    """Run one attack on a saved model; print success rate, perturbation sizes and time.

    With --target the attack is targeted and success means reaching the target class."""
    entry = lookup(attack)
    if norm.lower() not in entry.norms:
        raise FortifyError(f"{entry.name} supports {', '.join(entry.norms)}, not {norm!r}")
    if save is not None:  # the tensors and their Result beside them (.json)
        check_outputs(save=save)
        check_outputs(save=save.with_suffix(".json"))
    dev = setup_torch(threads, device)
    configure(progress, quiet)
    data = data_name(data, label)
    clf = load_model_for(model, data, dev, weights, model_arg, normalisation(mean, std, data))
    x, y = datasets.load(data, split, n=n)
    threat = threat_for(norm, eps, clf.bounds, tuple(x.shape[1:]))
    goal = y
    if target is not None:
        goal = targets_for(target, y, clf.num_classes, seed)
        if target not in ("next", "random"):
            keep = y != goal
            if not bool(keep.any()):
                raise FortifyError(f"every selected sample is already of class {target}")
            console.print(f"{int((~keep).sum())} sample(s) of class {target} left out (they are the target)")
            x, y, goal = x[keep], y[keep], goal[keep]
    attacker = entry.build(seed=seed, budget=steps, **({"targeted": True} if target is not None else {}))
    resolved = resolve_precision(precision, clf.device)
    if resolved != "fp32":
        attacker.set_precision(resolved)
    reached = clf.predict(x).cpu() == goal if target is not None else clf.predict(x).cpu() != y
    attack_cost(entry.name, attacker, clf, x, int((~reached).sum()), batch_size)
    started = time.perf_counter()
    with bar(entry.name, x.shape[0], True) as ticker:
        labels = y if target is not None else None
        out = run_batched(attacker, clf, x, goal, threat, batch_size=batch_size, labels=labels, ticker=ticker)
    elapsed = time.perf_counter() - started
    x_adv, used = out.x_adv, out.queries
    assert used is not None  # run_batched counts queries for every sample
    clean_pred, adv_pred = clf.predict(x).cpu(), clf.predict(x_adv).cpu()
    correct = clean_pred == y
    fooled = correct & (adv_pred == goal if target is not None else adv_pred != y)
    sizes = threat.norm_of(x_adv[fooled] - x[fooled])
    summary: dict[str, Any] = {
        "attack": entry.name,
        "target": target,
        "threat": threat.to_dict(),
        "n": int(x.shape[0]),
        "clean_accuracy": float(correct.float().mean()),
        "robust_accuracy": float((correct & ~fooled).float().mean()),
        "success_rate": float(fooled.sum()) / max(int(correct.sum()), 1),
        "mean_perturbation": float(sizes.mean()) if sizes.numel() else None,
        "median_perturbation": float(sizes.median()) if sizes.numel() else None,
        "median_queries": float(used[fooled].float().median())
        if entry.access != "gradients" and fooled.any()
        else None,
        "time_s": elapsed,
    }
    table = Table(title=f"{entry.name} on {data} ({x.shape[0]} samples, {threat!r})")
    for column in ("clean", "robust", "success rate", "mean size", "median size", "time"):
        table.add_column(column, justify="right")
    size = "—" if summary["mean_perturbation"] is None else f"{summary['mean_perturbation']:.4g}"
    median = "—" if summary["median_perturbation"] is None else f"{summary['median_perturbation']:.4g}"
    table.add_row(
        pct(summary["clean_accuracy"]),
        pct(summary["robust_accuracy"]),
        pct(summary["success_rate"]),
        size,
        median,
        f"{elapsed:.1f}s",
    )
    console.print(table)
    if save is not None:
        tensors = {
            "x_adv": x_adv.contiguous(),
            "x": x.contiguous(),
            "y": y,
            "adv_pred": adv_pred,
            "clean_pred": clean_pred,
        }
        atomic_write_bytes(save, save_tensors(tensors, metadata={"fortify": json.dumps(summary)}))
        record = save.with_suffix(".json")
        attack_result(clf, entry.name, attacker.config(), threat, data, seed, summary, correct, fooled).save(
            str(record)
        )
        console.print(f"wrote {save} and {record}")
