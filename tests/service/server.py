"""A real ``fortify serve`` process on a loopback port, for tests that need uvicorn itself."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

STARTUP_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(
    args: list[str], *, env: dict[str, str] | None = None, log: Path
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``fortify serve ARGS --port P``; yields ``(url, process)`` once ready; always stops it."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "fortify.cli.main",
        "serve",
        *args,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/v2/health/ready", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {STARTUP_S} s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


async def load(
    url: str,
    bodies: list[dict[str, Any]],
    *,
    concurrency: int,
    headers: dict[str, str],
    timeout_s: float,
    stop_after_errors: bool = False,
) -> tuple[dict[str, int], list[float], list[str]]:
    """POST every body to ``url`` from ``concurrency`` workers, bounded by ``timeout_s`` in total.

    Returns (count per status code, or ``error:TYPE``; latencies in seconds of the 200s; the request ids
    acknowledged with a 200). With ``stop_after_errors`` a worker stops at its first transport error.
    """
    codes: dict[str, int] = {}
    latencies: list[float] = []
    acked: list[str] = []
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    deadline = time.monotonic() + timeout_s

    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                start = time.perf_counter()
                try:
                    response = await client.post(url, json=body, headers=headers)
                except httpx.HTTPError as exc:
                    key = f"error:{type(exc).__name__}"
                    codes[key] = codes.get(key, 0) + 1
                    if stop_after_errors:
                        return
                    continue
                code = str(response.status_code)
                codes[code] = codes.get(code, 0) + 1
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                    acked.append(response.json()["id"])

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout_s + 35)
    return codes, latencies, acked


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a loopback port; yields its base URL; stops it after."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
