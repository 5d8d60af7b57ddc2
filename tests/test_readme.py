"""README.md's code pastes: every python block runs (the quickstart's session on real Fashion-MNIST
under ``-m slow``), uses only names it or its session defines and fortify names that exist, with
arguments its callees take; every ``fortify`` command line names real subcommands and options; every
repository path it mentions exists. Reading rules: ``tests/readme_blocks.py``."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
import time

import pytest
import typer

import fortify
from fortify.cli.app import COMMANDS, app
from tests import readme_blocks as R
from tests.conftest import needs_fashion_mnist

QUICKSTART = R.quickstart_session()[0]
STANDALONE = [b for b in R.python_blocks() if b.standalone and b != QUICKSTART]
FILES = [b for b in R.python_blocks() if b.file]


def _resolve(dotted: str):
    obj = fortify
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def test_the_readme_has_the_blocks_these_tests_read():
    assert len(R.quickstart_session()) >= 5 and STANDALONE and FILES
    assert "import fortify as ft" in R.quickstart_session()[0].code


@pytest.mark.parametrize(
    "session", [R.quickstart_session(), *[[b] for b in STANDALONE]], ids=lambda s: str(s[0])
)
def test_every_name_a_block_reads_is_defined_in_its_session(session):
    assert not R.undefined(session), "undefined (see the reading rules in tests/readme_blocks.py)"


def test_every_fortify_name_and_keyword_in_the_python_blocks_exists():
    problems, aliases = [], {}
    for block in R.python_blocks():
        tree = ast.parse(block.code)
        for _, dotted in R.fortify_chains(tree, aliases):
            try:
                _resolve(dotted)
            except AttributeError:
                problems.append(f"{block}: {dotted} does not exist")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fortify"):
                module = importlib.import_module(node.module)
                missing = [a.name for a in node.names if not _importable(module, a.name)]
                problems += [f"{block}: {node.module}.{name} does not exist" for name in missing]
            if isinstance(node, ast.Call):
                problems += _bad_call(block, node, aliases)
    assert not problems, "\n".join(problems)


def _importable(module, name: str) -> bool:
    if hasattr(module, name):
        return True
    try:
        importlib.import_module(f"{module.__name__}.{name}")
    except ImportError:
        return False
    return True


def _bad_call(block: R.Block, call: ast.Call, aliases: dict[str, str]) -> list[str]:
    dotted = R._dotted(call.func, aliases)
    if dotted is None or any(isinstance(a, ast.Starred) for a in call.args):
        return []
    try:
        target = _resolve(dotted)
        signature = inspect.signature(target)
    except (AttributeError, TypeError, ValueError):
        return []  # a missing name is reported above; builtins without signatures are not checked
    try:
        signature.bind(*call.args, **{k.arg: k.value for k in call.keywords if k.arg})
    except TypeError as exc:
        return [f"{block}: {dotted}(...): {exc}"]
    return []


def _command_tree():
    for module in sorted({module for module, _ in COMMANDS.values()}):
        importlib.import_module(f"fortify.cli.{module}")
    return typer.main.get_group(app)


def _check_command(group, command: R.CommandLine) -> list[str]:
    words = [w.strip("[]") for w in command.words]
    current, path = group, []
    while hasattr(current, "commands") and words and not words[0].startswith("-"):
        names = words.pop(0).split("|")  # `fortify audit membership|extraction` names both
        if any(n not in current.commands for n in names):
            return [f"{command.where}: no command `fortify {' '.join([*path, *names])}`"]
        if len(names) > 1:
            return [
                p
                for n in names
                for p in _check_command(group, R.CommandLine((*path, n, *words), command.where))
            ]
        path.append(names[0])
        current = current.commands[names[0]]
    if hasattr(current, "commands") and words and not words[0].startswith("-"):
        return [f"{command.where}: `fortify {' '.join(path)}` needs a subcommand"]
    known = {"--help"} | {opt for p in current.params for opt in (*p.opts, *getattr(p, "secondary_opts", []))}
    options = {w.split("=")[0] for w in words if re.match(r"^--?[a-z]", w)}
    return [f"{command.where}: `fortify {' '.join(path)}` has no option {o}" for o in sorted(options - known)]


def test_every_fortify_command_line_names_real_commands_and_options():
    group, commands = _command_tree(), R.fortify_commands()
    assert len(commands) > 30
    problems = [p for command in commands for p in _check_command(group, command)]
    assert not problems, "\n".join(problems)


def test_every_repository_path_the_readme_mentions_exists():
    text = R.README.read_text(encoding="utf-8")
    paths = set(re.findall(r"(?<![\w./-])((?:examples|bench|tests|scripts|docs|src)/[\w./-]*\w)", text))
    assert paths
    missing = sorted(p for p in paths if not (R.ROOT / p).exists())
    assert not missing, missing


def _run(blocks: list[R.Block], tmp_path, monkeypatch) -> None:
    """Run ``blocks`` in one namespace, in a fresh folder holding the README's files, as a user would."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for block in FILES:
        target = tmp_path / block.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code, encoding="utf-8")
    before = set(sys.modules)
    namespace: dict = {"__name__": "__main__"}
    try:
        for block in blocks:
            started = time.perf_counter()
            exec(compile(block.code, str(block), "exec"), namespace)  # noqa: S102 (the README's own code)
            print(f"{block}: {time.perf_counter() - started:.1f}s")
    finally:
        for name in set(sys.modules) - before:
            if getattr(sys.modules[name], "__file__", "") and str(tmp_path) in sys.modules[name].__file__:
                del sys.modules[name]


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, marks=[pytest.mark.slow] if "slow" in b.tags else []) for b in STANDALONE],
    ids=str,
)
def test_a_standalone_block_runs(block, tmp_path, monkeypatch):
    _run([block], tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@needs_fashion_mnist
def test_the_quickstart_and_every_block_continuing_it_run(tmp_path, monkeypatch):
    _run(R.quickstart_session(), tmp_path, monkeypatch)
