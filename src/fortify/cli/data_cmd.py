"""`fortify data`: where datasets are found, and fetching Fashion-MNIST on request."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fortify import data as datasets
from fortify.cli.app import data_app
from fortify.cli.render import console
from fortify.data import fashion_mnist
from fortify.types import DataError


@data_app.command("list")
def list_command() -> None:
    """Known datasets, their shapes, and where Fashion-MNIST is looked for."""
    for name, meta in sorted(datasets.DATASETS.items()):
        console.print(f"{name:15s} {meta.num_classes:3d} classes  shape {meta.shape}")
    console.print("fashion-mnist is looked for in: " + ", ".join(str(d) for d in fashion_mnist.search_dirs()))


@data_app.command("fetch")
def fetch_command(
    name: Annotated[str, typer.Argument(help="fashion-mnist")],
    to: Annotated[Path, typer.Option(help="folder to put the files in (then export FORTIFY_DATA=it)")] = Path(
        "data/fashion-mnist"
    ),
) -> None:
    """Download a dataset's files from its canonical source, SHA-256 checked."""
    if name != "fashion-mnist":
        raise DataError("only fashion-mnist is fetched; the others ship with scikit-learn or are synthetic")
    fashion_mnist.download(to)
    console.print(f"fetched into {to}; export FORTIFY_DATA={to}")
