"""`fortify gate`: check Results against a release policy; exit 0 pass, 1 fail, 2 bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fortify._files import atomic_write_text
from fortify.cli.app import app
from fortify.cli.common import check_outputs
from fortify.cli.render import console
from fortify.gate import GateOutcome, check, junit_xml, load_policy
from fortify.result import Result

EXIT_FAILED = 1


def outcome_table(outcome: GateOutcome, title: str) -> Table:
    """One row per check with its verdict in green or red (evidence is printed below the table)."""
    table = Table(title=title)
    table.add_column("check")
    table.add_column("measured", justify="right", no_wrap=True)
    table.add_column("required", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for item in outcome.checks:
        verdict = "[bold green]PASS[/]" if item.passed else "[bold red]FAIL[/]"
        table.add_row(item.name, item.measured, item.required, verdict)
    return table


def print_details(outcome: GateOutcome) -> None:
    for item in outcome.checks:
        if item.detail:
            colour = "green" if item.passed else "red"
            console.print(f"[{colour}]{escape(item.name)}[/]: {escape(item.detail)}", highlight=False)


@app.command("gate")
def gate_command(
    results: Annotated[list[Path], typer.Argument(help="Result JSON file(s) of the candidate model")],
    policy: Annotated[Path, typer.Option(help="policy YAML with the thresholds (see `fortify.gate`)")],
    baseline: Annotated[
        Path | None, typer.Option(help="Result JSON of the released model, for relative checks")
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="also write the checks as JUnit XML here")] = None,
) -> None:
    """Pass or fail a release: thresholds on clean/robust accuracy, attack success, latency, diagnostics."""
    check_outputs(junit=junit)
    rules = load_policy(policy)
    loaded = [Result.load(str(path)) for path in results]
    old = Result.load(str(baseline)) if baseline is not None else None
    outcome = check(rules, loaded, old)
    console.print(outcome_table(outcome, f"release gate: {policy.name}"))
    print_details(outcome)
    if junit is not None:
        atomic_write_text(junit, junit_xml(outcome))
    if outcome.passed:
        console.print(f"[bold green]GATE PASSED[/]: {len(outcome.checks)} checks")
        return
    console.print(f"[bold red]GATE FAILED[/]: {len(outcome.failures)} of {len(outcome.checks)} checks failed")
    raise typer.Exit(EXIT_FAILED)
