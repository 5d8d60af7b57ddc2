"""The torchrun launcher: the same command in ``N`` processes of one machine, as one DDP group.

``fortify train --nproc N`` calls ``launch``; each process then joins the group
(``fortify.training.distributed.init_from_env``) and ``ft.train`` trains data-parallel. Several
machines: run ``torchrun --nnodes ... -m fortify.cli.main train ...`` on each (README, "Running on a
cluster").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from fortify.types import FortifyError


def check_nproc(nproc: int, device: torch.device) -> None:
    """A one-line ``FortifyError`` unless ``nproc`` processes fit this machine: at most one per GPU on
    CUDA, at most one per CPU core otherwise."""
    if device.type == "cuda":
        have, what = torch.cuda.device_count(), "GPUs"
    else:
        have, what = os.cpu_count() or 1, "CPU cores"
    if not 1 <= nproc <= have:
        raise FortifyError(f"--nproc {nproc}: this machine has {have} {what} (one process each at most)")


ARGV_VARIABLE = "FORTIFY_RANK_ARGV"
"""The environment variable that carries a relaunched command's arguments to every rank (JSON list)."""


def launch(nproc: int, args: list[str]) -> int:
    """Run ``python -m fortify.cli.main ARGS`` in ``nproc`` processes under torchrun (a standalone
    rendezvous on this machine) and return its exit code (130 when interrupted; torchrun stops every
    process when one fails or on Ctrl-C)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    command += ["-m", "fortify.cli.main"]
    # the arguments travel in the environment: torchrun's own parser would take fortify's options
    # (--n for one) for abbreviations of its own, even after the module
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        ARGV_VARIABLE: json.dumps(args),
    }
    try:
        return subprocess.run(command, env=env, check=False).returncode
    except KeyboardInterrupt:
        return 130


def without_option(args: list[str], option: str) -> list[str]:
    """``args`` without ``option VALUE`` / ``option=VALUE``."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out
