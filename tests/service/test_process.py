"""The real server process: zero-config start, load with zero 5xx and zero lost events, kill -9 durability."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time

import pytest
import torch

import fortify as ft
from fortify.service.auth import hash_key
from fortify.service.store import Store
from tests.service.conftest import KEYS, infer_body
from tests.service.server import load, serve

KEY_ENV = {
    "FORTIFY_KEYS": json.dumps([{"id": "infer", "hash": hash_key(KEYS["infer"]), "roles": ["infer"]}]),
    "FORTIFY_RATE_LIMIT__PER_SECOND": "100000",
    "FORTIFY_RATE_LIMIT__BURST": "100000",
    "FORTIFY_MONITOR__ENABLED": "false",
}
HEADERS = {"X-API-Key": KEYS["infer"]}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, tiny_cnn):
    clf, x_test, _ = tiny_cnn
    path = tmp_path_factory.mktemp("bundle") / "guard"
    ft.runtime.Guard([clf], detectors=["squeeze", "confidence"]).calibrate(x_test, fpr=0.05).save(str(path))
    return path


def _bodies(n, x):
    return [infer_body(x[i % len(x)][None], id=f"req-{i}") for i in range(n)]


def test_zero_config_serve_calibrates_a_guard_and_answers(tmp_path, tiny_cnn):
    clf, _, _ = tiny_cnn
    model = tmp_path / "model.safetensors"
    ft.zoo.save(clf.module, model, arch="cnn-tiny", input_shape=[1, 8, 8], num_classes=4)
    args = ["--model", str(model), "--calibrate", "synthetic", "--run-dir", str(tmp_path / "run")]
    with serve(args, env=KEY_ENV, log=tmp_path / "log.txt") as (url, _):
        x, _ = ft.data.load("synthetic", "test", n=4)
        codes, _, acked = asyncio.run(
            load(
                url + "/v2/models/fortify/infer", _bodies(4, x), concurrency=2, headers=HEADERS, timeout_s=30
            )
        )
    assert codes == {"200": 4}
    assert (tmp_path / "run" / "guard").is_dir() and (tmp_path / "run" / "events.db").is_file()
    assert Store(f"sqlite:///{tmp_path / 'run' / 'events.db'}").request_ids() == set(acked)


def _load_test(tmp_path, bundle, n, concurrency, timeout_s):
    store_url = f"sqlite:///{tmp_path / 'events.db'}"
    x, _ = ft.data.load("synthetic", "test")
    args = ["--guard", str(bundle), "--store", store_url, "--run-dir", str(tmp_path)]
    with serve(args, env=KEY_ENV, log=tmp_path / "log.txt") as (url, _):
        start = time.perf_counter()
        codes, latencies, acked = asyncio.run(
            load(
                url + "/v2/models/fortify/infer",
                _bodies(n, x),
                concurrency=concurrency,
                headers=HEADERS,
                timeout_s=timeout_s,
            )
        )
        wall = time.perf_counter() - start
    assert codes == {"200": n}, codes
    store = Store(store_url)
    assert store.request_ids() == set(acked) and store.count_events() == n
    lat = torch.tensor(latencies) * 1000
    return {"p50_ms": float(lat.quantile(0.5)), "p99_ms": float(lat.quantile(0.99)), "rps": n / wall}


def test_bounded_load_has_no_5xx_and_no_lost_events(tmp_path, bundle):
    stats = _load_test(tmp_path, bundle, n=300, concurrency=20, timeout_s=120)
    assert stats["p99_ms"] > 0


@pytest.mark.slow
def test_load_10000_requests_at_200_concurrency(tmp_path, bundle):
    stats = _load_test(tmp_path, bundle, n=10_000, concurrency=200, timeout_s=600)
    print(
        f"load 10000 @ 200: p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms, "
        f"{stats['rps']:.0f} req/s"
    )


def _kill_test(tmp_path, bundle, kill_after, concurrency, n):
    store_url = f"sqlite:///{tmp_path / 'events.db'}"
    x, _ = ft.data.load("synthetic", "test")
    args = ["--guard", str(bundle), "--store", store_url, "--run-dir", str(tmp_path)]
    acked: list[str] = []
    with serve(args, env=KEY_ENV, log=tmp_path / "log.txt") as (url, proc):

        def killer() -> None:
            deadline = time.monotonic() + 120
            while len(acked) < kill_after and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)

        thread = threading.Thread(target=killer)
        thread.start()

        async def run() -> dict[str, int]:
            import httpx

            codes: dict[str, int] = {}
            async with httpx.AsyncClient(timeout=10.0) as client:
                bodies = iter(_bodies(n, x))

                async def worker() -> None:
                    for body in bodies:
                        try:
                            r = await client.post(
                                url + "/v2/models/fortify/infer", json=body, headers=HEADERS
                            )
                        except httpx.HTTPError:
                            codes["error"] = codes.get("error", 0) + 1
                            return
                        codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
                        if r.status_code == 200:
                            acked.append(r.json()["id"])

                await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 150)
            return codes

        codes = asyncio.run(run())
        thread.join(timeout=130)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    assert len(acked) >= kill_after and codes.get("error", 0) > 0 and "500" not in codes, codes
    stored = Store(store_url).request_ids()
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged requests lost: {sorted(missing)[:5]}"
    # restarted on the same store, it serves again and keeps the old events
    with serve(args, env=KEY_ENV, log=tmp_path / "log.txt") as (url, _):
        codes, _, again = asyncio.run(
            load(
                url + "/v2/models/fortify/infer",
                [infer_body(x[:1], id="after")],
                concurrency=1,
                headers=HEADERS,
                timeout_s=30,
            )
        )
    assert again == ["after"] and set(acked) | {"after"} <= Store(store_url).request_ids()
    return len(acked), len(stored)


def test_kill_9_under_load_loses_no_acknowledged_request(tmp_path, bundle):
    _kill_test(tmp_path, bundle, kill_after=150, concurrency=8, n=5000)


@pytest.mark.slow
def test_kill_9_under_heavy_load_loses_no_acknowledged_request(tmp_path, bundle):
    _kill_test(tmp_path, bundle, kill_after=3000, concurrency=64, n=20_000)


@pytest.mark.slow
def test_two_worker_processes_start_and_hold_the_redis_limit(tmp_path, bundle):
    """`fortify serve --workers 2 --redis`: both workers start, and the key's limit holds across them
    (which worker takes a request is the kernel's choice; test_replicas_metrics proves the sharing)."""
    from tests.service.conftest import need, port_open

    need(port_open(6379), "no Redis on 127.0.0.1:6379")
    import uuid

    key_id = f"infer-{uuid.uuid4().hex[:8]}"  # a fresh bucket in the shared Redis
    env = {
        **KEY_ENV,
        "FORTIFY_KEYS": json.dumps(
            [
                {
                    "id": key_id,
                    "hash": hash_key(KEYS["infer"]),
                    "roles": ["infer"],
                    "per_second": 0.1,
                    "burst": 5,
                }
            ]
        ),
        "FORTIFY_REDIS": "redis://127.0.0.1:6379/0",
    }
    x, _ = ft.data.load("synthetic", "test", n=1)
    args = ["--guard", str(bundle), "--workers", "2", "--run-dir", str(tmp_path)]
    with serve(args, env=env, log=tmp_path / "log.txt") as (url, _):
        codes, _, _ = asyncio.run(
            load(
                url + "/v2/models/fortify/infer", _bodies(12, x), concurrency=4, headers=HEADERS, timeout_s=60
            )
        )
    assert codes == {"200": 5, "429": 7}, codes
    pids = {
        line.split("[")[1].split("]")[0]
        for line in (tmp_path / "log.txt").read_text().splitlines()
        if "Started server process" in line
    }
    assert len(pids) == 2
