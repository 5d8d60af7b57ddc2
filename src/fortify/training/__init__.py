"""Training: one seeded loop, pluggable methods.

Methods register by name: ``standard``, ``pgd`` (Madry et al. 2018), ``fast`` (FGSM-RS / N-FGSM),
``trades`` (Zhang et al. 2019), ``dp`` (DP-SGD through Opacus, Abadi et al. 2016, around any of
them); other capabilities add theirs (e.g. Gaussian ``noise`` for smoothing).
"""

from fortify.training import adversarial, dp, fast, noise, trades  # noqa: F401  (methods register on import)
from fortify.training.config import TrainConfig
from fortify.training.dp import PrivacySpec
from fortify.training.early_stopping import BestCheckpoint
from fortify.training.history import EpochRecord, TrainingEvent, TrainingHistory
from fortify.training.methods import StepContext, TrainingMethod, method_names, register_method
from fortify.training.overfitting import CatastrophicOverfittingMonitor, OverfittingCheck
from fortify.training.resume import TrainingInterrupted
from fortify.training.schedules import LR_SCHEDULES, eps_factor, lr_factor
from fortify.training.train import train

__all__ = [
    "train",
    "TrainingInterrupted",
    "TrainConfig",
    "PrivacySpec",
    "TrainingHistory",
    "EpochRecord",
    "TrainingEvent",
    "StepContext",
    "TrainingMethod",
    "register_method",
    "method_names",
    "BestCheckpoint",
    "CatastrophicOverfittingMonitor",
    "OverfittingCheck",
    "LR_SCHEDULES",
    "lr_factor",
    "eps_factor",
]
