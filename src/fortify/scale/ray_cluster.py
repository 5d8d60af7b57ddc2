"""The Ray executor: the shards of a job run on Ray actors that each load the model once.

``Ray()`` starts a local Ray for the job (and stops it afterwards); ``Ray("ray://HOST:10001")``, an
address ``HOST:6379`` or ``RAY_ADDRESS`` in the environment joins an existing cluster instead, whose
workers must have fortify installed (and read the model file, when the model is given as a loader). A
Ray already initialised in this process (``ray.init(...)``) is used as it is and left running.

What it promises:

- each shard's part enters the result exactly once, in shard order: a worker that dies (its process
  killed, out of memory, its node lost) is replaced by a fresh actor, which loads the model again,
  and the shards it held are run again, at most ``max_retries`` times each;
- no hanging: an address nobody answers on is a one-line ``FortifyError`` after ``connect_timeout_s``;
  a cluster that cannot start the workers within ``start_timeout_s``, or workers that cannot load the
  model, a one-line error naming why; Ctrl-C (``KeyboardInterrupt``) kills the job's actors, stops a
  Ray it started, and propagates;
- an exception raised by the task itself on a worker is raised here, as the worker raised it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from fortify._validate import number, positive_int
from fortify.model import Classifier
from fortify.scale.local import load_once
from fortify.types import FortifyError, ShardTask, split_shards

log = logging.getLogger(__name__)

DEFAULT_CLIENT_PORT = 10001
"""The Ray Client port of ``ray start --head`` (addresses ``ray://HOST``)."""


def import_ray() -> ModuleType:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise FortifyError("Ray is not installed: pip install 'fortify[ray]'") from None
    return ray


class Ray:
    """Run the shards of a job on a Ray cluster (see the module docstring for what it promises).

    ``address``: ``None`` (``RAY_ADDRESS`` if set, else a local Ray started for the job with
    ``num_cpus`` CPUs, default all), ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"``.
    ``shards``: how many pieces the samples are cut into (default: one per worker); the Result depends
    on the shards only, never on the workers, so fix ``shards`` to reproduce a run on another cluster
    (or here with ``ft.scale.InProcess(shards=...)``). ``workers``: actors started (default: as many
    as the cluster's CPUs allow at ``cpus_per_worker`` each, at most one per shard);
    ``gpus_per_worker`` > 0 puts each on a GPU (the model is moved there). ``model_loader``: a
    picklable zero-argument callable each worker calls once to load its model (e.g. from a file on
    storage every node reads); by default the caller's classifier is shipped to each worker once.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        shards: int | None = None,
        workers: int | None = None,
        cpus_per_worker: float = 1.0,
        gpus_per_worker: float = 0.0,
        num_cpus: int | None = None,
        max_retries: int = 2,
        model_loader: Callable[[], Classifier] | None = None,
        connect_timeout_s: float = 10.0,
        start_timeout_s: float = 300.0,
    ) -> None:
        self.address = address
        self.shards = None if shards is None else positive_int("shards", shards)
        self.workers = None if workers is None else positive_int("workers", workers)
        self.cpus_per_worker = number("cpus_per_worker", cpus_per_worker, low=0, finite=True)
        self.gpus_per_worker = number("gpus_per_worker", gpus_per_worker, low=0, finite=True)
        self.num_cpus = None if num_cpus is None else positive_int("num_cpus", num_cpus)
        self.max_retries = int(number("max_retries", max_retries, low=0, finite=True))
        self.model_loader = model_loader
        self.connect_timeout_s = number("connect_timeout_s", connect_timeout_s, low=0, open_low=True)
        self.start_timeout_s = number("start_timeout_s", start_timeout_s, low=0, open_low=True)
        self._owned = False
        self._last: dict[str, object] = {}

    def __repr__(self) -> str:
        return f"Ray(address={self.address!r}, shards={self.shards}, workers={self.workers})"

    def plan(self, n: int, align: int = 1) -> list[tuple[int, int]]:
        """The shards of ``n`` samples: ``shards`` of them, or one per worker the cluster can hold."""
        if self.shards is not None:
            return split_shards(n, self.shards, align)
        self._connect()
        return split_shards(n, self._capacity(), align)

    def map_shards(
        self,
        task: ShardTask,
        model: Any,
        shards: list[tuple[int, int]],
        payload: Callable[[int, int], Any],
        *,
        done: Callable[[int, int], None] | None = None,
    ) -> list[Any]:
        """Run ``task`` on every shard on the cluster's actors; the parts in shard order."""
        ray = self._connect()
        actors: list[Any] = []
        try:
            source = self.model_loader if self.model_loader is not None else model
            if not callable(source):
                raise TypeError(f"model must be a Classifier or a loader, got {type(source).__name__}")
            count = min(len(shards), self.workers or self._capacity()) if shards else 0
            spawn = _Spawner(ray, ray.put(source), self)
            actors = spawn.start(count)
            parts, retries = _Schedule(ray, actors, spawn, shards, payload, task, self.max_retries).run(done)
            self._last = {
                "executor": "ray",
                "address": self._address() or "local",
                "shards": [list(s) for s in shards],
                "workers": count,
                "cpus_per_worker": self.cpus_per_worker,
                "gpus_per_worker": self.gpus_per_worker,
                "retries": retries,
            }
            return parts
        finally:
            for actor in actors:
                ray.kill(actor)
            self._disconnect()

    def describe(self) -> dict[str, object]:
        """How the last job ran: address, ``shards`` ``[[start, stop], ...]``, workers, ``retries``
        (one entry per shard run again after its worker died)."""
        return dict(self._last) or {"executor": "ray", "address": self._address() or "local"}

    def _address(self) -> str | None:
        return self.address or os.environ.get("RAY_ADDRESS") or None

    def _connect(self) -> ModuleType:
        ray = import_ray()
        address = self._address()
        if address is not None:
            _check_reachable(address, self.connect_timeout_s)
        if ray.is_initialized():
            return ray
        try:
            if address is None:
                # workers on this machine import what the caller imports from its working folder
                path = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p)
                ray.init(
                    num_cpus=self.num_cpus,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                    runtime_env={"env_vars": {"PYTHONPATH": path}},
                )
            else:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError...
            raise FortifyError(
                f"cannot start or join Ray at {address or 'local'}: {_first_line(err)}"
            ) from None
        self._owned = True
        return ray

    def _disconnect(self) -> None:
        if self._owned:
            import_ray().shutdown()
            self._owned = False

    def _capacity(self) -> int:
        """Workers the cluster holds: its CPUs (GPUs when ``gpus_per_worker``) over the per-worker need."""
        resources = import_ray().cluster_resources()
        fits = [resources.get("CPU", 1.0) / self.cpus_per_worker] if self.cpus_per_worker else []
        if self.gpus_per_worker:
            fits.append(resources.get("GPU", 0.0) / self.gpus_per_worker)
        if fits and min(fits) < 1:
            raise FortifyError(
                f"the Ray cluster has {resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs: "
                f"not enough for one worker with {self.cpus_per_worker:g} CPUs and "
                f"{self.gpus_per_worker:g} GPUs"
            )
        return max(1, int(min(fits))) if fits else 1


