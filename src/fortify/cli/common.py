"""Helpers shared by CLI commands: threads, devices, model loading with user-facing errors."""

from __future__ import annotations

import os

import torch

from fortify.types import FortifyError


def setup_torch(threads: int | None, device: str) -> torch.device:
    if threads is not None:
        if threads < 1:
            raise FortifyError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    else:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FortifyError(f"--device {device}: CUDA is not available on this machine")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise FortifyError(f"--device {device!r} is not a valid torch device") from exc
