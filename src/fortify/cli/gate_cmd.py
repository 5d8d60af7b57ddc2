"""`fortify gate`: check Results against a release policy; exit 0 pass, 1 fail, 2 bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fortify._files import atomic_write_text, read_limited
from fortify.cli.app import app
from fortify.cli.common import check_outputs
from fortify.cli.render import console
from fortify.gate import GateOutcome, check, junit_xml, load_policy
from fortify.result import Result
from fortify.result.gate_record import GatedFile
from fortify.result.schema import MAX_RESULT_BYTES

EXIT_FAILED = 1


def read_result(path: Path) -> tuple[Result, GatedFile]:
    """The Result in ``path`` and the SHA-256 of the very bytes it was parsed from."""
    data = read_limited(path, "result file", MAX_RESULT_BYTES)
    result = Result.from_json(data, source=f"result file {path}")
    return result, GatedFile(path=str(path)[:2000], sha256=hashlib.sha256(data).hexdigest())


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
    out: Annotated[
        Path | None,
        typer.Option(
            help="also write the verdict as JSON here, for `fortify report RESULTS --gate FILE` to show"
        ),
    ] = None,
) -> None:
    """Pass or fail a release: thresholds on clean/robust accuracy, attack success, latency, diagnostics."""
    check_outputs(junit=junit, out=out)
    rules = load_policy(policy)
    read = [read_result(path) for path in results]
    old = read_result(baseline) if baseline is not None else None
    outcome = check(rules, [r for r, _ in read], old[0] if old is not None else None)
    console.print(outcome_table(outcome, f"release gate: {policy.name}"))
    print_details(outcome)
    if junit is not None:
        atomic_write_text(junit, junit_xml(outcome))
    if out is not None:
        record = outcome.record(policy.name, [f for _, f in read], old[1] if old is not None else None)
        record.save(out)
    if outcome.passed:
        console.print(f"[bold green]GATE PASSED[/]: {len(outcome.checks)} checks")
        return
    console.print(f"[bold red]GATE FAILED[/]: {len(outcome.failures)} of {len(outcome.checks)} checks failed")
    raise typer.Exit(EXIT_FAILED)
