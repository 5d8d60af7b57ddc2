"""HTTP latency and throughput of `fortify serve` on loopback, beside the plainest FastAPI endpoint.

Three servers, each its own uvicorn process with one torch thread, one 28x28 Fashion-MNIST image per
request, driven from this process by httpx (async, keep-alive):

- ``bare``: the plainest FastAPI endpoint we can write (JSON list in, argmax out; no auth, no store);
- ``preprocess``: `fortify serve` with a guard of one model behind MedianFilter(2), no detectors;
- ``guard``: `fortify serve` with the full guard (MedianFilter(2), a 3-model ensemble, squeeze +
  mahalanobis + input-stats detectors) and the monitor's default rules, with micro-batching on
  (max_batch 64, max_wait 0) and off (max_batch 1).

Both fortify servers authenticate a key, rate-limit it (limit set out of reach), write every verdict
to SQLite (WAL, synchronous=NORMAL, the default) before answering, and export metrics. Reported:
p50/p99 latency at one client, throughput at 1/16/64 clients, and the time from the first offending
request (PGD-10, Linf 0.1, against model 0) to the alert (the alert's timestamps, the webhook's arrival).

    python bench/serve.py                 # a few minutes on 2 cores
    python bench/serve.py --quick         # smoke run: few requests, models trained on 2,000 images

Models: three cnn-small, 1 epoch on 5,000 training images (seeds 0, 1, 2), cached under runs/bench/.
Writes bench/results/serve.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import torch

import fortify as ft
from fortify.runtime import Guard
from fortify.service.auth import hash_key

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "runs" / "bench"
KEY = "fk_bench_key_not_secret"


def models(quick: bool) -> list[ft.Classifier]:
    """Three cnn-small trained for one epoch on the first training images (cached unless quick)."""
    out = []
    n = 2_000 if quick else 5_000
    x, y = ft.data.load("fashion-mnist", "train", n=n)
    for seed in range(3):
        path = CACHE / f"serve-cnn-small-{seed}.safetensors"
        if path.is_file() and not quick:
            out.append(ft.zoo.load(path))
            continue
        torch.manual_seed(seed)
        clf = ft.Classifier(ft.zoo.create("cnn-small", (1, 28, 28), 10), num_classes=10)
        ft.train(clf, (x, y), epochs=1, lr=1e-3, batch_size=128, seed=seed, progress=False)
        if not quick:
            ft.zoo.save(clf, path, dataset="fashion-mnist", method="standard", epochs=1, seed=seed, n=n)
        out.append(clf)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-1500:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def serve_bare(model_path: str, port: int) -> None:
    """The plainest FastAPI endpoint: JSON floats in, argmax out (the comparison's baseline)."""
    import uvicorn
    from fastapi import FastAPI, Response

    torch.set_num_threads(1)
    clf = ft.zoo.load(model_path)
    app = FastAPI()

    @app.get("/v2/health/ready")
    def ready() -> Response:
        return Response(status_code=200)

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, int]:
        x = torch.tensor(body["data"], dtype=torch.float32).reshape(1, 1, 28, 28)
        with torch.no_grad():
            return {"label": int(clf(x).argmax(1))}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def fortify_server(
    bundle: Path, run_dir: Path, port: int, *, max_batch: int, monitor: dict[str, Any], webhook=None
):
    config = {
        "guard": str(bundle),
        "run_dir": str(run_dir),
        "keys": [
            {"id": "bench", "hash": hash_key(KEY), "roles": ["infer"], "per_second": 1e6, "burst": 1000000}
        ],
        "torch_threads": 1,
        "batching": {"enabled": True, "max_batch": max_batch, "max_wait_ms": 0},
        "monitor": monitor,
        "log_level": "warning",
    }
    if webhook:
        config["webhook"] = {"url": webhook, "retries": 0}
    path = run_dir / "serve.yaml"
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))  # JSON is YAML
    cmd = [sys.executable, "-m", "fortify.cli.main", "serve", "--config", str(path), "--port", str(port)]
    return start(cmd, port, run_dir / "log.txt", env={"OMP_NUM_THREADS": "1"})


