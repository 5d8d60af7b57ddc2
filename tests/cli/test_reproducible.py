"""`--seed` + `--threads` reproduce a run exactly: two processes running the same command on the same
model with the same seed and thread count write the same per-sample records, attack records,
diagnostics and adversarial points (only times and the creation stamp differ), and every Result
records the thread count and device it ran with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file

import fortify as ft

TIMES = {"time_s", "created_at", "timing"}
THREADS = min(2, os.cpu_count() or 1)
COMMON = ["--data", "synthetic", "--n", "32", "--eps", "0.2", "--seed", "7", "--device", "cpu"]


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _fortify(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fortify.cli.main", *args, "--threads", str(THREADS)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def model(tiny_cnn, tmp_path_factory) -> str:
    clf, _, _ = tiny_cnn
    return str(ft.zoo.save(clf, tmp_path_factory.mktemp("m") / "model.safetensors", dataset="synthetic"))


def test_the_same_seed_and_threads_reproduce_an_evaluation_exactly(model, tmp_path):
    runs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.json"
        _fortify(
            "evaluate", "--model", model, *COMMON, "--suite", "quick", "--progress", "none", "--out", str(out)
        )
        runs.append(_read(out))
    first, second = runs

    assert first["environment"]["threads"] == second["environment"]["threads"] == THREADS
    assert first["environment"]["device"] == "cpu" and first["seed"] == 7
    assert 0 < first["robust_accuracy"] < first["clean_accuracy"], (
        "a run with nothing to decide proves little"
    )
    assert first["samples"] == second["samples"]  # every per-sample record, bit for bit
    assert _without_times(first) == _without_times(second)


def test_a_black_box_attack_is_reproduced_point_for_point(model, tmp_path):
    saved = [tmp_path / "a", tmp_path / "b"]
    for path in saved:
        _fortify(
            "attack", "--model", model, *COMMON, "--attack", "square", "--steps", "300", "--save", str(path)
        )
    first, second = (load_file(str(path)) for path in saved)
    assert set(first) == set(second) and all(bool((first[k] == second[k]).all()) for k in first)
    assert bool((first["adv_pred"] != first["clean_pred"]).any()), "the attack broke nothing"
    results = [_read(path.with_name(path.name + ".json")) for path in saved]
    assert results[0]["environment"]["threads"] == THREADS
    assert _without_times(results[0]) == _without_times(results[1])
