"""`fortify evaluate / certify --ray`: the command line reaches the Ray executor, its workers load the
model file themselves, and `--shards K` alone reproduces a `--ray --shards K` run in one process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fortify as ft
from fortify.cli.main import main
from tests.scale.conftest import ray_or_skip

FORTIFY = str(Path(sys.executable).with_name("fortify"))


@pytest.fixture(scope="module")
def model_file(tiny_cnn, tmp_path_factory):
    clf, _, _ = tiny_cnn
    return ft.zoo.save(clf, tmp_path_factory.mktemp("m") / "tiny.safetensors", dataset="synthetic")


def _samples(path: Path) -> list[dict]:
    return json.loads(path.read_text())["samples"]


def test_evaluate_with_ray_gives_the_records_of_the_same_shards_run_here(
    local_ray, model_file, tmp_path, capsys
):
    common = ["evaluate", "--model", str(model_file), "--data", "synthetic", "--n", "60", "--eps", "0.15"]
    common += ["--batch-size", "16", "--threads", "1", "--progress", "none", "--shards", "2"]
    assert main([*common, "--ray", "--out", str(tmp_path / "ray.json")]) == 0
    assert "2 shard(s) on Ray" in capsys.readouterr().out
    assert main([*common, "--out", str(tmp_path / "here.json")]) == 0
    assert "2 shard(s) here" in capsys.readouterr().out
    assert _samples(tmp_path / "ray.json") == _samples(tmp_path / "here.json")
    scale = json.loads((tmp_path / "ray.json").read_text())["sections"]["scale"]
    assert scale["executor"] == "ray" and scale["shards"] == [[0, 32], [32, 60]]


@pytest.mark.slow
def test_certify_with_ray_gives_the_unsharded_certificates(local_ray, model_file, tmp_path, capsys):
    common = ["certify", "--model", str(model_file), "--data", "synthetic", "--n-samples", "20"]
    common += ["--n", "60", "--n0", "10", "--alpha", "0.01", "--batch-size", "140", "--progress", "none"]
    assert main([*common, "--ray", "--shards", "2", "--out", str(tmp_path / "ray.json")]) == 0
    assert main([*common, "--out", str(tmp_path / "one.json")]) == 0
    ray_run, one = (json.loads((tmp_path / f).read_text())["sections"] for f in ("ray.json", "one.json"))
    assert ray_run["certification"]["samples"] == one["certification"]["samples"]
    assert ray_run["scale"]["shards"] == [[0, 10], [10, 20]]


def test_precision_reaches_every_shard_of_evaluate_and_sweep(model_file, tmp_path, capsys):
    common = ["--model", str(model_file), "--data", "synthetic", "--n", "32", "--suite", "quick"]
    common += ["--batch-size", "16", "--threads", "1", "--progress", "none", "--shards", "2"]
    common += ["--precision", "bf16"]
    assert main(["evaluate", *common, "--eps", "0.1", "--out", str(tmp_path / "e.json")]) == 0
    assert main(["sweep", *common, "--eps", "0.05,0.1", "--out", str(tmp_path / "s.json")]) == 0
    capsys.readouterr()
    for name in ("e.json", "s.json"):
        record = json.loads((tmp_path / name).read_text())
        assert record["precision"] == "bf16" and record["sections"]["scale"]["shards"] == [[0, 16], [16, 32]]
        pgd = [a["config"] for a in record["per_attack"] if a["name"].startswith("pgd")]
        assert pgd and all(c.get("precision") == "bf16" for c in pgd)


def test_an_unreachable_ray_address_is_one_line_and_exit_2(model_file, capsys):
    ray_or_skip()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["evaluate", "--model", str(model_file), "--data", "synthetic", "--n", "8", "--progress", "none"]
    assert main([*args, "--ray", f"ray://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot reach the Ray cluster" in err and len(err.splitlines()) == 1
    assert main([*args, "--gpus-per-worker", "1"]) == 2
    assert "--gpus-per-worker goes with --ray" in capsys.readouterr().err


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc), the daemons of a Ray it started included."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return status != "Z"


@pytest.mark.slow
def test_ctrl_c_stops_the_job_its_workers_and_the_ray_it_started(model_file, tmp_path):
    ray_or_skip()
    args = [FORTIFY, "evaluate", "--model", str(model_file), "--data", "synthetic", "--n", "400"]
    args += ["--suite", "standard", "--eps", "0.05", "--batch-size", "8", "--progress", "none", "--ray"]
    env = {**os.environ, "RAY_ADDRESS": ""}
    env.pop("RAY_ADDRESS")
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None and not workers:
        time.sleep(0.5)
        workers = {p for p in _descendants(proc.pid) if b"_Worker" in _cmdline(p)}
    assert workers, f"no Ray worker started: {proc.stderr.read().decode() if proc.poll() is not None else ''}"
    time.sleep(1.0)  # the workers are attacking their shards now
    started = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    assert code == 130, proc.stderr.read().decode()
    time.sleep(2.0)
    left = [p for p in started if _alive(p)]
    assert not left, f"processes of the job still running: {[_cmdline(p) for p in left]}"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
