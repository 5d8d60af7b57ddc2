"""The configuration of one training run, as one frozen object that can be shipped and stored.

``TrainConfig`` holds every setting of ``ft.train`` except the data and the progress reporter: the
optimisation (epochs, learning rate and its schedule, optimizer, batch size, seed), the method and its
options, the threat and its epsilon curriculum, validation and the guards against overfitting. It is
validated when built (each bad value raises ``FortifyError`` naming it) and round-trips through JSON
(``to_dict`` / ``from_dict``), so distributed workers and resumable checkpoints carry the same run.

>>> config = ft.TrainConfig(epochs=10, method="pgd", threat=ft.Linf(0.1), method_options={"steps": 7})
>>> history = ft.train(model, (x, y), config)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from fortify._validate import integer
from fortify.threat import Threat
from fortify.training.schedules import check_ramp, check_schedule
from fortify.types import FortifyError

OPTIMIZERS = ("adam", "sgd")


class TrainConfig(BaseModel):
    """Every setting of one training run (see ``ft.train`` for what each one does)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    epochs: int = 1
    lr: float = 1e-3
    batch_size: int = 128
    seed: int = 0
    method: str = "standard"
    method_options: dict[str, Any] = Field(default_factory=dict)
    threat: Threat | None = None
    weight_decay: float = 0.0
    optimizer: str = "adam"
    lr_schedule: str = "constant"
    eps_ramp: float = 0.0
    val_steps: int = 10
    early_stopping: int | None = None
    keep_best: bool = True
    co_check_every: int | None = None
    co_drop: float = 0.2
    co_shrink: float = 0.5
    co_max_recoveries: int = 3
    num_classes: int | None = None

    def __init__(self, **settings: Any) -> None:
        if isinstance(settings.get("threat"), dict):
            settings["threat"] = Threat.from_dict(settings["threat"])
        _check(settings)
        super().__init__(**settings)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TrainConfig:
        """A config from ``ft.train``'s keyword form: known settings by name, the rest method options."""
        known = {k: v for k, v in options.items() if k in cls.model_fields and k != "method_options"}
        extra = {k: v for k, v in options.items() if k not in cls.model_fields}
        if "method_options" in options:
            raise FortifyError("pass method options as keywords, or a TrainConfig with method_options")
        return cls(**known, method_options=extra)

    @field_serializer("threat")
    def _threat_as_dict(self, threat: Threat | None) -> dict[str, Any] | None:
        return None if threat is None else threat.to_dict()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (the threat as ``{"norm", "eps"}``); ``from_dict`` reads them back."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> TrainConfig:
        return cls(**settings)


def _check(settings: dict[str, Any]) -> None:
    """Raise ``FortifyError`` for the first bad setting, in the order ``ft.train`` always checked them."""
    for name in ("epochs", "batch_size", "val_steps"):
        if name in settings:
            integer(name, settings[name], low=1)
    if "co_max_recoveries" in settings:
        integer("co_max_recoveries", settings["co_max_recoveries"], low=0)
    if "lr" in settings and not settings["lr"] > 0:
        raise FortifyError(f"lr must be > 0, got {settings['lr']!r}")
    if "co_shrink" in settings and not 0 < settings["co_shrink"] < 1:
        raise FortifyError(f"co_shrink must be in (0, 1), got {settings['co_shrink']!r}")
    if "lr_schedule" in settings:
        check_schedule(settings["lr_schedule"])
    if "eps_ramp" in settings:
        check_ramp(settings["eps_ramp"])
    threat = settings.get("threat")
    if threat is not None and not isinstance(threat, Threat):
        raise TypeError(f"threat must be a fortify Threat (ft.Linf, ft.L2...), got {type(threat).__name__}")
    if "weight_decay" in settings and not settings["weight_decay"] >= 0:
        raise FortifyError(f"weight_decay must be >= 0, got {settings['weight_decay']!r}")
    if settings.get("optimizer", "adam") not in OPTIMIZERS:
        raise FortifyError(f"unknown optimizer {settings['optimizer']!r}; choose one of {list(OPTIMIZERS)}")
    if settings.get("co_check_every") is not None:
        integer("co_check_every", settings["co_check_every"], low=0)
