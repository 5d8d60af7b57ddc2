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
