"""Interrupting and resuming a training run: what the loop saves, how it comes back, and the signals.

``capture`` takes the loop's whole state at a step boundary (``fortify.training.checkpoint.LoopState``);
``restore`` puts it back into a freshly built loop of the same run, after checking that the run is the
same (settings, data, steps per epoch, architecture). ``stop_signals`` turns SIGINT / SIGTERM into a
request the loop honours at the next step boundary: it writes a checkpoint and raises
``TrainingInterrupted``; a second SIGINT stops at once (``KeyboardInterrupt``).
"""

from __future__ import annotations

import contextlib
import copy
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from fortify._validate import integer
from fortify.data.provenance import tensor_fingerprint
from fortify.training.checkpoint import (
    LoopState,
    flatten_optimizer,
    load_state,
    save_state,
    take,
    under,
    unflatten_optimizer,
)
from fortify.training.config import TrainConfig
from fortify.training.history import EpochRecord, TrainingEvent
from fortify.training.overfitting import OverfittingCheck
from fortify.training.source import Source, TensorSource
from fortify.types import FortifyError

if TYPE_CHECKING:
    from fortify.training.train import _Loop

_SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class TrainingInterrupted(Exception):
    """A run stopped by SIGINT / SIGTERM after writing its checkpoint; ``resume=True`` continues it.
    ``folder`` is where the checkpoint is."""

    def __init__(self, message: str, folder: Path) -> None:
        super().__init__(message)
        self.folder = folder


class Checkpointing:
    """Where and how often a run writes its checkpoint, and whether a signal asked it to stop."""

    def __init__(self, folder: Path, every: int, config: TrainConfig, source: Source) -> None:
        self.folder = folder
        self.every = integer("checkpoint_every", every, low=1)
        self.config = config.to_dict()
        self.steps = source.steps
        # all of the tensors; of a loader, its first batches (their order is the loader's business)
        data = (source.x, source.y) if isinstance(source, TensorSource) else source.head
        self.data = tensor_fingerprint(*data)
        self.requested: int | None = None
        self.epoch_shuffle: Tensor | None = None
        self.shuffle: torch.Generator | None = getattr(source, "_shuffle", None)

    def epoch_start(self) -> None:
        """Remember the data shuffle's state before an epoch draws its order (for mid-epoch saves)."""
        self.epoch_shuffle = self.shuffle.get_state() if self.shuffle is not None else None

    def save(self, state: LoopState) -> Path:
        return save_state(self.folder, state)

    def load(self) -> LoopState:
        state = load_state(self.folder)
        what = f"training checkpoint in {self.folder}"
        info = state.info
        if info.get("config") != self.config:
            found = info.get("config")
            saved: dict[str, Any] = found if isinstance(found, dict) else {}
            differ = sorted(k for k in set(saved) | set(self.config) if saved.get(k) != self.config.get(k))
            raise FortifyError(f"{what} is of a run with other settings: {', '.join(differ) or 'all'} differ")
        if info.get("data") != self.data or info.get("steps") != self.steps:
            raise FortifyError(f"{what} is of a run on other training data; resume it with the same data")
        return state

    def interrupted(self, epoch: int, step: int) -> TrainingInterrupted:
        """The exception that ends a run stopped after ``step`` steps of epoch ``epoch`` (0-based; with
        ``step == 0``, after ``epoch`` whole epochs)."""
        name = _SIGNAL_NAMES.get(signal.Signals(self.requested), "a signal") if self.requested else "a signal"
        where = f"epoch {epoch + 1}, step {step} of {self.steps}" if step else f"epoch {epoch}"
        return TrainingInterrupted(
            f"training stopped by {name} after {where}; checkpoint in {self.folder}, resume it to continue",
            self.folder,
        )


