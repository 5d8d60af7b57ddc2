"""Two replicas sharing Redis hold one limit; Prometheus metrics; micro-batching of concurrent requests."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient

from fortify.service.app import create_app
from fortify.service.batching import MicroBatcher
from fortify.service.limits import RedisLimiter
from tests.service.conftest import headers, infer_body, key_configs, need, port_open


@pytest.fixture
def redis_url():
    need(port_open(6379), "no Redis on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


def test_two_replicas_sharing_redis_hold_one_limit(guard, settings_for, synthetic, redis_url):
    prefix = f"fortify:test:{uuid.uuid4().hex}"
    settings = settings_for(keys=key_configs(per_second=0.2, burst=4), redis=redis_url)
    body = infer_body(synthetic[0][:1])
    a = create_app(settings, guard=guard, limiter=RedisLimiter(redis_url, prefix=prefix))
    b = create_app(settings, guard=guard, limiter=RedisLimiter(redis_url, prefix=prefix))
    with TestClient(a) as ca, TestClient(b) as cb:
        codes = [
            c.post("/v2/models/fortify/infer", json=body, headers=headers()).status_code for c in [ca, cb] * 3
        ]
        refused = cb.post("/v2/models/fortify/infer", json=body, headers=headers())
    assert codes == [200, 200, 200, 200, 429, 429]
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_redis_block_is_shared_and_expires(redis_url):
    prefix = f"fortify:test:{uuid.uuid4().hex}"
    one, two = RedisLimiter(redis_url, prefix=prefix), RedisLimiter(redis_url, prefix=prefix)
    assert one.hit("k", 10, 10).allowed
    one.block("k", 0.3)
    decision = two.hit("k", 10, 10)
    assert not decision.allowed and decision.blocked and two.restriction("k")[0] == "block"
    one.block("t", 30, factor=0.1)
    assert two.restriction("t")[0] == "throttle"
    assert [two.hit("t", 10, 1).allowed for _ in range(2)] == [True, False]


def test_unreachable_redis_is_a_one_line_error():
    from fortify.types import FortifyError

    with pytest.raises(FortifyError, match="cannot reach Redis at redis://\\*\\*\\*@127.0.0.1:1"):
        RedisLimiter("redis://user:pw@127.0.0.1:1/0")


def test_metrics_follow_prometheus_conventions(client, synthetic):
    x, _ = synthetic
    for _ in range(3):
        client.post("/v2/models/fortify/infer", json=infer_body(x[:4]), headers=headers())
    client.post("/v2/models/fortify/infer", json=infer_body(x[:1]))
    text = client.get("/metrics").text
    assert (
        'fortify_http_requests_total{code="200",method="POST",route="/v2/models/{model_name}/infer"} 3.0'
        in text
    )
    assert (
        'fortify_http_requests_total{code="401",method="POST",route="/v2/models/{model_name}/infer"} 1.0'
        in text
    )
    assert "fortify_http_request_duration_seconds_bucket" in text
    verdicts = sum(
        float(v) for v in re.findall(r'fortify_verdicts_total\{status="\w+",version="1"\} (\S+)', text)
    )
    assert verdicts == 12.0
    assert 'fortify_detector_score_ratio_count{detector="squeeze"} 12.0' in text
    assert 'fortify_batch_rows_sum{version="1"} 12.0' in text
    assert 'fortify_batch_queue_depth{version="1"} 0.0' in text
    assert "fortify_review_queue_depth" in text and "fortify_alerts_total" in text


def test_concurrent_requests_share_one_forward():
    calls: list[int] = []

    def fn(x):
        calls.append(x.shape[0])
        return list(range(x.shape[0]))

    async def run():
        import torch

        batcher = MicroBatcher(fn, name="t", max_batch=8, max_wait_ms=50)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(torch.zeros(n, 2)) for n in (1, 2, 3, 1, 4)))
        await batcher.stop()
        return results

    results = asyncio.run(run())
    assert results == [[0], [1, 2], [3, 4, 5], [6], [0, 1, 2, 3]]
    assert calls == [7, 4]  # 1+2+3+1 fit under 8; the 4-row request opens the next batch


def test_without_waiting_an_idle_batcher_runs_at_once():
    async def run():
        import time

        import torch

        batcher = MicroBatcher(lambda x: [0] * x.shape[0], name="t", max_batch=64, max_wait_ms=0)
        batcher.start()
        start = time.perf_counter()
        await batcher.submit(torch.zeros(1, 2))
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return elapsed

    assert asyncio.run(run()) < 0.05


def test_an_error_in_the_batch_reaches_the_callers_and_the_worker_survives():
    seen = []

    def fn(x):
        seen.append(x.shape[0])
        if len(seen) == 1:
            raise RuntimeError("boom")
        return [1] * x.shape[0]

    async def run():
        import torch

        batcher = MicroBatcher(fn, name="t", max_batch=4, max_wait_ms=0)
        batcher.start()
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.submit(torch.zeros(1, 2))
        ok = await batcher.submit(torch.zeros(2, 2))
        await batcher.stop()
        return ok

    assert asyncio.run(run()) == [1, 1]


def test_http_client_sees_batched_results_in_order(guard, settings_for, synthetic):
    """Many concurrent HTTP requests through one app: each gets its own rows' verdicts back."""
    x, _ = synthetic
    expected = [v.label for v in guard(x[:40])]
    settings = settings_for(keys=key_configs(per_second=1000, burst=1000))
    app = create_app(settings, guard=guard)

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as c,
        ):
            responses = await asyncio.gather(
                *(
                    c.post("/v2/models/fortify/infer", json=infer_body(x[i : i + 1]), headers=headers())
                    for i in range(40)
                )
            )
            metrics = (await c.get("/metrics")).text
        return [r.json()["outputs"][0]["data"][0] for r in responses], metrics

    labels, metrics = asyncio.run(run())
    assert labels == expected
    forwards = float(re.search(r'fortify_batch_rows_count\{version="1"\} (\S+)', metrics).group(1))
    assert forwards < 40  # concurrent requests were merged