class _Worker:
    """A Ray actor holding one loaded model; ``run(task, data)`` runs a shard on it.

    Loading errors are kept and reported by ``ready()`` rather than raised, so that a model the worker
    cannot read is one clear message, not an actor restart loop."""

    def __init__(self, source: Any, threads: int, gpu: bool) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.error: str | None = None
        self.clf: Classifier | None = None
        try:
            clf = load_once(source)
            self.clf = clf.to(torch.device("cuda")) if gpu else clf
        except Exception as err:
            self.error = f"{type(err).__name__}: {_first_line(err)}"

    def ready(self) -> tuple[int, str | None]:
        """This worker's process id, and why it could not load the model (``None`` when it did)."""
        return os.getpid(), self.error

    def run(self, task: ShardTask, data: Any) -> Any:
        if self.clf is None:
            raise FortifyError(f"the worker has no model: {self.error}")
        return task(self.clf, data)


class _Spawner:
    """Starts actors holding the model, and checks they loaded it."""

    def __init__(self, ray: ModuleType, source: Any, config: Ray) -> None:
        self.ray, self.source, self.config = ray, source, config
        self.remote = ray.remote(_Worker)
        self.pids: list[int] = []

    def start(self, count: int) -> list[Any]:
        cfg = self.config
        actors = [
            self.remote.options(
                num_cpus=cfg.cpus_per_worker, num_gpus=cfg.gpus_per_worker, max_restarts=0
            ).remote(self.source, int(cfg.cpus_per_worker), cfg.gpus_per_worker > 0)
            for _ in range(count)
        ]
        try:
            answers = self.ray.get([a.ready.remote() for a in actors], timeout=cfg.start_timeout_s)
        except self.ray.exceptions.GetTimeoutError:
            for actor in actors:
                self.ray.kill(actor)
            raise FortifyError(
                f"the Ray cluster did not start {count} worker(s) with {cfg.cpus_per_worker:g} CPUs and "
                f"{cfg.gpus_per_worker:g} GPUs each within {cfg.start_timeout_s:g}s"
            ) from None
        except Exception:
            for actor in actors:
                self.ray.kill(actor)
            raise
        errors = [error for _, error in answers if error is not None]
        if errors:
            for actor in actors:
                self.ray.kill(actor)
            raise FortifyError(f"a Ray worker could not load the model: {errors[0]}")
        self.pids += [pid for pid, _ in answers]
        return actors


