"""The training loop: seeded, batched, with schedules, robust validation, early stopping, a progress bar
and a guard against catastrophic overfitting.

Per step: the learning rate follows ``lr_schedule`` and the threat's radius the epsilon curriculum
(``eps_ramp``); the method turns the batch into a loss. Per epoch: training loss and accuracy, clean and
robust (PGD) validation accuracy, time. Optionally: every ``co_check_every`` steps, FGSM and PGD
accuracy on a fixed batch (see ``fortify.training.overfitting``) with step-back-and-shrink recovery.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from fortify._validate import from_numpy
from fortify.attacks import PGD
from fortify.attacks.base import check_labels
from fortify.attacks.runner import accuracy, robust_accuracy
from fortify.data.batches import is_batches
from fortify.model import Classifier
from fortify.training.config import TrainConfig
from fortify.training.distributed import Replicas
from fortify.training.dp import PrivacySpec
from fortify.training.early_stopping import BestCheckpoint
from fortify.training.history import EpochRecord, TrainingEvent, TrainingHistory
from fortify.training.methods import StepContext, TrainingMethod, build_method
from fortify.training.overfitting import CatastrophicOverfittingMonitor
from fortify.training.private import PrivateRun, prepare
from fortify.training.resume import Checkpointing, capture, restore, stop_signals
from fortify.training.schedules import eps_factor, lr_factor
from fortify.training.source import BatchSource, Source, TensorSource
from fortify.types import FortifyError, ProgressOption, Ticker, reporting

logger = logging.getLogger(__name__)

CO_BATCH = 256
CO_CHECK_SAMPLES = 10_000


@dataclass
class _Guards:
    best: BestCheckpoint | None
    monitor: CatastrophicOverfittingMonitor | None
    check_every: int
    shrink: float
    max_recoveries: int
    recoveries: int = 0


def train(
    model: nn.Module,
    data: tuple[Tensor, Tensor] | Iterable[Any],
    config: TrainConfig | None = None,
    *,
    val: tuple[Tensor, Tensor] | None = None,
    progress: ProgressOption = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    **options: Any,
) -> TrainingHistory:
    """Train ``model`` in place on ``data = (x, y)`` (tensors or NumPy arrays) and return the per-epoch
    history. ``data`` may instead be an iterable of ``(x, y)`` batches with a length (a ``DataLoader``,
    a list of pairs), read afresh every epoch in its own order and batch size (``batch_size`` is then
    unused; seed the loader's generator to repeat a run); a plain ``nn.Module`` then needs
    ``num_classes`` unless the first batches hold every class. The training accuracy is measured on
    the first 5,000 samples (of the first pass, for a loader).

    ``config`` is a ``TrainConfig``; or give its settings as keywords instead (``epochs=10, lr=1e-3``):
    keywords that are not settings go to the method as its options. ``val = (x_val, y_val)`` is the
    validation data, ``progress`` a ``fortify.types.Progress`` reporter (or ``True`` to log progress).

    ``model``: an ``nn.Module`` returning logits or a ``Classifier`` (its normalisation and bounds are
    then used); pass an already-trained model to fine-tune it. ``method``: ``"standard"``, ``"pgd"``,
    ``"fast"``, ``"trades"`` or any registered method, with ``method_options``; ``threat`` is the
    threat adversarial methods train (and validation attacks) against.

    Optimisation: ``optimizer`` ``"adam"`` or ``"sgd"`` (momentum 0.9, Nesterov), ``weight_decay``,
    ``lr_schedule`` ``"constant" | "cosine" | "cyclic"`` (per step), ``eps_ramp`` fraction of training
    over which the training radius ramps linearly from 0 to ``threat.eps``.

    Validation: clean accuracy and, with a threat, PGD-``val_steps`` accuracy after each epoch. The
    monitored metric is robust accuracy (clean without a threat); ``keep_best`` restores the best
    epoch's weights at the end (Rice et al. 2020); ``early_stopping=k`` stops after ``k`` epochs
    without improvement.

    Catastrophic overfitting: every ``co_check_every`` steps (default, for methods with a step to
    shrink such as ``fast``: every ~10,000 training samples and at least once per epoch; 0 turns it
    off) FGSM and PGD accuracy are measured on the first 256 validation samples (the first 256
    training samples without ``val``). On a collapse the weights and optimizer state step back to the
    last good check and the method's step is multiplied by ``co_shrink``, at most
    ``co_max_recoveries`` times (then the collapse is logged and recorded).

    Differential privacy: ``method="dp"`` (``epsilon``, ``delta``, ``max_grad_norm``, ``accountant``,
    ``secure_rng``, ``replace_batchnorm``, ``base``; see ``fortify.training.dp``) trains with DP-SGD
    through Opacus (``pip install 'fortify[privacy]'``): per-sample clipped gradients with Gaussian
    noise, Poisson batches of expected size ``batch_size``, and the budget spent in
    ``history.privacy``. A model with BatchNorm is refused unless ``replace_batchnorm=True``.

    Resumable runs: with ``checkpoint=FOLDER`` the whole state of the run (weights, optimizer, random
    generators, overfitting guard, best epoch, history; ``fortify.training.checkpoint``) is written
    atomically to ``FOLDER/checkpoint.safetensors`` every ``checkpoint_every`` epochs, at the end, and
    at the next step boundary after SIGINT or SIGTERM, which then raises ``TrainingInterrupted`` (a
    second Ctrl-C stops at once). ``resume=True`` continues from that file with the same model
    architecture, data and settings (a difference is refused); the resumed run ends with exactly the
    weights of an uninterrupted one on the same machine. Not for DP runs.

    Deterministic for a given ``seed`` on the same machine; leaves the model in eval mode.
    """
    if config is None:
        config = TrainConfig.from_options(options)
    elif options:
        raise FortifyError(f"pass either a TrainConfig or keyword settings, not both (got {sorted(options)})")
    clf, source = _source(model, data, config)
    if val is not None:
        val = from_numpy(*val)
        clf.check_input(val[0])
        val = (val[0], check_labels(val[1], val[0].shape[0], clf.num_classes))
    training_method = build_method(config.method, config.method_options)
    spec: PrivacySpec | None = getattr(training_method, "privacy", None)
    replicas = Replicas.current()  # inside a torch.distributed group: data-parallel (training.distributed)
    if replicas is not None:
        if resume:
            raise FortifyError("resuming a data-parallel run is not supported: resume it in one process")
        source = replicas.prepare(clf, source, spec is not None)
        checkpoint = checkpoint if replicas.is_main else None  # rank 0 alone writes
    replaced = prepare(clf, spec) if spec is not None else []  # before the optimizer sees the layers
    opt = _optimizer(config, [p for p in clf.parameters() if p.requires_grad])
    steps = source.steps
    guards = _guards(
        clf, training_method, config, val, source.head, steps, source.batch_size, spec is not None
    )
    history = TrainingHistory(
        method=config.method,
        options=_jsonable(config.method_options),
        seed=config.seed,
        config=_jsonable(
            {
                "epochs": config.epochs,
                "lr": config.lr,
                "batch_size": source.batch_size,
                "optimizer": config.optimizer,
                "weight_decay": config.weight_decay,
                "lr_schedule": config.lr_schedule,
                "eps_ramp": config.eps_ramp,
                "threat": repr(config.threat),
                "val_steps": config.val_steps,
                "early_stopping": config.early_stopping,
                "keep_best": config.keep_best,
                "co_check_every": guards.check_every,
            }
        ),
    )
    if replaced:
        history.events.append(TrainingEvent(kind="replaced_batchnorm", epoch=0, details={"layers": replaced}))
    ckpt = None
    if checkpoint is not None:
        if spec is not None:
            raise FortifyError("checkpoints of DP runs are not supported: train them in one go")
        ckpt = Checkpointing(Path(checkpoint), checkpoint_every, config, source)
    elif resume:
        raise FortifyError("resume=True needs checkpoint=FOLDER, the folder of the interrupted run")
    private = PrivateRun(clf, spec, opt, source, config.epochs) if spec is not None else None
    loop = _Loop(clf, training_method, opt, config, source, val, guards, history, private, ckpt, replicas)
    started = loop.run_started
    device = clf.device
    try:
        with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
            torch.manual_seed(config.seed)
            if resume and ckpt is not None:
                restore(loop, ckpt.load())
            done = loop.start_epoch * steps + loop.start_step
            with (
                stop_signals(ckpt),
                reporting(progress, f"training ({config.method})", config.epochs * steps) as ticker,
            ):
                if done:
                    ticker.advance(done)
                loop.run(ticker)
        if private is not None:
            history.privacy = private.budget()
    finally:
        if private is not None:
            private.close()
        history.total_s = loop.elapsed_before + time.perf_counter() - started
    clf.module.eval()
    return history


class _Loop:
    """The state of one training run; ``run`` goes through the epochs."""

    def __init__(
        self,
        clf: Classifier,
        method: TrainingMethod,
        opt: torch.optim.Optimizer,
        config: TrainConfig,
        source: TensorSource | BatchSource,
        val: tuple[Tensor, Tensor] | None,
        guards: _Guards,
        history: TrainingHistory,
        private: PrivateRun | None = None,
        ckpt: Checkpointing | None = None,
        replicas: Replicas | None = None,
    ) -> None:
        self.clf, self.method, self.config = clf, method, config
        self.opt: torch.optim.Optimizer = private.optimizer if private is not None else opt
        self.threat = config.threat
        self.source: Source = private.source if private is not None else source
        # DP: per-sample gradients are captured only in the step itself, not in its inner attacks
        self.capturing: Callable[[], AbstractContextManager[object]] = (
            private.capturing if private is not None else nullcontext
        )
        self.inner: Callable[[], AbstractContextManager[object]] = (
            private.paused if private is not None else nullcontext
        )
        self.val, self.epochs, self.steps = val, config.epochs, source.steps
        self.lr, self.lr_schedule, self.eps_ramp = config.lr, config.lr_schedule, config.eps_ramp
        self.val_steps, self.seed, self.guards, self.history = config.val_steps, config.seed, guards, history
        offset = replicas.seed_offset() if replicas is not None else 0
        self.method_gen = torch.Generator(device=clf.device).manual_seed(config.seed + 1 + offset)
        self.replicas = replicas
        self.ckpt = ckpt
        # where the run (re)starts, and an interrupted epoch's figures so far (set by resume.restore)
        self.start_epoch, self.start_step, self.finished = 0, 0, False
        self.partial: dict[str, float] = {}
        self.elapsed_before = 0.0
        self.run_started = time.perf_counter()

    def run(self, ticker: Ticker) -> None:
        if self.guards.monitor is not None and self.start_epoch == 0 and self.start_step == 0:
            self.history.co_checks.append(vars(self.guards.monitor.check(self.clf, self.opt, 0)))
        for epoch in range(self.start_epoch, 0 if self.finished else self.epochs):
            record = self._epoch(epoch, ticker)
            self.history.epochs.append(record)
            logger.info("epoch %d: %s", epoch + 1, record.model_dump(exclude_none=True))
            stop = self._stop_after(epoch, record)
            self._save_after(epoch, stop or epoch + 1 == self.epochs)
            if stop:
                break
        best = self.guards.best
        if best is not None and best.best_epoch is not None and best.best_epoch != len(self.history.epochs):
            best.restore(self.clf.module)
            self.history.events.append(
                TrainingEvent(
                    kind="restored_best", epoch=best.best_epoch, details={"metric": best.best_value}
                )
            )
        self.history.best_epoch = best.best_epoch if best is not None else None

    def _stop_after(self, epoch: int, record: EpochRecord) -> bool:
        best = self.guards.best
        if best is None:
            return False
        # robust accuracy decides; clean accuracy only breaks ties (1e-3 is below one sample in 1,000)
        metric = (record.val_robust_accuracy or 0.0) + 1e-3 * (record.val_accuracy or 0.0)
        stop = best.update(self.clf.module, metric, epoch + 1)
        if stop and epoch + 1 < self.epochs:
            self.history.events.append(
                TrainingEvent(kind="early_stop", epoch=epoch + 1, details={"best_epoch": best.best_epoch})
            )
            return True
        return False

    def _save_after(self, epoch: int, finished: bool) -> None:
        """The epoch-boundary checkpoint (every ``checkpoint_every`` epochs, at the end, on a signal)."""
        ckpt = self.ckpt
        if ckpt is None:
            return
        if finished or ckpt.requested or (epoch + 1) % ckpt.every == 0:
            ckpt.save(capture(self, epoch + 1, 0, finished=finished))
        if ckpt.requested and not finished:
            raise ckpt.interrupted(epoch + 1, 0)

    def _epoch(self, epoch: int, ticker: Ticker) -> EpochRecord:
        t0 = time.perf_counter() - self.partial.get("time_s", 0.0)
        self.clf.module.train()
        device = self.clf.device
        loss_sum, seen = self.partial.get("loss_sum", 0.0), int(self.partial.get("seen", 0))
        lr_now, threat = self.lr, self.threat
        skip, self.start_step, self.partial = self.start_step, 0, {}
        if self.ckpt is not None:
            self.ckpt.epoch_start()
        for step, (x, y) in enumerate(self.source.epoch()):
            if step < skip:  # resumed mid-epoch: these batches were trained before the interruption
                continue
            done = (epoch * self.steps + step + 0.5) / (self.epochs * self.steps)
            lr_now = self.lr * lr_factor(self.lr_schedule, done)
            for group in self.opt.param_groups:
                group["lr"] = lr_now
            threat = (
                self.threat.with_eps(self.threat.eps * eps_factor(done, self.eps_ramp))
                if self.threat
                else None
            )
            ctx = StepContext(threat, epoch, self.epochs, step, self.steps, self.method_gen, self.inner)
            with self.capturing():
                loss = self.method.loss(self.clf, x.to(device), y.to(device), ctx)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
            batch_loss, batch_n = float(loss.detach()), len(y)
            if self.replicas is not None:  # the global batch's gradient and loss, on every rank
                batch_loss, batch_n = self.replicas.sync(self.clf, loss, batch_n)
            self.opt.step()
            if self.replicas is not None:
                self.replicas.sync_buffers(self.clf)
            loss_sum += batch_loss * batch_n
            seen += batch_n
            self._maybe_check(epoch, epoch * self.steps + step + 1)
            ticker.advance(
                1, status=f"epoch {epoch + 1}/{self.epochs} loss {batch_loss:.3f}{self._last_val()}"
            )
            if self.ckpt is not None and self.ckpt.requested and step + 1 < self.steps:
                partial = {"loss_sum": loss_sum, "seen": seen, "time_s": time.perf_counter() - t0}
                self.ckpt.save(capture(self, epoch, step + 1, partial=partial))
                raise self.ckpt.interrupted(epoch, step + 1)
        self.clf.module.eval()
        record = EpochRecord(
            epoch=epoch + 1,
            loss=loss_sum / max(seen, 1),
            accuracy=accuracy(self.clf, *self.source.head, check=False),
            time_s=0.0,
            lr=lr_now,
            eps=threat.eps if threat is not None else None,
        )
        if self.val is not None:
            record.val_accuracy = accuracy(self.clf, *self.val, check=False)
            if self.threat is not None and self.threat.eps > 0:
                pgd = PGD(steps=self.val_steps, seed=self.seed)
                record.val_robust_accuracy = robust_accuracy(
                    pgd, self.clf, *self.val, self.threat, batch_size=self.clf.batch_size
                )
        record.time_s = time.perf_counter() - t0
        return record

    def _last_val(self) -> str:
        if not self.history.epochs:
            return ""
        last = self.history.epochs[-1]
        text = f" | val {last.val_accuracy:.3f}" if last.val_accuracy is not None else ""
        return text + (
            f" robust {last.val_robust_accuracy:.3f}" if last.val_robust_accuracy is not None else ""
        )

    def _maybe_check(self, epoch: int, global_step: int) -> None:
        guards = self.guards
        if guards.monitor is None or global_step % guards.check_every:
            return
        check = guards.monitor.check(self.clf, self.opt, global_step)
        self.history.co_checks.append(vars(check))
        if not check.collapsed:
            return
        details = {"fgsm_accuracy": check.fgsm_accuracy, "pgd_accuracy": check.pgd_accuracy}
        if guards.recoveries >= guards.max_recoveries:
            self.history.catastrophic_overfitting = True
            logger.warning(
                "catastrophic overfitting at step %d persists after %d recoveries: %s",
                global_step,
                guards.recoveries,
                details,
            )
            return
        guards.monitor.restore(self.clf, self.opt)
        shrunk = bool(getattr(self.method, "shrink_step", lambda _f: False)(guards.shrink))
        guards.recoveries += 1
        details.update(
            stepped_back_to=guards.monitor.reference.step if guards.monitor.reference else 0,
            step_shrunk=shrunk,
        )
        self.history.events.append(
            TrainingEvent(kind="catastrophic_overfitting", epoch=epoch + 1, step=global_step, details=details)
        )
        logger.warning(
            "catastrophic overfitting at step %d (%s): stepped back and shrank the step", global_step, details
        )


def _guards(
    clf: Classifier,
    method: TrainingMethod,
    config: TrainConfig,
    val: tuple[Tensor, Tensor] | None,
    head: tuple[Tensor, Tensor],
    steps: int,
    batch_size: int | None,
    private: bool = False,
) -> _Guards:
    best = None
    if val is not None and (config.keep_best or config.early_stopping is not None):
        best = BestCheckpoint(patience=config.early_stopping)
    elif config.early_stopping is not None:
        raise FortifyError("early_stopping needs validation data: pass val=(x_val, y_val)")
    threat, co_check_every = config.threat, config.co_check_every
    if co_check_every is None:
        # a check costs ~15 passes over 256 samples: every ~10k samples keeps it under ~10% of fast AT
        every = min(steps, max(1, math.ceil(CO_CHECK_SAMPLES / (batch_size or config.batch_size))))
        co_check_every = every if hasattr(method, "shrink_step") and threat is not None else 0
        # DP: stepping back on checks of training samples would steer the weights without noise
        co_check_every = 0 if private and val is None else co_check_every
    monitor = None
    if co_check_every > 0:
        if threat is None:
            raise FortifyError("co_check_every needs a threat to check against")
        if private and val is None:
            raise FortifyError(
                "co_check_every in a DP run needs val=(x_val, y_val): checks on training samples would "
                "steer the weights outside the privacy guarantee"
            )
        source = val if val is not None else head
        monitor = CatastrophicOverfittingMonitor(
            source[0][:CO_BATCH], source[1][:CO_BATCH], threat, drop=config.co_drop, seed=config.seed
        )
    return _Guards(best, monitor, co_check_every, config.co_shrink, config.co_max_recoveries)


def _source(
    model: nn.Module, data: tuple[Tensor, Tensor] | Iterable[Any], config: TrainConfig
) -> tuple[Classifier, TensorSource | BatchSource]:
    """The classifier to train and its batches, checked: tensors (or NumPy) shuffled with the seed, or
    a loader's."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and not is_batches(data[0]):
        x, y = from_numpy(*data)
        clf = _as_classifier(model, y, config.num_classes)
        clf.check_input(x)
        labels = check_labels(y, x.shape[0], clf.num_classes)
        return clf, TensorSource(x, labels, config.batch_size, config.seed)
    if not is_batches(data):
        raise TypeError(f"data must be (x, y) or an iterable of (x, y) batches, got {type(data).__name__}")
    source = BatchSource(data)
    clf = _as_classifier(model, source.head[1], config.num_classes)
    return clf, source.checked_by(clf)


def _optimizer(config: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
    )


def _as_classifier(model: nn.Module, y: Tensor, num_classes: int | None) -> Classifier:
    if isinstance(model, Classifier):
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"train takes an nn.Module or Classifier, got {type(model).__name__}")
    classes = num_classes if num_classes is not None else int(y.max()) + 1
    return Classifier(model, num_classes=max(classes, 2))


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v) for k, v in options.items()
    }