@contextlib.contextmanager
def stop_signals(ckpt: Checkpointing | None) -> Iterator[None]:
    """While training with checkpoints in the main thread: SIGINT / SIGTERM set ``ckpt.requested``."""
    if ckpt is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def request(signum: int, _frame: object) -> None:
        if ckpt.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        ckpt.requested = signum

    previous = {sig: signal.signal(sig, request) for sig in _SIGNAL_NAMES}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def capture(
    loop: _Loop, epoch: int, step: int, *, partial: dict[str, float] | None = None, finished: bool = False
) -> LoopState:
    """The loop's state after ``step`` steps of epoch ``epoch`` (``step == 0``: ``epoch`` epochs done)."""
    ckpt = loop.ckpt
    assert ckpt is not None
    tensors: dict[str, Tensor] = under("model", dict(loop.clf.module.state_dict()))
    optim_tensors, optim = flatten_optimizer(loop.opt.state_dict(), "optim")
    tensors |= optim_tensors
    tensors["rng/torch"] = torch.get_rng_state()
    if loop.clf.device.type == "cuda":
        tensors["rng/cuda"] = torch.cuda.get_rng_state(loop.clf.device)
    tensors["rng/method"] = loop.method_gen.get_state()
    shuffle = ckpt.epoch_shuffle if step else (ckpt.shuffle.get_state() if ckpt.shuffle else None)
    if shuffle is not None:
        tensors["rng/shuffle"] = shuffle
    guards = loop.guards
    info: dict[str, Any] = {
        "config": ckpt.config,
        "data": ckpt.data,
        "steps": ckpt.steps,
        "epoch": epoch,
        "step": step,
        "finished": finished,
        "partial": partial or {},
        "elapsed_s": loop.elapsed_before + (time.perf_counter() - loop.run_started),
        "optimizer": optim,
        "method": {k: v for k, v in vars(loop.method).items() if isinstance(v, (bool, int, float, str))},
        "recoveries": guards.recoveries,
        "history": {
            "epochs": [r.model_dump() for r in loop.history.epochs],
            "events": [e.model_dump() for e in loop.history.events],
            "co_checks": loop.history.co_checks,
            "catastrophic_overfitting": loop.history.catastrophic_overfitting,
        },
    }
    monitor = guards.monitor
    if monitor is not None:
        info["co_reference"] = vars(monitor.reference) if monitor.reference is not None else None
        good = getattr(monitor, "_good", None)
        if good is not None:
            tensors |= under("co_model", good[0])
            co_tensors, info["co_optimizer"] = flatten_optimizer(good[1], "co_optim")
            tensors |= co_tensors
    best = guards.best
    if best is not None:
        info["best"] = {"value": best.best_value, "epoch": best.best_epoch, "since": best.since_best}
        state = getattr(best, "_state", None)
        if state is not None:
            tensors |= under("best", state)
    return LoopState(tensors=tensors, info=info)


def restore(loop: _Loop, state: LoopState) -> None:
    """Put ``state`` (checked by ``Checkpointing.load``) back into a freshly built ``loop``."""
    ckpt = loop.ckpt
    assert ckpt is not None
    what = f"training checkpoint in {ckpt.folder}"
    info, tensors = state.info, state.tensors
    try:
        loop.clf.module.load_state_dict(take(tensors, "model"))
        loop.opt.load_state_dict(unflatten_optimizer(tensors, info.get("optimizer"), "optim", what))
        torch.set_rng_state(_rng(tensors, "rng/torch", what))
        if loop.clf.device.type == "cuda" and "rng/cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng/cuda"], loop.clf.device)
        loop.method_gen.set_state(_rng(tensors, "rng/method", what))
        if ckpt.shuffle is not None:
            ckpt.shuffle.set_state(_rng(tensors, "rng/shuffle", what))
        epoch, step = info["epoch"], info["step"]
        if not (isinstance(epoch, int) and isinstance(step, int) and 0 <= step < ckpt.steps):
            raise FortifyError(f"{what}: bad position epoch={epoch!r} step={step!r}")
        history = info["history"]
        loop.history.epochs = [EpochRecord.model_validate(r) for r in history["epochs"]]
        loop.history.events = [TrainingEvent.model_validate(e) for e in history["events"]]
        loop.history.co_checks = list(history["co_checks"])
        loop.history.catastrophic_overfitting = bool(history["catastrophic_overfitting"])
        for name, value in dict(info.get("method", {})).items():
            if hasattr(loop.method, name) and isinstance(value, type(getattr(loop.method, name))):
                setattr(loop.method, name, value)
        loop.guards.recoveries = int(info["recoveries"])
        _restore_guards(loop, tensors, info, what)
        partial = info.get("partial") or {}
        loop.partial = {k: float(partial[k]) for k in ("loss_sum", "seen", "time_s") if k in partial}
        loop.start_epoch, loop.start_step, loop.finished = epoch, step, bool(info["finished"])
        loop.elapsed_before = float(info["elapsed_s"])
    except FortifyError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FortifyError(f"{what} does not fit this run: {first}") from exc


def _restore_guards(loop: _Loop, tensors: dict[str, Tensor], info: dict[str, Any], what: str) -> None:
    monitor, best = loop.guards.monitor, loop.guards.best
    if monitor is not None:
        reference = info.get("co_reference")
        monitor.reference = OverfittingCheck(**reference) if reference is not None else None
        if "co_optimizer" in info:
            optim = unflatten_optimizer(tensors, info["co_optimizer"], "co_optim", what)
            monitor._good = (take(tensors, "co_model"), copy.deepcopy(optim))
    if best is not None and "best" in info:
        record = info["best"]
        best.best_value, best.best_epoch, best.since_best = record["value"], record["epoch"], record["since"]
        saved = take(tensors, "best")
        best._state = saved or None


def _rng(tensors: dict[str, Tensor], name: str, what: str) -> Tensor:
    if name not in tensors or tensors[name].dtype != torch.uint8:
        raise FortifyError(f"{what}: the random state {name!r} is missing or damaged")
    return tensors[name]
