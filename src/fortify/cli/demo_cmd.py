"""`fortify demo`: train (or reuse) a Fashion-MNIST CNN, attack it, harden it with fast adversarial
training, attack it again, print the before/after table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.table import Table

from fortify import data as datasets
from fortify import zoo
from fortify.cli.app import app
from fortify.cli.common import (
    Device,
    Seed,
    Threads,
    check_output_folder,
    setup_torch,
)
from fortify.cli.progress import bars
from fortify.cli.render import console, pct, results_table
from fortify.cli.train_cmd import train_and_save
from fortify.evaluation import evaluate
from fortify.model import Classifier
from fortify.result import Result
from fortify.threat import Linf
from fortify.training import TrainConfig

HARDEN_EPS = 0.1


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="run folder")] = Path("runs/demo"),
    epochs: Annotated[int, typer.Option(min=1, help="training epochs when a model must be trained")] = 1,
    n: Annotated[int, typer.Option(min=1, help="test images to attack")] = 1000,
    eps: Annotated[
        list[float] | None, typer.Option(help="Linf radii (repeatable; default: 0.05 and 0.1)")
    ] = None,
    harden_n: Annotated[
        int, typer.Option(min=0, help="training images for the fast-AT fine-tune (0 skips)")
    ] = 10000,
    harden_epochs: Annotated[int, typer.Option(min=1, help="fast-AT fine-tuning epochs")] = 1,
    retrain: Annotated[bool, typer.Option(help="train again even if runs/demo has a model")] = False,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """The main job end to end on Fashion-MNIST: train, attack with FGSM and PGD, harden, attack again."""
    started = time.perf_counter()
    check_output_folder("--out", out)
    dev = setup_torch(threads, device)
    radii = eps or [0.05, 0.1]
    model_path = out / "model.safetensors"
    if model_path.is_file() and not retrain:
        clf = zoo.load(model_path, device=dev)
        console.print(f"reusing {model_path} (pass --retrain to train again)")
    else:
        console.print(f"[bold]1. training[/] cnn-small on Fashion-MNIST (60,000 images, {epochs} epoch(s))")
        clf, _, test_acc = train_and_save(
            "fashion-mnist",
            "cnn-small",
            out,
            TrainConfig(epochs=epochs, lr=1e-3, batch_size=128, seed=seed),
            n_train=None,
            device=dev,
        )
        console.print(f"   test accuracy {pct(test_acc)} on 10,000 images; saved {model_path}")
    x, y = datasets.load("fashion-mnist", "test", n=n)
    console.print(f"[bold]2. attacking[/] {n} test images with FGSM and PGD-20 (Linf)")
    before = _attack_all(clf, x, y, radii, seed, out, "eval")
    console.print(results_table(before, f"Fashion-MNIST cnn-small, {n} test images"))
    if harden_n == 0:
        console.print(f"results in {out}/; total {time.perf_counter() - started:.0f}s.")
        return
    hardened = _harden(model_path, out / "hardened", harden_n, harden_epochs, seed, dev, retrain)
    console.print("[bold]4. attacking[/] the hardened model with the same attacks")
    after = _attack_all(hardened, x, y, radii, seed, out / "hardened", "eval")
    console.print(_before_after(before, after, n))
    console.print(
        f"results in {out}/ and {out}/hardened/ (model + Result JSON per eps); total "
        f"{time.perf_counter() - started:.0f}s. Full recipes: `fortify train --method pgd|fast|trades`."
    )


def _attack_all(
    clf: Classifier, x: torch.Tensor, y: torch.Tensor, radii: list[float], seed: int, out: Path, stem: str
) -> list[Result]:
    results = []
    for radius in radii:
        result = evaluate(
            clf, x, y, Linf(radius), suite="quick", seed=seed, dataset="fashion-mnist", progress=bars
        )
        result.save(str(out / f"{stem}-linf-{radius:g}.json"))
        results.append(result)
    return results


def _harden(
    init: Path, out: Path, n_train: int, epochs: int, seed: int, dev: torch.device, retrain: bool
) -> Classifier:
    path = out / "model.safetensors"
    if path.is_file() and not retrain:
        console.print(f"[bold]3. hardening[/]: reusing {path} (pass --retrain to train again)")
        return zoo.load(path, device=dev)
    console.print(
        f"[bold]3. hardening[/]: fine-tuning it with fast adversarial training (FGSM-RS, "
        f"Linf {HARDEN_EPS:g}, cyclic lr) on {n_train:,} images for {epochs} epoch(s)"
    )
    clf, history, test_acc = train_and_save(
        "fashion-mnist",
        "cnn-small",
        out,
        TrainConfig(
            epochs=epochs,
            lr=2e-3,
            batch_size=128,
            seed=seed,
            method="fast",
            threat=Linf(HARDEN_EPS),
            lr_schedule="cyclic",
            method_options={"variant": "fgsm-rs"},
        ),
        n_train=n_train,
        device=dev,
        init=init,
        test_n=500,
    )
    collapses = sum(e.kind == "catastrophic_overfitting" for e in history.events)
    console.print(
        f"   test accuracy {pct(test_acc)}; {history.total_s:.0f}s; catastrophic-overfitting "
        f"recoveries: {collapses}; saved {path}"
    )
    return clf


def _before_after(before: list[Result], after: list[Result], n: int) -> Table:
    table = Table(title=f"Before / after hardening ({n} test images, worst case of FGSM and PGD-20)")
    for column in ("threat", "clean before", "robust before", "clean after", "robust after"):
        table.add_column(column, justify="right")
    for a, b in zip(before, after, strict=True):
        threat = f"linf {a.threat.eps:g}" if a.threat else "—"
        table.add_row(
            threat,
            pct(a.clean_accuracy),
            pct(a.robust_accuracy),
            pct(b.clean_accuracy),
            f"[bold]{pct(b.robust_accuracy)}[/]",
        )
    return table
