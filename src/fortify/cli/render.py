"""Rich rendering of results for the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # `fortify --help` imports this module: no Result (and no torch) at import time
    from fortify.result import Result

console = Console()
err_console = Console(stderr=True)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def results_table(results: Sequence[Result], title: str) -> Table:
    """One row per result (e.g. per eps): clean, each attack alone, worst case, time."""
    attack_names: list[str] = []
    for result in results:
        for record in result.per_attack:
            if record.name not in attack_names:
                attack_names.append(record.name)
    table = Table(title=title)
    table.add_column("threat")
    table.add_column("clean", justify="right")
    for name in attack_names:
        table.add_column(name.upper(), justify="right")
    table.add_column("robust (worst case)", justify="right", style="bold")
    table.add_column("attack success", justify="right")
    table.add_column("time", justify="right")
    for result in results:
        by_name = {r.name: r for r in result.per_attack}
        threat = f"{result.threat.norm} {result.threat.eps:g}" if result.threat else "—"
        cells = [
            pct(by_name[n].accuracy if by_name[n].accuracy is not None else by_name[n].cumulative_accuracy)
            if n in by_name
            else "—"
            for n in attack_names
        ]
        table.add_row(
            threat,
            pct(result.clean_accuracy),
            *cells,
            pct(result.robust_accuracy),
            pct(result.attack_success_rate),
            f"{result.timing.get('total_s', 0.0):.1f}s",
        )
    return table


def print_diagnostics(result: Result) -> None:
    """Failed checks on stderr: of the evaluation (the number may be an overestimate) or findings about
    the model (e.g. it masks gradients, which the evaluation compensated for); and a smoke-test note."""
    for diag in result.diagnostics:
        if not diag.passed and diag.scope == "model":
            err_console.print(f"[bold red]MODEL FINDING[/]: {diag.name}: {diag.evidence}", soft_wrap=True)
        elif not diag.passed:
            err_console.print(f"[bold red]UNRELIABLE[/]: {diag.name}: {diag.evidence}", soft_wrap=True)
    if result.smoke_test:
        err_console.print(
            f"note: suite {result.suite!r} is a smoke test, not release evidence: use --suite standard "
            "(or strong) before fortify gate",
            soft_wrap=True,
        )
