"""No write loses a good file: a process killed (SIGINT, SIGTERM, SIGKILL) at a random moment leaves
its output either as it was before or complete, never partial.

Two angles: a writer saving Results in a tight loop (so signals land inside writes, many times a
run), and ``fortify evaluate --out X`` itself, interrupted at random moments of its run. SIGINT and
SIGTERM also leave no temporary file behind; SIGKILL can leave one (``.fortify-tmp-*``, never X).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import fortify as ft
from tests.report.factories import make_result

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
FORTIFY = str(Path(sys.executable).with_name("fortify"))

WRITER = textwrap.dedent(
    """
    import sys
    from tests.report.factories import make_result

    big = make_result(n=3000, full=True)
    small = make_result(n=20)
    target = sys.argv[1]
    print("ready", flush=True)
    i = 0
    while True:
        (big if i % 2 else small).save(target)
        i += 1
    """
)


def _intact(target: Path, previous: bytes | None) -> None:
    """``target`` is the previous file, or absent if there was none, or a complete valid Result."""
    if not target.exists():
        assert previous is None, "the previous output was lost"
        return
    data = target.read_bytes()
    if data != previous:
        ft.Result.from_json(data)  # complete: parses and passes the evidence checks


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".fortify-tmp-")]


def _kill_writer(tmp_path: Path, sig: signal.Signals, runs: int) -> None:
    target = tmp_path / "result.json"
    make_result().save(str(target))
    rng = random.Random(int(sig))
    root = Path(__file__).resolve().parents[2]
    for _ in range(runs):
        previous = target.read_bytes()
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target)], cwd=root, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.5))
        child.send_signal(sig)
        child.wait(timeout=60)
        _intact(target, previous)
        for name in _leftovers(tmp_path):  # a bare writer has no SIGTERM handler; SIGKILL can't clean
            (tmp_path / name).unlink()


def test_a_writer_killed_inside_writes_never_leaves_a_partial_file(tmp_path):
    _kill_writer(tmp_path, signal.SIGKILL, runs=1)


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_a_writer_killed_by_any_signal_many_times_never_leaves_a_partial_file(tmp_path, sig):
    _kill_writer(tmp_path, sig, runs=8)


def _evaluate_killed(
    tmp_path: Path, model: Path, sig: signal.Signals, delay: float, previous: bytes | None
) -> None:
    target = tmp_path / "x.json"
    if previous is None:
        target.unlink(missing_ok=True)
    else:
        target.write_bytes(previous)
    args = [FORTIFY, "evaluate", "--model", str(model), "--data", "synthetic", "--n", "64"]
    child = subprocess.Popen(
        [*args, "--out", str(target), "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    time.sleep(delay)
    child.send_signal(sig)
    _, err = child.communicate(timeout=120)
    _intact(target, previous)
    if sig is not signal.SIGKILL:
        assert not _leftovers(tmp_path), "an interrupted write left its temporary file"
    if sig is signal.SIGTERM:  # (Ctrl-C while Python is still importing torch prints its own traceback)
        assert b"Traceback" not in err, err.decode()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    torch.manual_seed(0)
    ft.zoo.save(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), path)
    return path


def test_evaluate_interrupted_keeps_the_previous_result(tmp_path, model):
    previous = make_result().to_json().encode()
    _evaluate_killed(tmp_path, model, signal.SIGTERM, random.Random(0).uniform(1.0, 4.0), previous)


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_evaluate_killed_at_random_moments_never_leaves_a_partial_out(tmp_path, model, sig):
    rng = random.Random(int(sig))
    for run in range(6):
        previous = make_result().to_json().encode() if run % 2 else None
        _evaluate_killed(tmp_path, model, sig, rng.uniform(0.2, 12.0), previous)
        for name in _leftovers(tmp_path):
            (tmp_path / name).unlink()
    assert os.listdir(tmp_path) in ([], ["x.json"])
