"""The record of a training run: per-epoch figures and the events the loop handled on its own."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from fortify.result.identity import PrivacyBudget


class EpochRecord(BaseModel):
    """One epoch: mean training loss, accuracy (eval mode, first 5,000 training samples), time, and when
    validation data is given, clean and robust (PGD-``val_steps``) validation accuracy."""

    epoch: int
    loss: float
    accuracy: float
    time_s: float
    val_accuracy: float | None = None
    val_robust_accuracy: float | None = None
    lr: float | None = None
    eps: float | None = None


class TrainingEvent(BaseModel):
    """Something the loop did on its own: ``catastrophic_overfitting`` (recovered), ``early_stop``,
    ``restored_best``, ``replaced_batchnorm`` (DP training with ``replace_batchnorm=True``: the layers
    that became GroupNorm)."""

    kind: str
    epoch: int
    step: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class TrainingHistory(BaseModel):
    """What ``train`` did, epoch by epoch (stored in ``Result.sections["training"]`` when reported).

    ``privacy``: for a differentially private run (``method="dp"``), the budget it spent
    (``fortify.result.identity.PrivacyBudget``: epsilon, delta, accountant, noise multiplier, clip
    norm, sample rate, steps); ``None`` otherwise."""

    method: str
    options: dict[str, Any] = Field(default_factory=dict)
    seed: int
    epochs: list[EpochRecord] = Field(default_factory=list)
    total_s: float = 0.0
    config: dict[str, Any] = Field(default_factory=dict)
    events: list[TrainingEvent] = Field(default_factory=list)
    co_checks: list[dict[str, float | int | bool]] = Field(default_factory=list)
    best_epoch: int | None = None
    catastrophic_overfitting: bool = False
    privacy: PrivacyBudget | None = None
