"""The typer application object; commands register themselves on it from their own modules."""

import typer

app = typer.Typer(
    name="fortify",
    help="Attack, evaluate, harden, certify and gate PyTorch classifiers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets: where they are, fetching them.", no_args_is_help=True)
app.add_typer(data_app, name="data")
