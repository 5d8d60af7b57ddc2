"""Reading README.md's code the way a user pastes it: fenced blocks, the sessions python blocks run in,
the names they use, and the `fortify` command lines of bash blocks and inline code.

Reading rules (README.md says them under "Python quickstart"):

- a python block whose first line is ``# file: PATH`` is a file the user creates (a module of their
  own package); it is written to ``PATH`` before any block runs;
- a python block containing ``import fortify as ft`` stands alone;
- every other python block continues from the quickstart (the first python block), in order, in one
  session, so it may use the names the quickstart and the blocks before it defined.
"""

from __future__ import annotations

import ast
import builtins
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FILE_LINE = re.compile(r"^# file: (\S+)\s*$")
DIRECTIVE = re.compile(r"^<!-- test: ([\w ,-]+) -->$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, its code, the README line its code starts on, and the
    words of a ``<!-- test: ... -->`` comment right above its fence (e.g. ``slow``)."""

    lang: str
    code: str
    line: int
    tags: frozenset[str] = frozenset()

    @property
    def file(self) -> str | None:
        first = self.code.splitlines()[0] if self.code else ""
        match = FILE_LINE.match(first)
        return match.group(1) if match else None

    @property
    def standalone(self) -> bool:
        return self.file is None and "import fortify as ft" in self.code

    def __str__(self) -> str:
        return f"README.md:{self.line}"


def blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of the README, in order."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        tags: frozenset[str] = frozenset()
        if i > 0 and (directive := DIRECTIVE.match(lines[i - 1].strip())):
            tags = frozenset(w.strip() for w in re.split(r"[ ,]+", directive.group(1)) if w.strip())
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        found.append(Block(fence.group(1), "\n".join(lines[i + 1 : end]) + "\n", i + 2, tags))
        i = end + 1
    return found


def python_blocks() -> list[Block]:
    return [b for b in blocks() if b.lang == "python"]


def quickstart_session() -> list[Block]:
    """The quickstart and every python block that continues from it, in README order."""
    code = [b for b in python_blocks() if b.file is None]
    return [code[0], *[b for b in code[1:] if not b.standalone]]


def bound_names(tree: ast.AST) -> set[str]:
    """Every name a piece of code binds anywhere: assignments, imports, defs, arguments, loop and
    comprehension targets, ``with ... as``, ``except ... as``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def used_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def undefined(session: list[Block]) -> list[str]:
    """``"README.md:LINE: name"`` for every name a block reads that neither it, a block before it in
    its session, nor Python itself defines."""
    known = set(dir(builtins))
    problems = []
    for block in session:
        tree = ast.parse(block.code, filename=str(block))
        known |= bound_names(tree)
        problems += [f"{block}: {name}" for name in sorted(used_names(tree) - known)]
    return problems


def fortify_chains(tree: ast.AST, aliases: dict[str, str]) -> Iterator[tuple[ast.AST, str]]:
    """``(node, "ft.attacks.PGD")`` for every attribute chain rooted at ``ft`` or at a name assigned
    from one (``d = ft.defenses`` makes ``d.JPEG`` read ``ft.defenses.JPEG``); ``aliases`` collects
    those assignments as it goes."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            dotted = _dotted(node.value, aliases)
            if dotted is not None and "." in dotted:
                aliases[node.targets[0].id] = dotted
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node, aliases)
            if dotted is not None:
                yield node, dotted


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    root = "ft" if node.id == "ft" else aliases.get(node.id)
    return None if root is None else ".".join([root, *reversed(parts)])


@dataclass(frozen=True)
class CommandLine:
    """One ``fortify ...`` invocation as written in the README (placeholders and ``[...]`` kept)."""

    words: tuple[str, ...]
    where: str


def fortify_commands() -> list[CommandLine]:
    """Every ``fortify`` command line of the README's bash blocks and inline code spans."""
    text = README.read_text(encoding="utf-8")
    found = []
    for block in blocks(text):
        if block.lang not in {"bash", "sh", ""}:
            continue
        joined = block.code.replace("\\\n", " ")
        for offset, line in enumerate(joined.splitlines()):
            found += _commands_in(line, f"README.md:{block.line + offset}")
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```") or line.startswith("    "):
            continue
        for span in re.findall(r"`(fortify [^`]+)`", line):
            found += _commands_in(span.replace("\\|", "|"), f"README.md:{number}")
    return found


def _commands_in(line: str, where: str) -> list[CommandLine]:
    line = re.sub(r"^\s*(FORTIFY_\w+=\S+\s+)+", "", line)  # an environment prefix
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        words = line.split()
    commands, current = [], None
    for word in words:
        if word in {"&&", "||", ";", "|"}:
            current = None
            continue
        if word == "fortify" and current is None:
            current = []
            commands.append(current)
        elif current is not None:
            current.append(word)
    return [CommandLine(tuple(c), where) for c in commands if c]
