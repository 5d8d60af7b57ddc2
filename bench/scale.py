"""Scale-out on one machine: evaluation and certification on 1 vs 2 Ray workers against the in-process
path, DDP training in 2 processes against 1, and the per-sample passes of the ``strong`` suite that the
16-GPU projection in BENCHMARKS.md ("Scale-out") starts from.

    .venv/bin/python bench/scale.py [--out bench/results/scale.json]

Fashion-MNIST, a cnn-small trained for one epoch on 10,000 images (fast adversarial training at Linf
0.1, so that attacks have work to do). Wall times include starting the workers, not starting Ray (timed
apart). The machine may be shared: the load average is recorded beside the times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import fortify as ft

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn: Any) -> tuple[Any, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _model() -> ft.Classifier:
    torch.manual_seed(0)
    clf = ft.Classifier(ft.zoo.create("cnn-small", (1, 28, 28), 10), num_classes=10)
    ft.train(
        clf, ft.data.load("fashion-mnist", "train", n=10_000), method="fast", threat=ft.Linf(0.1), epochs=1
    )
    return clf


def evaluation(clf: ft.Classifier, n: int) -> dict[str, Any]:
    import ray

    x, y = ft.data.load("fashion-mnist", "test", n=n)
    threat, rows = ft.Linf(0.1), {}
    runs = {
        "in-process, 1 thread": (None, 1),
        "ray, 1 worker": (ft.scale.Ray(shards=1), 1),
        "ray, 2 workers": (ft.scale.Ray(shards=2), 1),
    }
    for name, (executor, threads) in runs.items():
        torch.set_num_threads(threads)
        result, wall, cpu = _timed(lambda e=executor: ft.evaluate(clf, x, y, threat, "standard", executor=e))
        rows[name] = {
            "wall_s": wall,
            "driver_cpu_s": cpu,
            "worker_s": result.timing.get("worker_s"),
            "robust_accuracy": result.robust_accuracy,
            "load": os.getloadavg()[0],
        }
        print("evaluate", name, rows[name], flush=True)
    del ray
    return rows


def certification(clf: ft.Classifier, n: int, draws: int) -> dict[str, Any]:
    x, y = ft.data.load("fashion-mnist", "test", n=n)
    smooth = ft.certify.Smooth(clf, sigma=0.25, batch_size=1000)
    rows = {}
    runs = {
        "in-process, 1 thread": (None, 1),
        "ray, 1 worker": (ft.scale.Ray(shards=1), 1),
        "ray, 2 workers": (ft.scale.Ray(shards=2), 1),
    }
    for name, (executor, threads) in runs.items():
        torch.set_num_threads(threads)
        result, wall, cpu = _timed(
            lambda e=executor: ft.certify.certified_accuracy(smooth, x, y, n0=100, n=draws, executor=e)
        )
        rows[name] = {
            "wall_s": wall,
            "driver_cpu_s": cpu,
            "certified_accuracy": result.sections["certification"]["certified_accuracy"],
            "load": os.getloadavg()[0],
        }
        print("certify", name, rows[name], flush=True)
    return rows


def ddp(n: int) -> dict[str, Any]:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in (1, 2):
            args = ["train", "--data", "fashion-mnist", "--arch", "cnn-small", "--n", str(n), "--epochs", "1"]
            args += ["--method", "pgd", "--eps", "0.1", "--steps", "5", "--batch-size", "128"]
            args += ["--progress", "none", "--out", f"{tmp}/p{nproc}", "--val-n", "0"]
            command = [str(Path(sys.executable).with_name("fortify")), *args]
            command += ["--nproc", "2"] if nproc == 2 else ["--threads", "2"]
            _, wall, _ = _timed(lambda c=command: subprocess.run(c, check=True, capture_output=True))
            history = json.loads(Path(f"{tmp}/p{nproc}/train.json").read_text())["sections"]["training"]
            rows[f"{nproc} process(es)"] = {
                "wall_s": wall,
                "train_s": history["total_s"],
                "loss": [e["loss"] for e in history["epochs"]],
                "load": os.getloadavg()[0],
            }
            print("ddp", nproc, rows[f"{nproc} process(es)"], flush=True)
    return rows


def strong_passes(clf: ft.Classifier, n: int) -> dict[str, Any]:
    x, y = ft.data.load("fashion-mnist", "test", n=n)
    result, wall, cpu = _timed(lambda: ft.evaluate(clf, x, y, ft.Linf(0.1), "strong"))
    forward = sum((a.forward_passes or 0) * a.n_attacked for a in result.per_attack) / n
    backward = sum((a.backward_passes or 0) * a.n_attacked for a in result.per_attack) / n
    row = {
        "n": n,
        "wall_s": wall,
        "cpu_s": cpu,
        "robust_accuracy": result.robust_accuracy,
        "clean_accuracy": result.clean_accuracy,
        "forward_per_sample": forward,
        "backward_per_sample": backward,
        "per_attack": {
            a.name: {"n_attacked": a.n_attacked, "forward": a.forward_passes, "backward": a.backward_passes}
            for a in result.per_attack
        },
    }
    print("strong", row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.json"))
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    import logging

    import ray

    torch.set_num_threads(1)  # the machine is shared: one thread per process throughout
    clf = _model()
    _, init_s, _ = _timed(
        lambda: ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    )
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__},
        "ray_init_s": init_s,
    }
    report["evaluate"] = evaluation(clf, args.n)
    report["certify"] = certification(clf, 40, 2000)
    ray.shutdown()
    report["ddp"] = ddp(2000)
    torch.set_num_threads(1)
    report["strong"] = strong_passes(clf, 20)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
