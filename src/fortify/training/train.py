"""The training loop: seeded, batched, with per-epoch history and a progress bar."""

from __future__ import annotations

import time
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import Tensor, nn

from fortify import progress as progress_bars
from fortify.attacks.base import check_labels
from fortify.model import Classifier
from fortify.threat import Threat
from fortify.training.methods import StepContext, build_method
from fortify.types import FortifyError


ACCURACY_SUBSET = 5_000


class EpochRecord(BaseModel):
    """One epoch: mean training loss, accuracy (eval mode, first 5,000 training samples), time."""

    epoch: int
    loss: float
    accuracy: float
    time_s: float
    val_accuracy: float | None = None


class TrainingHistory(BaseModel):
    """What ``train`` did, epoch by epoch (stored in ``Result.sections["training"]`` when reported)."""

    method: str
    options: dict[str, Any] = Field(default_factory=dict)
    seed: int
    epochs: list[EpochRecord] = Field(default_factory=list)
    total_s: float = 0.0


def train(
    model: nn.Module,
    data: tuple[Tensor, Tensor],
    *,
    epochs: int = 1,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    method: str = "standard",
    threat: Threat | None = None,
    weight_decay: float = 0.0,
    val: tuple[Tensor, Tensor] | None = None,
    num_classes: int | None = None,
    progress: bool | None = None,
    **method_options: Any,
) -> TrainingHistory:
    """Train ``model`` in place on ``data = (x, y)`` with Adam and return the per-epoch history.

    ``model`` is an ``nn.Module`` returning logits or a ``Classifier`` (whose normalisation and bounds
    are then used). ``method`` picks the training method (``"standard"``; adversarial methods register
    themselves under their names) and ``method_options`` are passed to it; ``threat`` is the threat
    adversarial methods train against. ``val = (x_val, y_val)`` adds validation accuracy per epoch.
    Deterministic for a given ``seed`` on the same machine; leaves the model in eval mode.
    """
    x, y = data
    clf = _as_classifier(model, y, num_classes)
    clf.check_input(x)
    y = check_labels(y, x.shape[0], clf.num_classes)
    for label, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FortifyError(f"{label} must be an integer >= 1, got {value!r}")
    if not lr > 0:
        raise FortifyError(f"lr must be > 0, got {lr!r}")
    training_method = build_method(method, method_options)
    history = TrainingHistory(method=method, options=_jsonable(method_options), seed=seed)
    device = clf.device
    params = [p for p in clf.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    shuffle = torch.Generator().manual_seed(seed)
    method_gen = torch.Generator(device=device).manual_seed(seed + 1)
    steps = (x.shape[0] + batch_size - 1) // batch_size
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
        torch.manual_seed(seed)
        with progress_bars.bar(f"training ({method})", epochs * steps, progress) as ticker:
            for epoch in range(epochs):
                t0 = time.perf_counter()
                clf.module.train()
                order = torch.randperm(x.shape[0], generator=shuffle)
                loss_sum = 0.0
                for step, idx in enumerate(order.split(batch_size)):
                    xb, yb = x[idx].to(device), y[idx].to(device)
                    ctx = StepContext(threat, epoch, epochs, step, steps, method_gen)
                    loss = training_method.loss(clf, xb, yb, ctx)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    batch_loss = float(loss.detach())
                    loss_sum += batch_loss * len(idx)
                    ticker.advance(1, status=f"epoch {epoch + 1}/{epochs} loss {batch_loss:.3f}")
                clf.module.eval()
                record = EpochRecord(
                    epoch=epoch + 1,
                    loss=loss_sum / x.shape[0],
                    accuracy=_accuracy(clf, x[:ACCURACY_SUBSET], y[:ACCURACY_SUBSET]),
                    time_s=time.perf_counter() - t0,
                    val_accuracy=_accuracy(clf, *val) if val is not None else None,
                )
                history.epochs.append(record)
    clf.module.eval()
    history.total_s = time.perf_counter() - started
    return history


def _accuracy(clf: Classifier, x: Tensor, y: Tensor) -> float:
    pred = clf.predict(x, check=False).cpu()
    return float((pred == y.cpu()).float().mean())


def _as_classifier(model: nn.Module, y: Tensor, num_classes: int | None) -> Classifier:
    if isinstance(model, Classifier):
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"train takes an nn.Module or Classifier, got {type(model).__name__}")
    classes = num_classes if num_classes is not None else int(y.max()) + 1
    return Classifier(model, num_classes=max(classes, 2))


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v) for k, v in options.items()}
