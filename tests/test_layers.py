"""The import graph runs one way: types -> threat -> model -> result -> attacks -> evaluation / training /
certify / defenses / detect -> runtime -> service; report and gate read ``result`` only; nothing imports
the CLI; no package imports another that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fortify

SRC = Path(fortify.__file__).parent

RANK = {
    "types": 0,
    "_validate": 0,
    "_registry": 0,
    "_version": 0,
    "_files": 0,
    "_untrusted": 0,
    "data": 1,
    "threat": 1,
    "model": 2,
    "zoo": 3,
    "result": 3,
    "attacks": 4,
    "evaluation": 5,
    "training": 5,
    "certify": 5,
    "defenses": 5,
    "detect": 5,
    "testing": 6,
    "audits": 6,
    "runtime": 6,
    "scale": 7,
    "service": 7,
    "report": 8,
    "gate": 8,
    "cli": 9,
}
"""Packages of equal rank may import each other, as long as no two import each other back."""

READ_RESULT_ONLY = {"report", "gate"}
MAY_READ = {"result", "types", "_validate", "_version", "_files", "_untrusted"}

COMPAT = {
    "fortify": None,  # the package root re-exports everything
    "fortify.blackbox": None,  # old module paths, kept as thin re-exports
    "fortify.threat_sparse": None,
    "fortify.result_gallery": None,
    "fortify.track": None,
    "fortify.progress": None,
    "fortify.report.readers": None,
}
LAZY_COMPAT = {("fortify.report", "fortify.evaluation.replay")}
"""``ft.report.gallery_adversarials`` resolves on first use to its new home in evaluation."""


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "fortify" or name.startswith("fortify.")}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


MODULES = _modules()
EDGES = {
    (name, imported)
    for name, path in MODULES.items()
    if name not in COMPAT
    for imported in _imports(path)
    if imported in MODULES and (name, imported) not in LAZY_COMPAT
}


def test_every_package_has_a_rank():
    assert {_package(m) for m in MODULES if m not in COMPAT} - {None} <= set(RANK)


@pytest.mark.parametrize("name", sorted({n for n, _ in EDGES}))
def test_imports_point_down_the_layers(name):
    source = _package(name)
    wrong = sorted(
        imported
        for mod, imported in EDGES
        if mod == name
        and _package(imported) not in (None, source)
        and (
            RANK[_package(imported)] > RANK[source]
            or (source in READ_RESULT_ONLY and _package(imported) not in MAY_READ)
        )
    )
    assert not wrong, f"{name} imports upwards or sideways: {wrong}"


def test_nothing_outside_the_cli_imports_it():
    offenders = sorted(f"{m} -> {i}" for m, i in EDGES if _package(i) == "cli" and _package(m) != "cli")
    assert not offenders


def test_no_two_packages_import_each_other():
    graph: dict[str, set[str]] = {}
    for mod, imported in EDGES:
        a, b = _package(mod), _package(imported)
        if a and b and a != b:
            graph.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if reaches(b, a, {b}))
    assert not cycles
