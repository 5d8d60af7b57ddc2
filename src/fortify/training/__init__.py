"""Training: one seeded loop, pluggable methods (standard now; adversarial and noise methods register here)."""

from fortify.training.methods import StepContext, TrainingMethod, method_names, register_method
from fortify.training.train import EpochRecord, TrainingHistory, train

__all__ = [
    "train",
    "TrainingHistory",
    "EpochRecord",
    "StepContext",
    "TrainingMethod",
    "register_method",
    "method_names",
]
