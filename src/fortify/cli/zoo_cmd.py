"""`fortify zoo`: the architectures training can build, and the pretrained robust models that ship."""

from __future__ import annotations

import typer

from fortify import zoo
from fortify.cli.app import app
from fortify.cli.render import console, pct

zoo_app = typer.Typer(
    help="Architectures, and the robust models that ship with fortify (with their figures).",
    no_args_is_help=True,
)
app.add_typer(zoo_app, name="zoo")


@zoo_app.command("list")
def list_command() -> None:
    """The pretrained models that ship (clean and robust accuracy from each one's own Result), then
    the architectures `fortify train --arch` builds."""
    shipped = zoo.available()
    if not shipped:
        console.print("no pretrained models ship with this installation")
    for model in shipped:
        robust = "" if model.robust_accuracy is None else f", robust {pct(model.robust_accuracy)}"
        console.print(
            f"[bold]{model.name}[/]  {model.dataset} {model.threat or ''}: clean {pct(model.clean_accuracy)}"
            f"{robust} ({model.suite} suite, {model.n_samples} test images)  load: ft.zoo.pretrained"
            f"({model.name!r})",
            highlight=False,
        )
        console.print(f"    {model.description}", highlight=False)
    console.print("architectures: " + ", ".join(zoo.names()))
