"""The side-by-side benchmark script runs end to end (fortify and the plain loop only: no peers needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import needs_fashion_mnist

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # ~10 s idle (imports, a 5,000-image training epoch when no model is cached, two attacks)
@needs_fashion_mnist
def test_quick_run_times_fortify_and_plain_loop_and_writes_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--n",
            "20",
            "--attacks",
            "fgsm,pgd-40",
            "--libs",
            "fortify,plain",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(out.read_text())
    rows = {row["key"]: row for row in record["rows"]}
    assert set(rows) == {"fgsm", "pgd-40"}
    for row in rows.values():
        assert set(row["results"]) == {"fortify", "plain"}
        for entry in row["results"].values():
            assert entry["images_per_s"] > 0 and entry["violations"] == 0
            assert 0.0 <= entry["robust_accuracy"] <= record["clean_accuracy"]
    assert "| PGD-40 | fortify |" in out.with_suffix(".md").read_text()


def test_unknown_attack_is_refused_with_the_known_names():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--attacks", "nope"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "unknown attack ['nope']" in done.stderr and "pgd-40" in done.stderr


@pytest.mark.slow  # ~15 s idle: two 1,000-image epochs of fast AT, PGD-50 and the quick suite on 40 images
@needs_fashion_mnist
def test_harden_bench_trains_with_held_out_validation_and_reports_the_epochs(tmp_path):
    out = tmp_path / "harden.json"
    args = ["--train-n", "1200", "--val-n", "200", "--epochs", "2", "--n", "40", "--methods", "fast"]
    args += ["--lr-schedule", "cosine", "--suite", "quick", "--tag", "smoke", "--skip-defenses"]
    args += ["--models-dir", str(tmp_path / "models"), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "harden.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(out.read_text())["methods"]
    assert row["method"] == "fast" and row["co_recoveries"] == 0
    assert [e["epoch"] for e in row["epochs"]] == [1, 2]
    assert all(0.0 <= e["val_robust_accuracy"] <= e["val_accuracy"] for e in row["epochs"])
    assert row["epochs"][-1]["lr"] < 0.01 * 1e-3  # cosine reached ~0 by the last step
    assert row["best_epoch"] in (1, 2)
    assert 0.0 <= row["quick"] <= row["clean"] and 0.0 <= row["pgd50"] <= row["clean"]
    assert (tmp_path / "models" / "fast-smoke" / "model.safetensors").is_file()
