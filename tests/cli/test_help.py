"""The command's own help: `fortify --help` and `--version` without importing torch, the lazy command
table in step with the commands, and every option of every command documented."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from importlib import metadata

import pytest
import typer

import fortify
from fortify.cli.app import COMMANDS, app
from fortify.cli.main import main


def _all_commands() -> typer.core.TyperGroup:
    for module in sorted({module for module, _ in COMMANDS.values()}):
        importlib.import_module(f"fortify.cli.{module}")
    return typer.main.get_group(app)


def _leaves(group, path=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _leaves(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_top_level_help_and_version_do_not_import_torch(args):
    code = (
        "import sys\nfrom fortify.cli.main import main\n"
        f"rc = main({args!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "sys.exit(rc)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    if args != ["--version"]:
        assert all(name in run.stdout for name in COMMANDS)


def test_version_names_fortify_torch_and_python(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"fortify {fortify.__version__} (torch {metadata.version('torch')}, Python ")
    assert metadata.version("fortify") == fortify.__version__  # pyproject reads fortify/_version.py


def test_command_table_matches_the_registered_commands():
    group = _all_commands()
    assert list(group.commands) and set(group.commands) == set(COMMANDS)
    for name, command in group.commands.items():
        module, short = COMMANDS[name]
        first = inspect.cleandoc(command.help or "").split("\n\n")[0].replace("\n", " ")
        assert first == short, f"fortify.cli.app.COMMANDS[{name!r}] is out of date"
        callback = getattr(command, "callback", None)
        if callback is not None and not hasattr(command, "commands"):
            assert callback.__module__ == f"fortify.cli.{module}", name


def test_every_option_of_every_command_has_help():
    missing = [
        f"fortify {name} {param.opts[0]}"
        for name, command in _leaves(_all_commands())
        for param in command.params
        if isinstance(param, typer.core.TyperOption) and not (param.help or "").strip()
    ]
    assert not missing, f"options without help: {missing}"


def _help_of(command_path: str, option: str) -> str:
    commands = dict(_leaves(_all_commands()))
    (param,) = [p for p in commands[command_path].params if option in getattr(p, "opts", [])]
    return param.help or ""


def test_choices_are_listed_and_split_and_seed_explained():
    from fortify.evaluation import suite_names
    from fortify.training import method_names

    method = _help_of("train", "--method")
    assert all(name in method for name in method_names()), method
    for command in ("evaluate", "sweep"):
        assert all(name in _help_of(command, "--suite") for name in suite_names())
    for command in ("evaluate", "sweep", "attack", "certify"):
        assert "test or train" in _help_of(command, "--split")
        assert "random" in _help_of(command, "--seed")
    assert "random" in _help_of("train", "--seed")


def test_a_misspelt_command_suggests_the_right_one(capsys):
    assert main(["evalute"]) == 2
    assert "Did you mean 'evaluate'" in capsys.readouterr().err


def test_a_command_runs_after_its_module_is_loaded_on_demand(tmp_path, capsys):
    assert main(["data", "list"]) == 0
    assert "fashion-mnist" in capsys.readouterr().out
