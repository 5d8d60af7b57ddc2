"""Entry point of the `fortify` command: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import sys

from fortify.cli import data_cmd, demo_cmd, evaluate_cmd, train_cmd  # noqa: F401  (commands register on import)
from fortify.cli.app import app
from fortify.cli.render import err_console
from fortify.types import FortifyError

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, prog_name="fortify", standalone_mode=False)
    except FortifyError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except Exception as exc:  # click's usage errors carry their own exit code
        import click

        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            err_console.print("aborted")
            return 130
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