class _Schedule:
    """Hands shards to idle actors, collects parts, replaces dead actors and runs their shard again."""

    def __init__(
        self,
        ray: ModuleType,
        actors: list[Any],
        spawn: _Spawner,
        shards: list[tuple[int, int]],
        payload: Callable[[int, int], Any],
        task: ShardTask,
        max_retries: int,
    ) -> None:
        self.ray, self.actors, self.spawn = ray, actors, spawn
        self.shards, self.payload, self.max_retries = shards, payload, max_retries
        self.task = ray.put(task)
        self.data: dict[int, Any] = {}

    def run(self, done: Callable[[int, int], None] | None) -> tuple[list[Any], list[int]]:
        ray = self.ray
        parts: dict[int, Any] = {}
        retried: list[int] = []
        waiting = list(range(len(self.shards)))
        running: dict[Any, tuple[int, int]] = {}  # ref -> (shard, actor slot)
        idle = list(range(len(self.actors)))
        while waiting or running:
            while waiting and idle:
                shard, slot = waiting.pop(0), idle.pop(0)
                running[self.actors[slot].run.remote(self.task, self._data(shard))] = (shard, slot)
            ready, _ = ray.wait(list(running), num_returns=1)
            shard, slot = running.pop(ready[0])
            try:
                parts[shard] = ray.get(ready[0])
            except ray.exceptions.RayActorError as err:
                if retried.count(shard) >= self.max_retries:
                    raise FortifyError(
                        f"shard {shard + 1} lost its worker {self.max_retries + 1} times: {_first_line(err)}"
                    ) from None
                log.warning("a Ray worker died running shard %d; running it again", shard + 1)
                retried.append(shard)
                waiting.insert(0, shard)
                ray.kill(self.actors[slot])
                self.actors[slot] = self.spawn.start(1)[0]
            except ray.exceptions.RayTaskError as err:
                cause = getattr(err, "cause", None)
                if isinstance(cause, Exception):
                    raise cause from None
                raise FortifyError(f"shard {shard + 1} failed on its worker: {_first_line(err)}") from None
            else:
                self.data.pop(shard, None)
                if done is not None:
                    done(shard, len(self.shards))
            idle.append(slot)
        return [parts[k] for k in range(len(self.shards))], retried

    def _data(self, shard: int) -> Any:
        if shard not in self.data:
            self.data[shard] = self.ray.put(self.payload(*self.shards[shard]))
        return self.data[shard]


def _check_reachable(address: str, timeout: float) -> None:
    """A one-line ``FortifyError`` unless something accepts a TCP connection at ``address``'s host and
    port (``auto`` / ``local`` are Ray's own lookups and pass)."""
    if address in ("auto", "local"):
        return
    target = address.removeprefix("ray://")
    host, _, port_text = target.rpartition(":") if ":" in target else (target, "", "")
    if address.startswith("ray://") and not port_text:
        host, port_text = target, str(DEFAULT_CLIENT_PORT)
    if not host or not port_text.isdigit():
        raise FortifyError(f"a Ray address is HOST:PORT or ray://HOST:PORT, got {address!r}")
    started = time.perf_counter()
    try:
        socket.create_connection((host, int(port_text)), timeout=timeout).close()
    except OSError as err:
        waited = time.perf_counter() - started
        raise FortifyError(
            f"cannot reach the Ray cluster at {address} ({err.strerror or err}, after {waited:.1f}s): "
            "is `ray start --head` running there, and is the port open?"
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
