"""Progress is never silent in a log: plain lines when stderr is not a terminal, chosen by --progress."""

from __future__ import annotations

import io

import pytest

from fortify.cli import progress
from fortify.cli.main import main
from fortify.types import FortifyError


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_say_stage_count_rate_and_eta_every_few_seconds():
    stream, clock = io.StringIO(), _Clock()
    ticker = progress.PlainTicker("PGD", 100, stream, every=5.0, clock=clock)
    for _ in range(10):
        clock.now += 1.0
        ticker.advance(5, status="robust 80%")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "PGD: 5/100 (5%) 5/s ETA 19s robust 80%",
        "PGD: 30/100 (30%) 5/s ETA 14s robust 80%",
    ]
    clock.now += 10
    ticker.advance(50)
    assert stream.getvalue().splitlines()[-1] == "PGD: 100/100 (100%) 5/s done in 20s robust 80%"
    ticker.finish()  # the last line is not repeated
    assert len(stream.getvalue().splitlines()) == 3


def test_a_stage_that_stops_early_says_where():
    stream, clock = io.StringIO(), _Clock()
    ticker = progress.PlainTicker("train", 10, stream, clock=clock)
    ticker.advance(1)
    clock.now += 1
    ticker.advance(3)
    ticker.finish()
    assert stream.getvalue().splitlines()[-1].startswith("train: 4/10 (40%)")


@pytest.fixture(scope="module")
def model_file(tiny_cnn, tmp_path_factory):
    import fortify as ft

    clf, _, _ = tiny_cnn
    return ft.zoo.save(clf, tmp_path_factory.mktemp("m") / "tiny.safetensors", dataset="synthetic")


def _evaluate(model_file, *flags):
    args = ["evaluate", "--model", str(model_file), "--data", "synthetic", "--n", "8", "--eps", "0.05"]
    return main([*args, "--threads", "1", *flags])


def test_evaluate_in_a_log_prints_plain_progress(model_file, capsys):
    assert _evaluate(model_file) == 0  # capsys: stderr is not a terminal
    err = capsys.readouterr().err
    assert "evaluating: 2/2 (100%)" in err and "done in" in err


@pytest.mark.parametrize("flags", [["--quiet"], ["--progress", "none"]])
def test_quiet_and_none_print_no_progress(model_file, capsys, flags):
    assert _evaluate(model_file, *flags) == 0
    assert "evaluating:" not in capsys.readouterr().err


def test_an_unknown_progress_mode_is_one_line(model_file, capsys):
    assert _evaluate(model_file, "--progress", "loud") == 2
    err = capsys.readouterr().err.strip()
    assert "--progress must be one of auto, rich, plain, none" in err and len(err.splitlines()) == 1


def test_configure_refuses_unknown_modes():
    with pytest.raises(FortifyError):
        progress.configure("fancy")
