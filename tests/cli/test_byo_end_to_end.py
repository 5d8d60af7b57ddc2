"""Issue 16's "done means": a user's own model in the user's own package and a folder of PNGs are
trained, evaluated and gated from the ``fortify`` command, with progress readable in a CI log (stderr
is a pipe, not a terminal)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

USER_PACKAGE = """
from torch import nn


def small_cnn(in_channels: int = 3, width: int = 8, num_classes: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(width * 4, num_classes),
    )
"""


def _png_folder(root: Path, per_class: int = 30) -> Path:
    """Four classes of 3 x 12 x 12 RGB images: class k is bright in quadrant k, on noise."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(["north", "east", "south", "west"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 90, size=(12, 12, 3), dtype=np.uint8)
            r, c = divmod(k, 2)
            pixels[r * 6 : r * 6 + 6, c * 6 : c * 6 + 6] += 150
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture
def fortify_exe():
    exe = shutil.which("fortify", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the fortify console script is not installed in this environment")
    return exe


def _run(exe: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_own_model_and_png_folder_train_evaluate_and_gate_from_the_cli(fortify_exe, tmp_path):
    (tmp_path / "userpkg").mkdir()
    (tmp_path / "userpkg" / "__init__.py").write_text("")
    (tmp_path / "userpkg" / "nets.py").write_text(textwrap.dedent(USER_PACKAGE))
    _png_folder(tmp_path / "pngs")
    model = ["--model-arg", "width=8"]
    data = ["--data", "folder:pngs", "--threads", "1"]

    train = _run(
        fortify_exe,
        tmp_path,
        "train",
        "--arch",
        "userpkg.nets:small_cnn",
        *model,
        *data,
        "--epochs",
        "8",
        "--lr",
        "0.01",
        "--batch-size",
        "16",
        "--test-n",
        "24",
        "--out",
        "run",
    )
    assert train.returncode == 0, train.stderr
    assert "train" in train.stderr and "(100%)" in train.stderr  # plain progress lines in the log

    weights = "run/model.safetensors"
    evaluate = _run(
        fortify_exe,
        tmp_path,
        "evaluate",
        "--model",
        "userpkg.nets:small_cnn",
        "--weights",
        weights,
        *model,
        *data,
        "--eps",
        "0.01",
        "--n",
        "24",
        "--suite",
        "standard",
        "--out",
        "eval.json",
    )
    assert evaluate.returncode == 0, evaluate.stderr
    assert "evaluating:" in evaluate.stderr and "done in" in evaluate.stderr

    (tmp_path / "policy.yaml").write_text("min_clean_accuracy: 0.75\n")
    gate = _run(fortify_exe, tmp_path, "gate", "--policy", "policy.yaml", "eval.json")
    assert gate.returncode == 0, gate.stdout + gate.stderr

    # the model file alone never runs the user's code
    refused = _run(fortify_exe, tmp_path, "evaluate", "--model", weights, *data, "--n", "8")
    assert refused.returncode == 2 and "--model userpkg.nets:small_cnn" in refused.stderr
