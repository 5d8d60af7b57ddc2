"""Micro-batching: concurrent requests share one forward; their events share one commit.

``MicroBatcher`` runs ``fn`` (the guard) on one worker thread. Each request queues its rows; the worker
takes the oldest, adds whatever else is queued up to ``max_batch`` rows, and, when ``max_wait_ms`` > 0
and the batch is not full, waits up to that long (from the first request's arrival) for more. A request
bigger than ``max_batch`` runs alone rather than waiting to be split (MLServer #1936: batching timers
that make big requests slower). With ``max_wait_ms`` = 0 an idle server adds no delay: batches form
only from requests that arrived while the model was busy.

``GroupCommit`` does the same for store writes: every batch of rows waiting while a commit runs goes
into the next transaction, so durable writes cost one fsync per group rather than per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch
from torch import Tensor

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Job(Generic[T]):
    payload: T
    size: int
    arrived: float
    future: asyncio.Future[Any] = field(repr=False)


class _Worker(ABC, Generic[T]):
    """A queue drained by one asyncio task into a one-thread executor, ``max_batch`` units at a time."""

    def __init__(self, name: str, max_batch: int, max_wait_ms: float) -> None:
        self.name = name
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._queue: asyncio.Queue[_Job[T]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._carry: _Job[T] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fortify-{name}")
        self.on_batch: Callable[[int, int], None] | None = None

    @property
    def depth(self) -> int:
        """Jobs waiting (not yet taken into a batch)."""
        return (0 if self._queue is None else self._queue.qsize()) + (self._carry is not None)

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"fortify-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    async def _submit(self, payload: T, size: int) -> Any:
        if self._queue is None:
            raise RuntimeError(f"{self.name} is not started")
        job = _Job(payload, size, time.monotonic(), asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    async def _collect(self) -> list[_Job[T]]:
        if self._queue is None:
            raise RuntimeError(f"{self.name} is not started")
        if self._carry is not None:
            first, self._carry = self._carry, None
        else:
            first = await self._queue.get()
        jobs, rows = [first], first.size
        while rows < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = first.arrived + self.max_wait_s - time.monotonic()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except TimeoutError:
                    break
            if rows + job.size > self.max_batch:
                self._carry = job  # it opens the next batch
                break
            jobs.append(job)
            rows += job.size
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect()
            live = [j for j in jobs if not j.future.cancelled()]
            if not live:
                continue
            if self.on_batch is not None:
                self.on_batch(len(live), sum(j.size for j in live))
            try:
                results = await loop.run_in_executor(self._executor, self._process, [j.payload for j in live])
            except Exception as exc:  # the callers see the error; the worker keeps serving
                for job in live:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, result in zip(live, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)

    @abstractmethod
    def _process(self, payloads: list[T]) -> list[Any]:
        """One result per payload, in order (the subclass's batched work)."""


class MicroBatcher(_Worker[Tensor]):
    """``await batcher.submit(x)`` -> ``fn(x)`` for ``x`` ``(n, ...)``, run batched with other requests."""

    def __init__(
        self, fn: Callable[[Tensor], list[Any]], *, name: str, max_batch: int, max_wait_ms: float
    ) -> None:
        super().__init__(name, max_batch, max_wait_ms)
        self.fn = fn

    async def submit(self, x: Tensor) -> list[Any]:
        """``fn(x)``'s per-row results for this request's rows, in order."""
        return await self._submit(x, int(x.shape[0]))

    def _process(self, payloads: list[Tensor]) -> list[list[Any]]:
        if len(payloads) == 1:
            return [list(self.fn(payloads[0]))]
        out = list(self.fn(torch.cat(payloads)))
        results, start = [], 0
        for x in payloads:
            results.append(out[start : start + x.shape[0]])
            start += x.shape[0]
        return results


class GroupCommit(_Worker[list[dict[str, Any]]]):
    """``await writer.write(rows)`` -> their ids, once committed together with whatever else was waiting."""

    def __init__(self, insert: Callable[[list[dict[str, Any]]], list[int]], *, max_rows: int = 4096) -> None:
        super().__init__("store", max_rows, 0.0)
        self.insert = insert

    async def write(self, rows: list[dict[str, Any]]) -> list[int]:
        """Ids of ``rows``, returned only after their transaction committed."""
        return await self._submit(rows, max(1, len(rows)))

    def _process(self, payloads: list[list[dict[str, Any]]]) -> list[list[int]]:
        ids = self.insert([row for rows in payloads for row in rows])
        out, start = [], 0
        for rows in payloads:
            out.append(ids[start : start + len(rows)])
            start += len(rows)
        return out
