"""The API reference (``make docs``: MkDocs + mkdocstrings, built with --strict in CI) covers every public
sub-package, and every page it lists exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import fortify

ROOT = Path(__file__).resolve().parents[1]
COMPAT = {"blackbox", "track"}
"""Old module paths, thin re-exports documented under their new homes."""


def _documented() -> set[str]:
    found = set()
    for page in (ROOT / "docs" / "reference").glob("*.md"):
        found |= set(re.findall(r"^::: (fortify[\w.]*)$", page.read_text(encoding="utf-8"), re.M))
    return found


def test_every_public_subpackage_has_a_reference_page():
    documented = _documented()
    missing = [
        name for name in fortify._SUBPACKAGES if name not in COMPAT and f"fortify.{name}" not in documented
    ]
    assert not missing, f"no `::: fortify.NAME` in docs/reference/ for {missing}"
    assert "fortify" in documented


def test_every_page_in_the_navigation_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages: list[str] = []

    def walk(node):
        if isinstance(node, str):
            pages.append(node)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)

    walk(config["nav"])
    assert pages and all((ROOT / "docs" / page).is_file() for page in pages)
    listed = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert listed == set(pages), "a page in docs/ is not in mkdocs.yml's nav, or the other way round"
