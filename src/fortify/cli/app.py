"""The typer application object; commands register themselves on it from their own modules.

Command modules import torch and most of fortify, so they are imported only when their command runs:
``COMMANDS`` names each top-level command, the module that registers it and its one-line help, which
is all ``fortify --help`` shows (``tests/cli/test_help.py`` checks the table against the commands).
"""

from __future__ import annotations

import difflib
import importlib
import platform
import sys
from importlib import metadata
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from fortify._version import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "demo_cmd",
        "The main job end to end on Fashion-MNIST: train, attack with FGSM and PGD, harden, attack again.",
    ),
    "train": (
        "train_cmd",
        "Train a model (standard, adversarial or differentially private) and save it as safetensors with "
        "JSON metadata. Long runs: --checkpoint-every 1, then --resume OUT after an interruption.",
    ),
    "evaluate": (
        "evaluate_cmd",
        "Attack a saved model with a suite and report per-sample worst-case robust accuracy.",
    ),
    "sweep": (
        "sweep_cmd",
        "Accuracy-epsilon curve from one minimum-norm pass, refined by a suite at each radius.",
    ),
    "attack": (
        "attack_cmd",
        "Run one attack on a saved model; print success rate, perturbation sizes and time.",
    ),
    "attacks": (
        "attack_cmd",
        "List every attack with its paper, threat types and what it needs from the model.",
    ),
    "certify": (
        "certify_cmd",
        "Certify test images with randomized smoothing (Cohen et al. 2019) and print the curve.",
    ),
    "report": (
        "report_cmd",
        "Render Result JSON as an HTML report: summary (the most pessimistic of several, with a table of "
        "all), curve, attacks, classes, diagnostics, certification, model identity, environment.",
    ),
    "gate": (
        "gate_cmd",
        "Pass or fail a release: thresholds on clean/robust accuracy, attack success, latency, diagnostics.",
    ),
    "guard": ("guard_cmd", "Guard bundles: build (calibrate) one, inspect one."),
    "serve": (
        "serve_cmd",
        "Serve a guarded model over the Open Inference Protocol v2 (keys from the config or FORTIFY_KEYS).",
    ),
    "serve-key": (
        "serve_cmd",
        "Make a new API key: prints the key once (give it to the client) and its config entry (hash only).",
    ),
    "review": ("serve_cmd", "The service's review queue: export reviewed inputs as a dataset."),
    "data": ("data_cmd", "Datasets: where they are, fetching them, fingerprints."),
    "audit": (
        "audit_cmd",
        "Privacy and theft audits: membership inference, model inversion, model extraction.",
    ),
    "poison": ("poison_cmd", "Poisoned data and backdoors: make, inspect, audit."),
    "zoo": ("zoo_cmd", "Architectures, and the robust models that ship with fortify (with their figures)."),
}
"""name -> (module in ``fortify.cli`` that registers it, the one-line help ``fortify --help`` shows)."""


class LazyGroup(TyperGroup):
    """The top-level group: lists every command from ``COMMANDS`` and imports a command's module only
    when that command is invoked (or asked for its own ``--help``)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        loaded = self.commands.get(cmd_name)
        if loaded is not None or cmd_name not in COMMANDS:
            return loaded
        # listing only (``fortify --help``): a stand-in carrying the command's one-line help
        return TyperCommand(cmd_name, help=COMMANDS[cmd_name][1], rich_markup_mode=self.rich_markup_mode)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name in COMMANDS and name not in self.commands:
            self.commands[name] = load_command(name)
        elif name and name not in COMMANDS and not name.startswith("-"):
            close = difflib.get_close_matches(name, list(COMMANDS))
            if close:  # typer suggests from the loaded commands only, i.e. none yet
                ctx.fail(f"No such command {name!r}. Did you mean {', '.join(map(repr, close))}?")
        return super().resolve_command(ctx, args)


def load_command(name: str) -> Any:
    """The click command for ``name``, after importing the module that registers it."""
    importlib.import_module(f"fortify.cli.{COMMANDS[name][0]}")
    command = typer.main.get_group(app).commands.get(name)
    if command is None:  # a table entry whose module does not register it: a bug, caught by the tests
        raise RuntimeError(f"fortify.cli.{COMMANDS[name][0]} does not register the command {name!r}")
    return command


def version_text() -> str:
    """``fortify 0.1.0 (torch 2.13.0+cpu, Python 3.11.2)``, read from package metadata: no torch import."""
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return f"fortify {__version__} (torch {torch_version}, Python {platform.python_version()})"


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(version_text() + "\n")
        raise typer.Exit()


app = typer.Typer(
    name="fortify",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="print the fortify, torch and Python versions",
        ),
    ] = False,
) -> None:
    """Attack, evaluate, harden, certify and gate PyTorch classifiers.

    Every command has its own --help, with every default and every choice.

    Exit codes: 0 success, 1 a failed check (gate, data verify), 2 bad usage or input, 130 interrupted.
    """
