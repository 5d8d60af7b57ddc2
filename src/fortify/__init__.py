"""fortify: take a PyTorch classifier from red team to runtime.

>>> import fortify as ft
>>> clf = ft.Classifier(module, num_classes=10)
>>> result = ft.evaluate(clf, x, y, ft.Linf(0.1), suite="quick")
"""

from fortify import (
    attacks,
    blackbox,
    certify,
    data,
    defenses,
    detect,
    gate,
    model,
    report,
    runtime,
    testing,
    track,
    zoo,
)
from fortify._version import __version__
from fortify.evaluation import evaluate, sweep
from fortify.model import BlackBox, Classifier
from fortify.result import Result
from fortify.runtime import Guard, Monitor
from fortify.threat import L0, L2, Linf, Threat, make_threat
from fortify.training import TrainConfig, train
from fortify.types import FortifyError

__all__ = [
    "__version__",
    "attacks",
    "blackbox",
    "certify",
    "data",
    "defenses",
    "detect",
    "gate",
    "model",
    "report",
    "runtime",
    "testing",
    "track",
    "zoo",
    "Classifier",
    "BlackBox",
    "Result",
    "Guard",
    "Monitor",
    "Threat",
    "Linf",
    "L2",
    "L0",
    "make_threat",
    "evaluate",
    "sweep",
    "train",
    "TrainConfig",
    "FortifyError",
]
