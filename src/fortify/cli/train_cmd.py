"""`fortify train`: train a zoo architecture on a dataset and save it safely."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer

from fortify import data as datasets
from fortify import zoo
from fortify.cli.app import app
from fortify.cli.common import setup_torch
from fortify.cli.render import console, pct
from fortify.model import Classifier
from fortify.result import Environment, Result
from fortify.training import TrainingHistory, train


def train_and_save(
    dataset: str, arch: str, out: Path, *, epochs: int, lr: float, batch_size: int, seed: int,
    n_train: int | None, device: torch.device, method: str = "standard",
) -> tuple[Classifier, TrainingHistory, float]:
    """Train ``arch`` on ``dataset`` and write ``out/model.safetensors`` and ``out/train.json``."""
    meta = datasets.info(dataset)
    x, y = datasets.load(dataset, "train", n=n_train)
    x_test, y_test = datasets.load(dataset, "test")
    torch.manual_seed(seed)
    clf = Classifier(zoo.create(arch, meta.shape, meta.num_classes).to(device), num_classes=meta.num_classes)
    history = train(clf, (x, y), epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, method=method,
                    progress=True)
    test_acc = float((clf.predict(x_test).cpu() == y_test).float().mean())
    zoo.save(clf, out / "model.safetensors", dataset=dataset, training=history.model_dump(),
             metrics={"test_accuracy": test_acc})
    result = Result(
        kind="training", model=clf.describe(), dataset=dataset, seed=seed, n_samples=int(x_test.shape[0]),
        clean_accuracy=test_acc, timing={"total_s": history.total_s},
        environment=Environment.capture(str(device)), sections={"training": history.model_dump()},
    )
    result.save(str(out / "train.json"))
    return clf, history, test_acc


@app.command("train")
def train_command(
    data: Annotated[str, typer.Option(help=f"dataset: {', '.join(sorted(datasets.DATASETS))}")] = "fashion-mnist",
    arch: Annotated[str, typer.Option(help=f"architecture: {', '.join(zoo.names())}")] = "cnn-small",
    epochs: Annotated[int, typer.Option(min=1)] = 2,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    n: Annotated[int | None, typer.Option(help="use only the first N training samples")] = None,
    seed: int = 0,
    out: Annotated[Path, typer.Option(help="run folder: model.safetensors and train.json go here")] = Path(
        "runs/train"
    ),
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch")] = None,
) -> None:
    """Train a model (standard training) and save it as safetensors with JSON metadata."""
    dev = setup_torch(threads, device)
    _, history, test_acc = train_and_save(
        data, arch, out, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, n_train=n, device=dev
    )
    for record in history.epochs:
        console.print(
            f"epoch {record.epoch}: loss {record.loss:.4f}  train acc {pct(record.accuracy)}  {record.time_s:.1f}s"
        )
    console.print(f"test accuracy {pct(test_acc)}; wrote {out / 'model.safetensors'} and {out / 'train.json'}")
