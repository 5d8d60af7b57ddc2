"""Data-parallel training: 2 CPU processes under torchrun (gloo) end with identical weights on both
ranks and the loss curve of one process with the same global batch; `fortify train --nproc` launches
it, writes from rank 0 only, and refuses more processes than the machine has."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fortify.cli.main import main
from tests.scale import ddp_script

FORTIFY = str(Path(sys.executable).with_name("fortify"))
SCRIPT = Path(ddp_script.__file__)
ROOT = SCRIPT.parents[2]


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def _two_ranks_against_one(tmp_path: Path, method: str) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    ddp_script.main(one, method)
    done = _torchrun(str(SCRIPT), str(two), method, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = load_file(str(two / "rank-0.safetensors")), load_file(str(two / "rank-1.safetensors"))
    for name, tensor in rank0.items():
        assert torch.equal(tensor, rank1[name]), f"{name} differs between the ranks"
    single = json.loads((one / "rank-0.json").read_text())
    parallel = json.loads((two / "rank-0.json").read_text())
    assert parallel == json.loads((two / "rank-1.json").read_text())
    assert len(parallel) == len(single) == 3
    assert parallel[-1] < parallel[0], "the loss must fall"
    for a, b in zip(single, parallel, strict=True):
        assert b == pytest.approx(a, rel=0.02), f"loss curves differ: {single} vs {parallel}"


def test_two_processes_hold_identical_weights_and_the_single_process_loss_curve(tmp_path):
    _two_ranks_against_one(tmp_path, "pgd")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fast", "trades"])
def test_fast_and_trades_in_two_processes_match_one(tmp_path, method):
    _two_ranks_against_one(tmp_path, method)


@pytest.mark.slow
def test_fortify_train_nproc_writes_from_rank_0_and_matches_one_process(tmp_path):
    args = ["train", "--data", "synthetic", "--arch", "cnn-tiny", "--epochs", "2", "--batch-size", "32"]
    args += ["--method", "fast", "--eps", "0.1", "--progress", "none"]
    done = subprocess.run(
        [FORTIFY, *args, "--nproc", "2", "--out", str(tmp_path / "two"), "--checkpoint-every", "1"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    written = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert "model.safetensors" in written and "train.json" in written and "checkpoint.safetensors" in written
    assert not [name for name in written if name.startswith(".fortify-tmp")]
    assert main([*args, "--out", str(tmp_path / "one"), "--threads", "1"]) == 0
    curve = [json.loads((tmp_path / run / "train.json").read_text()) for run in ("one", "two")]
    losses = [[e["loss"] for e in c["sections"]["training"]["epochs"]] for c in curve]
    assert losses[1] == pytest.approx(losses[0], rel=0.05)
    assert curve[1]["sections"]["training"]["config"]["batch_size"] == 32


def test_more_processes_than_the_machine_has_is_one_line(capsys):
    too_many = str((os.cpu_count() or 1) + 1)
    assert main(["train", "--data", "synthetic", "--arch", "cnn-tiny", "--nproc", too_many]) == 2
    err = capsys.readouterr().err.strip()
    assert "--nproc" in err and len(err.splitlines()) == 1
