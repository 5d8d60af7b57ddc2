"""`fortify data`: where datasets are found, and fetching Fashion-MNIST on request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fortify import data as datasets
from fortify.cli.app import app
from fortify.cli.render import console
from fortify.data import fashion_mnist
from fortify.types import DataError

data_app = typer.Typer(help="Datasets: where they are, fetching them, fingerprints.", no_args_is_help=True)
app.add_typer(data_app, name="data")


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


@data_app.command("fingerprint")
def fingerprint_command(
    source: Annotated[str, typer.Argument(help="a dataset name (fashion-mnist, digits, ...) or a folder")],
    out: Annotated[Path, typer.Option(help="the manifest JSON to write")],
) -> None:
    """Record SHA-256, sizes and class counts of a dataset or a folder, to verify later."""
    from fortify._files import atomic_write_text
    from fortify.cli.common import check_outputs
    from fortify.data.provenance import fingerprint

    check_outputs(out=out)
    manifest = fingerprint(source)
    atomic_write_text(out, json.dumps(manifest, indent=1))
    count = len(manifest.get("files", manifest.get("splits", {})))
    console.print(f"wrote {out}: {manifest['kind']} {source}, {count} entries, {manifest['digest']}")


@data_app.command("verify")
def verify_command(
    manifest: Annotated[Path, typer.Argument(help="a manifest from `fortify data fingerprint`")],
) -> None:
    """Exit 0 when the data is unchanged, 1 naming what changed, 2 when the manifest is unreadable."""
    from fortify.data.provenance import read_manifest, verify

    changes = verify(read_manifest(manifest))
    if changes:
        for line in changes[:50]:
            console.print(line, highlight=False, markup=False)
        if len(changes) > 50:
            console.print(f"... and {len(changes) - 50} more")
        raise typer.Exit(1)
    console.print(f"unchanged: {manifest}")
