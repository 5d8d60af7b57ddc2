"""Ranks started by `fortify train --nproc` get their arguments from the environment, not torchrun's
command line (whose parser took fortify's `--n` for an abbreviation of its own options)."""

from __future__ import annotations

import sys

import pytest

from fortify.cli import main as cli


def test_a_rank_reads_its_arguments_from_the_environment(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["fortify"])
    monkeypatch.setenv(cli.RANK_ARGV, '["data", "list"]')
    assert cli.main() == 0
    assert "fashion-mnist" in capsys.readouterr().out
    assert cli.RANK_ARGV not in __import__("os").environ  # consumed: not inherited by its children


def test_a_malformed_rank_argument_list_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["fortify"])
    monkeypatch.setenv(cli.RANK_ARGV, '{"not": "a list"}')
    with pytest.raises(SystemExit, match="JSON list of strings"):
        cli.main()
