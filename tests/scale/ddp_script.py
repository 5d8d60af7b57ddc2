"""Run by ``torchrun`` in the DDP tests: train the tiny CNN on the synthetic set and write this rank's
weights and loss curve to ``OUT/rank-R.safetensors`` / ``OUT/rank-R.json`` (``python ddp_script.py OUT
METHOD``; without torchrun it is the single-process run, written as rank 0)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

import fortify as ft
from fortify.training.distributed import init_from_env


def main(out: Path, method: str) -> None:
    torch.set_num_threads(1)
    init_from_env()
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    x, y = ft.data.load("synthetic", "train")
    torch.manual_seed(0)
    clf = ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), num_classes=4)
    history = ft.train(
        clf, (x[:256], y[:256]), method=method, threat=ft.Linf(0.1), epochs=3, batch_size=32, lr=3e-3, seed=0
    )
    state = {k: v.contiguous() for k, v in clf.module.state_dict().items()}
    save_file(state, str(out / f"rank-{rank}.safetensors"))
    (out / f"rank-{rank}.json").write_text(json.dumps([e.loss for e in history.epochs]))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
