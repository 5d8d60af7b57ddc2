"""Entry point of the `fortify` command: user errors become one line on stderr and exit code 2.

Command modules are imported when their command runs (``fortify.cli.app.COMMANDS``), so
``fortify --help`` and ``fortify --version`` never import torch.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from types import FrameType

import typer

from fortify.cli import progress
from fortify.cli.app import app
from fortify.cli.render import err_console
from fortify.types import FortifyError

EXIT_USAGE = 2
ARGS: list[str] = []
"""The arguments of the command being run (``fortify train --nproc`` relaunches them under torchrun)."""
OPTIONAL_VALUES = {"--ray": "local"}
"""Options whose value may be left out (``--ray`` alone, ``--ray ADDRESS``): the value they take then."""


RANK_ARGV = "FORTIFY_RANK_ARGV"
"""Set by ``fortify.scale.launch`` for the ranks it starts: their arguments, as a JSON list."""


def _rank_argv(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SystemExit(f"error: {RANK_ARGV} must be a JSON list of strings")
    return value


def with_optional_values(argv: list[str]) -> list[str]:
    """``argv`` with the implied value after each option of ``OPTIONAL_VALUES`` given without one
    (at the end, or followed by another option); ``--`` ends the options."""
    out: list[str] = []
    for k, arg in enumerate(argv):
        out.append(arg)
        if arg == "--":
            return out + argv[k + 1 :]
        following = argv[k + 1] if k + 1 < len(argv) else None
        if arg in OPTIONAL_VALUES and (following is None or following.startswith("-")):
            out.append(OPTIONAL_VALUES[arg])
    return out


def _terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so a write in progress removes its temporary file."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 success, 1 failed check, 2 bad usage or input,
    130 interrupted by SIGINT or SIGTERM). Writes are atomic (``fortify._files``): an interrupted
    command leaves its previous output, never a partial one."""
    if argv is None:  # the `fortify` process itself; in-process callers keep their own handlers
        signal.signal(signal.SIGTERM, _terminated)
    progress.configure()  # each command chooses its own progress output (--progress, --quiet)
    args = with_optional_values(sys.argv[1:] if argv is None else list(argv))
    if argv is None and not args and RANK_ARGV in os.environ:  # a rank started by `train --nproc`
        args = _rank_argv(os.environ.pop(RANK_ARGV))
    ARGS[:] = args
    try:
        outcome = app(args=args, prog_name="fortify", standalone_mode=False)
    except FortifyError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True, markup=True)
        return EXIT_USAGE
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        return 130
    except Exception as exc:
        # click's usage errors (bad option, missing argument) know how to show themselves
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            return code
        raise
    return outcome if isinstance(outcome, int) else 0


if __name__ == "__main__":
    sys.exit(main())
