"""`fortify demo`: train (or reuse) a Fashion-MNIST CNN, attack it, print the table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from fortify import data as datasets
from fortify import zoo
from fortify.cli.app import app
from fortify.cli.common import setup_torch
from fortify.cli.render import console, pct, results_table
from fortify.cli.train_cmd import train_and_save
from fortify.evaluation import evaluate
from fortify.threat import Linf


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="run folder")] = Path("runs/demo"),
    epochs: Annotated[int, typer.Option(min=1, help="training epochs when a model must be trained")] = 1,
    n: Annotated[int, typer.Option(min=1, help="test images to attack")] = 1000,
    eps: Annotated[list[float] | None, typer.Option(help="Linf radii (repeatable)")] = None,
    retrain: Annotated[bool, typer.Option(help="train again even if runs/demo has a model")] = False,
    seed: int = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda ...")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch")] = None,
) -> None:
    """The main job end to end on Fashion-MNIST: train, attack with FGSM and PGD, score."""
    started = time.perf_counter()
    dev = setup_torch(threads, device)
    radii = eps or [0.05, 0.1]
    model_path = out / "model.safetensors"
    if model_path.is_file() and not retrain:
        clf = zoo.load(model_path, device=dev)
        console.print(f"reusing {model_path} (pass --retrain to train again)")
    else:
        console.print(f"[bold]1. training[/] cnn-small on Fashion-MNIST (60,000 images, {epochs} epoch(s))")
        clf, _, test_acc = train_and_save(
            "fashion-mnist", "cnn-small", out, epochs=epochs, lr=1e-3, batch_size=128, seed=seed,
            n_train=None, device=dev,
        )
        console.print(f"   test accuracy {pct(test_acc)} on 10,000 images; saved {model_path}")
    x, y = datasets.load("fashion-mnist", "test", n=n)
    console.print(f"[bold]2. attacking[/] {n} test images with FGSM and PGD-20 (Linf)")
    results = []
    for radius in radii:
        result = evaluate(clf, x, y, Linf(radius), suite="quick", seed=seed, dataset="fashion-mnist", progress=True)
        path = out / f"eval-linf-{radius:g}.json"
        result.save(str(path))
        results.append(result)
    console.print(results_table(results, f"Fashion-MNIST cnn-small, {n} test images"))
    console.print(
        f"results in {out}/ (Result JSON per eps); total {time.perf_counter() - started:.0f}s. "
        "An undefended model collapses under small perturbations: see `fortify train --help` to harden it."
    )
