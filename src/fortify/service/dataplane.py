"""The data plane: everything the endpoints do, without HTTP (MLServer's shape: metadata, ready, infer).

One ``infer`` call: check the model and the caller's limit, decode and validate the tensor, pick the
version (named, fallback, canary), score it through that version's micro-batcher, commit one event per
row (before returning: an acknowledged verdict is durable), feed the monitor and act on its alerts,
then build the protocol response. Review items are the events whose verdict was REVIEW.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from fortify._version import __version__
from fortify.service.alerts import AlertHub
from fortify.service.auth import Principal
from fortify.service.batching import GroupCommit, MicroBatcher
from fortify.service.errors import BadRequest, Forbidden, NotFound, TooManyRequests, Unavailable
from fortify.service.limits import Limiter
from fortify.service.metrics import Metrics
from fortify.service.protocol import (
    INPUT_NAME,
    OUTPUT_NAMES,
    InferenceRequest,
    InferenceResponse,
    MetadataModelResponse,
    MetadataServerResponse,
    MetadataTensor,
    ResponseOutput,
    decode_input,
    output_metadata,
)
from fortify.service.review import ReviewQueue
from fortify.service.routing import Router
from fortify.service.settings import ServeSettings
from fortify.service.store import Store, encode_input

log = logging.getLogger("fortify.service")
EXTENSIONS = ["fortify-guard", "fortify-review"]
KEEP_INPUT = {
    "flagged": ("REVIEW", "REJECTED"),
    "review": ("REVIEW",),
    "all": ("ACCEPTED", "REVIEW", "REJECTED"),
}
STATUS_ORDER = {"ACCEPTED": 0, "REVIEW": 1, "REJECTED": 2}


@dataclass
class Served:
    """One version of the model: its guard, its batcher and its detector names."""

    version: str
    guard: Any
    batcher: MicroBatcher
    detectors: list[str]


class DataPlane:
    """The service without HTTP. ``start``/``stop`` run inside the event loop (the app's lifespan)."""

    def __init__(
        self,
        settings: ServeSettings,
        guards: dict[str, Any],
        *,
        store: Store,
        limiter: Limiter,
        metrics: Metrics,
        monitor: Any = None,
    ) -> None:
        if settings.model_version not in guards:
            raise ValueError(f"no guard for the primary version {settings.model_version!r}")
        self.settings = settings
        self.store, self.limiter, self.metrics, self.monitor = store, limiter, metrics, monitor
        self.router = Router(
            settings.model_version,
            canary=settings.canary.version if settings.canary else None,
            share=settings.canary.share if settings.canary else 0.0,
            fallback=settings.fallback.version if settings.fallback else None,
        )
        batching = settings.batching
        max_batch = batching.max_batch if batching.enabled else 1
        self.served: dict[str, Served] = {}
        for version, guard in guards.items():
            if guard.input_shape is None:
                raise ValueError(f"guard of version {version!r} has no input_shape")
            judge = functools.partial(judge_batch, guard, settings.expose_probabilities)
            batcher = MicroBatcher(
                judge, name=f"guard-{version}", max_batch=max_batch, max_wait_ms=batching.max_wait_ms
            )
            batcher.on_batch = self._batch_observer(version)
            self.served[version] = Served(version, guard, batcher, list(guard.names))
        self.writer = GroupCommit(store.insert_events)
        guards_by_version = {v: served.guard for v, served in self.served.items()}
        self.review = ReviewQueue(store, guards_by_version, settings.model_version)
        self.alerts = AlertHub(store, metrics, limiter, self.router, settings.alert_actions, settings.webhook)
        self._monitor_exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fortify-monitor")
        self._io_exec = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fortify-io")
        self._ready = False
        self.alert_latencies_ms: list[float] = []
        metrics.track_review(lambda: self.store.count_events(review_state="pending"))
        metrics.fallback_active.set_function(lambda: len(self.router.fallback_holds()))
        for version, served in self.served.items():
            metrics.track_queue(version, lambda b=served.batcher: b.depth)

    def _batch_observer(self, version: str) -> Any:
        def observe(requests: int, rows: int) -> None:
            self.metrics.batch_requests.labels(version=version).observe(requests)
            self.metrics.batch_rows.labels(version=version).observe(rows)

        return observe

    # lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        for served in self.served.values():
            served.batcher.start()
        self.writer.start()
        await self.alerts.start()
        self._ready = True

    async def stop(self) -> None:
        self._ready = False
        for served in self.served.values():
            await served.batcher.stop()
        await self.writer.stop()
        await self.alerts.stop()
        self._monitor_exec.shutdown(wait=True)
        self._io_exec.shutdown(wait=True)

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self._ready

    async def run_io(self, fn: Any, *args: Any) -> Any:
        """Run blocking store I/O off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._io_exec, fn, *args)

    # metadata ----------------------------------------------------------------------------------

    def server_metadata(self) -> MetadataServerResponse:
        return MetadataServerResponse(name="fortify", version=__version__, extensions=EXTENSIONS)

    def _check_model(self, name: str, version: str | None = None) -> Served:
        if name != self.settings.model_name:
            raise NotFound(f"unknown model {name!r}; this server serves {self.settings.model_name!r}")
        if version is None:
            return self.served[self.settings.model_version]
        if version not in self.served:
            raise NotFound(f"unknown model version {version!r}; served: {', '.join(self.served)}")
        return self.served[version]

    def model_metadata(self, name: str, version: str | None = None) -> MetadataModelResponse:
        served = self._check_model(name, version)
        guard = served.guard
        low, high = guard.bounds
        return MetadataModelResponse(
            name=name,
            versions=list(self.served) if version is None else [version],
            platform="fortify_guard",
            inputs=[MetadataTensor(name=INPUT_NAME, datatype="FP32", shape=[-1, *guard.input_shape])],
            outputs=output_metadata(guard.num_classes, served.detectors, self.settings.expose_probabilities),
            parameters={
                "num_classes": guard.num_classes,
                "bounds_low": low,
                "bounds_high": high,
                "detectors": ",".join(served.detectors),
                "primary_version": self.settings.model_version,
            },
        )

    def model_ready(self, name: str, version: str | None = None) -> bool:
        self._check_model(name, version)
        return self._ready

    # inference ---------------------------------------------------------------------------------

    def check_limit(self, principal: Principal) -> None:
        """Raise ``Forbidden`` for a blocked key, ``TooManyRequests`` over its limit."""
        conf, default = principal.config, self.settings.rate_limit
        per_second = conf.per_second if conf is not None and conf.per_second else default.per_second
        burst = conf.burst if conf is not None and conf.burst else default.burst
        decision = self.limiter.hit(principal.id, per_second, burst)
        if decision.blocked:
            raise Forbidden(
                f"key {principal.id!r} is blocked by an alert for {decision.retry_after_s:.0f} s more"
            )
        if not decision.allowed:
            self.metrics.rate_limited.labels(key=principal.id).inc()
            raise TooManyRequests(f"rate limit of key {principal.id!r} exceeded", decision.retry_after_s)

    async def infer(
        self, name: str, version: str | None, request: InferenceRequest, principal: Principal
    ) -> InferenceResponse:
        """Score one OIP request; raises a ``ServiceError`` for anything the caller got wrong."""
        if not self._ready:
            raise Unavailable("the server is not ready")
        self._check_model(name, version)
        self.check_limit(principal)
        if len(request.inputs) != 1:
            raise BadRequest(f"this model takes exactly one input, got {len(request.inputs)}")
        chosen = self.served[self.router.pick(principal.id, version)]
        guard = chosen.guard
        x, problem = decode_input(
            request.inputs[0], guard.input_shape, guard.bounds, self.settings.max_request_rows
        )
        wanted = self._wanted_outputs(request, chosen)
        request_id = request.id or uuid.uuid4().hex
        judged = await chosen.batcher.submit(x)
        verdicts = [v for v, _ in judged]
        now = time.time()
        rows = [
            self._event(request_id, i, v, x[i], principal.id, chosen.version, now)
            for i, v in enumerate(verdicts)
        ]
        ids, _ = await asyncio.gather(self.writer.write(rows), self._observe(verdicts, x, principal.id))
        self._count(chosen, verdicts)
        if problem is not None:
            raise BadRequest(f"{problem}; recorded as REJECTED (event {ids[0]})")
        return self._response(name, chosen, request_id, judged, ids, wanted)

    def _wanted_outputs(self, request: InferenceRequest, served: Served) -> list[str]:
        optional = {"scores": bool(served.detectors), "probabilities": self.settings.expose_probabilities}
        available = [n for n in OUTPUT_NAMES if optional.get(n, True)]
        if not request.outputs:
            return available
        names = [o.name for o in request.outputs]
        unknown = [n for n in names if n not in available]
        if unknown:
            raise BadRequest(f"unknown output(s) {unknown}; available: {', '.join(available)}")
        return names

    def _event(
        self, request_id: str, row: int, verdict: Any, x: Tensor, key: str, version: str, now: float
    ) -> dict[str, Any]:
        status = verdict.status.value
        keep = status in KEEP_INPUT[self.settings.store_inputs]
        return {
            "created_at": now,
            "request_id": request_id,
            "row": row,
            "key_id": key,
            "model_name": self.settings.model_name,
            "model_version": version,
            "label": int(verdict.label),
            "confidence": float(verdict.confidence),
            "status": status,
            "reasons": list(verdict.reasons),
            "scores": {k: float(v) for k, v in verdict.scores.items()},
            "latency_ms": float(verdict.latency_ms),
            "input": encode_input(x.numpy()) if keep else None,
            "input_shape": list(x.shape) if keep else None,
            "review_state": "pending" if status == "REVIEW" else None,
        }

    async def _observe(self, verdicts: list[Any], x: Tensor, key: str) -> None:
        if self.monitor is None:
            return
        loop = asyncio.get_running_loop()
        records = await loop.run_in_executor(self._monitor_exec, self._observe_sync, verdicts, x, key)
        for record in records:
            self.alerts.deliver(record)

    def _observe_sync(self, verdicts: list[Any], x: Tensor, key: str) -> list[dict[str, Any]]:
        fired = self.monitor.observe(verdicts, x, client=key, now=time.time())
        records = []
        for alert in fired:
            record = self.alerts.act(alert)
            try:
                self.alerts.persist(record)
            except Exception:  # an alert must never fail the request that raised it
                log.exception("could not store alert %s", record.get("rule"))
            record["handled_at"] = time.time()
            if record.get("fired_at"):
                self.alert_latencies_ms.append(1000.0 * (record["handled_at"] - float(record["fired_at"])))
            records.append(record)
        return records

    def _count(self, served: Served, verdicts: list[Any]) -> None:
        for verdict in verdicts:
            self.metrics.verdicts.labels(version=served.version, status=verdict.status.value).inc()
            for name, score in verdict.scores.items():
                threshold = verdict.thresholds.get(name)
                if threshold is not None and threshold > 0 and np.isfinite(score):
                    self.metrics.scores.labels(detector=name).observe(score / threshold)

    def _response(
        self,
        name: str,
        served: Served,
        request_id: str,
        judged: list[tuple[Any, list[float] | None]],
        ids: list[int],
        wanted: list[str],
    ) -> InferenceResponse:
        verdicts = [v for v, _ in judged]
        n = len(verdicts)
        columns: dict[str, tuple[str, list[int], list[Any]]] = {
            "label": ("INT64", [n], [int(v.label) for v in verdicts]),
            "confidence": ("FP32", [n], [float(v.confidence) for v in verdicts]),
            "status": ("BYTES", [n], [v.status.value for v in verdicts]),
            "reasons": ("BYTES", [n], ["; ".join(v.reasons) for v in verdicts]),
            "event_id": ("INT64", [n], list(ids)),
        }
        if served.detectors:
            flat = [float(v.scores.get(d, float("nan"))) for v in verdicts for d in served.detectors]
            data = [s if np.isfinite(s) else None for s in flat]
            columns["scores"] = ("FP32", [n, len(served.detectors)], data)
        if self.settings.expose_probabilities:
            classes = served.guard.num_classes
            flat = [p for _, probs in judged for p in (probs if probs is not None else [None] * classes)]
            columns["probabilities"] = ("FP32", [n, classes], flat)
        outputs = []
        for out in wanted:
            datatype, shape, data = columns[out]
            params = {"detectors": ",".join(served.detectors)} if out == "scores" else None
            outputs.append(
                ResponseOutput(name=out, shape=shape, datatype=datatype, data=data, parameters=params)
            )
        worst = max((v.status.value for v in verdicts), key=STATUS_ORDER.__getitem__)
        counts = {s: sum(v.status.value == s for v in verdicts) for s in STATUS_ORDER}
        return InferenceResponse(
            model_name=name,
            model_version=served.version,
            id=request_id,
            parameters={
                "status": worst,
                "accepted": counts["ACCEPTED"],
                "review": counts["REVIEW"],
                "rejected": counts["REJECTED"],
            },
            outputs=outputs,
        )


def judge_batch(guard: Any, with_probabilities: bool, x: Tensor) -> list[tuple[Any, list[float] | None]]:
    """``guard(x)``'s verdicts, each with the pipeline's class probabilities when asked (``None`` for an
    input the guard refused to score), read from the verdicts themselves: no second forward."""
    verdicts = guard(x)
    if not with_probabilities:
        return [(v, None) for v in verdicts]
    return [(v, list(v.probabilities) if v.label >= 0 else None) for v in verdicts]