async def drive(
    url: str, bodies: list[dict], clients: int, headers: dict[str, str]
) -> tuple[list[float], float]:
    """Send every body from ``clients`` concurrent workers; (latencies in ms, wall seconds)."""
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    lat: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                t0 = time.perf_counter()
                r = await client.post(url, json=body, headers=headers)
                lat.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {r.status_code} {r.text[:200]}")

        start_t = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(clients))), 600)
    return lat, time.perf_counter() - start_t


def pct(values: list[float], q: float) -> float:
    return float(torch.tensor(values).quantile(q))


def bodies_for(kind: str, x: torch.Tensor, n: int) -> list[dict]:
    rows = [x[i % len(x)] for i in range(n)]
    if kind == "bare":
        return [{"data": r.flatten().tolist()} for r in rows]
    return [
        {
            "inputs": [
                {"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": r.flatten().tolist()}
            ]
        }
        for r in rows
    ]


class Hook:
    """A loopback webhook that stamps each alert's arrival."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                hook.received.append((time.time(), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per latency run")
    parser.add_argument("--throughput-requests", type=int, default=400, help="requests per client count")
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve.json")
    parser.add_argument("--serve-bare", nargs=2, metavar=("MODEL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare[0], int(args.serve_bare[1]))
        return
    if args.quick:
        args.requests, args.throughput_requests = 60, 120
    torch.set_num_threads(1)
    clfs = models(args.quick)
    x_test, y_test = ft.data.load("fashion-mnist", "test")
    x_cal, x_query = x_test[-2000:], x_test[:500]
    clients = [int(c) for c in args.clients.split(",")]
    headers = {"X-API-Key": KEY}
    results: dict[str, Any] = {"latency": {}, "throughput": {}, "alert": {}}
    with tempfile.TemporaryDirectory(prefix="fortify-bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        model0 = tmp / "model0.safetensors"
        ft.zoo.save(clfs[0].module, model0, arch="cnn-small", input_shape=[1, 28, 28], num_classes=10)
        median = ft.defenses.MedianFilter(2)
        pre = Guard([clfs[0]], preprocess=[median], detectors=[]).calibrate(x_cal, fpr=0.05)
        full = Guard(clfs, preprocess=[median], detectors=["squeeze", "mahalanobis", "input-stats"])
        full.calibrate(x_cal, fpr=0.05)
        pre.save(str(tmp / "pre")), full.save(str(tmp / "full"))
        default_monitor = {"enabled": True, "reference": "fashion-mnist"}
        off = {"enabled": False}
        servers = {
            "bare": lambda p: start(
                [sys.executable, __file__, "--serve-bare", str(model0), str(p)], p, tmp / "bare.log"
            ),
            "preprocess": lambda p: fortify_server(
                tmp / "pre", tmp / "run-pre", p, max_batch=64, monitor=off
            ),
            "guard": lambda p: fortify_server(
                tmp / "full", tmp / "run-g", p, max_batch=64, monitor=default_monitor
            ),
            "guard, no batching": lambda p: fortify_server(
                tmp / "full", tmp / "run-g1", p, max_batch=1, monitor=default_monitor
            ),
        }
        for name, launch in servers.items():
            port = free_port()
            proc = launch(port)
            kind = "bare" if name == "bare" else "oip"
            url = f"http://127.0.0.1:{port}" + ("/predict" if kind == "bare" else "/v2/models/fortify/infer")
            try:
                asyncio.run(drive(url, bodies_for(kind, x_query, 50), 1, headers))  # warm-up
                if name != "guard, no batching":
                    lat, _ = asyncio.run(drive(url, bodies_for(kind, x_query, args.requests), 1, headers))
                    results["latency"][name] = {
                        "p50_ms": pct(lat, 0.5),
                        "p99_ms": pct(lat, 0.99),
                        "n": len(lat),
                    }
                    print(f"{name}: p50 {pct(lat, 0.5):.2f} ms, p99 {pct(lat, 0.99):.2f} ms", flush=True)
                if name in ("bare", "guard", "guard, no batching"):
                    for c in clients:
                        lat, wall = asyncio.run(
                            drive(url, bodies_for(kind, x_query, args.throughput_requests), c, headers)
                        )
                        rps = len(lat) / wall
                        results["throughput"].setdefault(name, {})[str(c)] = {
                            "rps": rps,
                            "p50_ms": pct(lat, 0.5),
                            "p99_ms": pct(lat, 0.99),
                        }
                        print(
                            f"{name} @ {c} clients: {rps:.0f} req/s, p99 {pct(lat, 0.99):.1f} ms", flush=True
                        )
            finally:
                stop(proc)
        results["alert"] = alert_time(tmp, clfs, x_query, y_test[:500])
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    results["command"] = " ".join(["python", "bench/serve.py", *sys.argv[1:]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(table(results))


def alert_time(tmp: Path, clfs: list[ft.Classifier], x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Clean traffic, then PGD-10 points: how many offending requests and ms until the alert."""
    x_adv = ft.attacks.PGD(steps=10)(clfs[0], x[:100], y[:100], ft.Linf(0.1))
    hook = Hook()
    rule = {"name": "attack", "metric": "review_rate", "window": 20, "threshold": 0.3, "min_count": 20}
    port = free_port()
    proc = fortify_server(
        tmp / "full", tmp / "run-alert", port, max_batch=64, monitor={"rules": [rule]}, webhook=hook.url
    )
    url = f"http://127.0.0.1:{port}/v2/models/fortify/infer"
    sent: list[float] = []
    try:
        with httpx.Client(timeout=30) as client:
            for body in bodies_for("oip", x[100:300], 200):
                client.post(url, json=body, headers={"X-API-Key": KEY})
            clean_alerts = len(hook.received)
            for body in bodies_for("oip", x_adv, 100):
                sent.append(time.time())
                client.post(url, json=body, headers={"X-API-Key": KEY})
                if len(hook.received) > clean_alerts:
                    break
            deadline = time.monotonic() + 5
            while len(hook.received) <= clean_alerts and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        stop(proc)
    if len(hook.received) <= clean_alerts:
        return {"fired": False, "clean_alerts": clean_alerts, "adversarial_sent": len(sent)}
    arrived, body = hook.received[clean_alerts]
    # the request that fired it: the last one sent before the monitor's fired_at (one clock: loopback)
    trigger = max(i for i, t in enumerate(sent) if t <= body["fired_at"])
    return {
        "fired": True,
        "clean_alerts": clean_alerts,
        "offending_requests_until_alert": trigger + 1,
        "fired_after_trigger_sent_ms": 1000 * (body["fired_at"] - sent[trigger]),
        "webhook_after_trigger_sent_ms": 1000 * (arrived - sent[trigger]),
        "webhook_after_fired_ms": 1000 * (arrived - body["fired_at"]),
        "webhook_after_first_offending_sent_ms": 1000 * (arrived - sent[0]),
    }


def table(results: dict[str, Any]) -> str:
    lines = ["| server | p50 ms | p99 ms |", "| --- | --- | --- |"]
    for name, r in results["latency"].items():
        lines.append(f"| {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
    cols = sorted({c for r in results["throughput"].values() for c in r}, key=int)
    lines += ["", "| server | " + " | ".join(f"{c} clients req/s (p99 ms)" for c in cols) + " |"]
    lines.append("| --- |" + " --- |" * len(cols))
    for name, r in results["throughput"].items():
        cells = [f"{r[c]['rps']:.0f} ({r[c]['p99_ms']:.1f})" if c in r else "" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"alert: {json.dumps(results['alert'])}"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
