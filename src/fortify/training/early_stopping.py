"""Keep the best checkpoint and stop when a validation metric stops improving.

Robust overfitting (Rice, Wong & Kolter, "Overfitting in adversarially robust deep learning", ICML
2020, arXiv:2002.11569): during adversarial training, robust *test* accuracy peaks (typically right
after a learning-rate decay) and then falls while robust training accuracy keeps rising. Their remedy,
early stopping on robust validation accuracy and keeping the best checkpoint, matches the gains of
every other regulariser they tried. ``BestCheckpoint`` does exactly that, in memory.
"""

from __future__ import annotations

from torch import Tensor, nn

from fortify._validate import integer
from fortify.types import FortifyError


def snapshot(module: nn.Module) -> dict[str, Tensor]:
    """A detached copy of the module's state (weights and buffers)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class BestCheckpoint:
    """Tracks a metric to maximise, keeps the weights of its best epoch, and says when to stop.

    ``patience``: stop after this many epochs without an improvement larger than ``min_delta``
    (``None``: never stop, only keep the best weights).
    """

    def __init__(self, *, patience: int | None = None, min_delta: float = 0.0) -> None:
        if patience is not None:
            integer("patience", patience, low=1, note=" or None")
        if not min_delta >= 0:
            raise FortifyError(f"min_delta must be >= 0, got {min_delta!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.since_best = 0
        self._state: dict[str, Tensor] | None = None

    def update(self, module: nn.Module, value: float, epoch: int) -> bool:
        """Record the metric after ``epoch``; copy the weights if it is the best so far. True = stop now."""
        if self.best_value is None or value > self.best_value + self.min_delta:
            self.best_value, self.best_epoch, self.since_best = float(value), epoch, 0
            self._state = snapshot(module)
        else:
            self.since_best += 1
        return self.patience is not None and self.since_best >= self.patience

    def restore(self, module: nn.Module) -> bool:
        """Load the best weights back into ``module``; False when nothing was recorded."""
        if self._state is None:
            return False
        module.load_state_dict(self._state)
        return True
