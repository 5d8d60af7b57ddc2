"""`fortify train --checkpoint-every 1` killed mid-run, then `--resume`: an uninterrupted run's weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fortify import zoo
from fortify.cli.main import main
from fortify.result import Result
from fortify.training.recipes import RECIPES, Recipe

RUN = [
    "train", "--data", "synthetic", "--arch", "cnn-tiny", "--method", "fast", "--eps", "0.1",
    "--epochs", "5", "--n", "352", "--batch-size", "16", "--val-n", "32", "--lr-schedule", "cosine",
    "--seed", "3", "--test-n", "32", "--threads", "1", "--quiet",
]  # fmt: skip


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _start(out: Path) -> subprocess.Popen[bytes]:
    code = "import sys; from fortify.cli.main import main; sys.exit(main())"
    args = [sys.executable, "-c", code, *RUN, "--checkpoint-every", "1", "--out", str(out)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def _wait_for(path: Path, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {path.name} appeared: {process.stdout.read().decode()}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {path.name} after {timeout} s")
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path: Path, signum: int) -> None:
    whole = tmp_path / "whole"
    assert main([*RUN, "--out", str(whole)]) == 0

    parted = tmp_path / "parted"
    process = _start(parted)
    _wait_for(parted / "checkpoint.safetensors", process)
    process.send_signal(signum)
    output = process.communicate(timeout=120)[0].decode()
    assert not (parted / "model.safetensors").exists(), "the run finished before the signal reached it"
    if signum == signal.SIGTERM:  # stopped at the next step, after writing its checkpoint
        assert process.returncode == 130, output
        assert f"fortify train --resume {parted}" in " ".join(output.split()), output
    else:
        assert process.returncode == -signal.SIGKILL

    assert main(["train", "--resume", str(parted), "--quiet", "--threads", "1"]) == 0
    expected, got = _weights(whole), _weights(parted)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_resume_refuses_new_options_a_folder_without_a_run_and_a_second_run_over_a_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    short = [*RUN[: RUN.index("--epochs")], "--epochs", "1", *RUN[RUN.index("--epochs") + 2 :]]
    assert main([*short, "--checkpoint-every", "1", "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--lr", "0.1"]) == 2
    assert "drop --lr" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "no train-command.json" in capsys.readouterr().err
    assert main([*short, "--checkpoint-every", "1", "--out", str(out)]) == 2
    assert "holds the checkpoint of another run" in capsys.readouterr().err
    (out / "train-command.json").write_text('{"epochs": {"nested": 1}}')
    assert main(["train", "--resume", str(out)]) == 2
    assert "does not hold the options" in capsys.readouterr().err


def test_a_recipe_runs_its_stages_and_resumes_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stages = (
        dict(method="fast", eps=0.1, epochs=1, n=96, val_n=16, test_n=16, batch_size=32),
        dict(method="pgd", eps=0.1, epochs=1, n=96, val_n=16, test_n=16, batch_size=32, steps=2),
    )
    tiny = Recipe("tiny", "for the test", "synthetic", "cnn-tiny", stages)
    monkeypatch.setitem(RECIPES, "tiny", tiny)
    out = tmp_path / "recipe"
    assert main(["train", "--recipe", "tiny", "--checkpoint-every", "1", "--out", str(out), "--quiet"]) == 0
    second = Result.load(str(out / "train.json"))
    assert second.sections["training"]["method"] == "pgd"
    assert (out / "model.safetensors").read_bytes() == (out / "stage-2" / "model.safetensors").read_bytes()
    fine_tuned = zoo.read_metadata(out / "stage-2" / "model.safetensors")
    assert fine_tuned["finetuned_from"] == str(out / "stage-1" / "model.safetensors")

    # stage 2 lost: --resume keeps stage 1 and trains stage 2 again, to the same weights
    before = _weights(out)
    (out / "stage-2" / "model.safetensors").unlink()
    (out / "stage-2" / "checkpoint.safetensors").unlink()
    stage_1 = (out / "stage-1" / "model.safetensors").stat().st_mtime_ns
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert (out / "stage-1" / "model.safetensors").stat().st_mtime_ns == stage_1
    after = _weights(out)
    assert all(torch.equal(before[k], after[k]) for k in before)

    assert main(["train", "--recipe", "tiny", "--epochs", "3", "--out", str(tmp_path / "x")]) == 2
    assert "sets the training options itself; drop --epochs" in capsys.readouterr().err
    assert main(["train", "--recipe", "nope", "--out", str(tmp_path / "y")]) == 2
