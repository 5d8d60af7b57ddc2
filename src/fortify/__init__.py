"""fortify: take a PyTorch classifier from red team to runtime.

>>> import fortify as ft
>>> clf = ft.Classifier(module, num_classes=10)
>>> result = ft.evaluate(clf, x, y, ft.Linf(0.1), suite="quick")

The names below resolve on first use (PEP 562), so ``import fortify`` -- and ``fortify --help`` --
does not import torch; ``ft.Classifier``, ``ft.attacks`` ... import what they need when touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fortify._version import __version__

_SUBPACKAGES = (
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
    "scale",
    "testing",
    "track",
    "zoo",
)
_NAMES = {
    "evaluate": "fortify.evaluation",
    "sweep": "fortify.evaluation",
    "Classifier": "fortify.model",
    "BlackBox": "fortify.model",
    "Result": "fortify.result",
    "Guard": "fortify.runtime",
    "Monitor": "fortify.runtime",
    "Threat": "fortify.threat",
    "Linf": "fortify.threat",
    "L2": "fortify.threat",
    "L0": "fortify.threat",
    "make_threat": "fortify.threat",
    "TrainConfig": "fortify.training",
    "train": "fortify.training",
    "FortifyError": "fortify.types",
}

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
    "scale",
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


def __getattr__(name: str) -> Any:
    """Import a sub-package or a top-level name the first time it is read, then keep it."""
    if name in _SUBPACKAGES:
        value: Any = importlib.import_module(f"fortify.{name}")
    elif name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    else:
        raise AttributeError(f"module 'fortify' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
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
        scale,
        testing,
        track,
        zoo,
    )
    from fortify.evaluation.evaluate import evaluate
    from fortify.evaluation.sweep import sweep
    from fortify.model import BlackBox, Classifier
    from fortify.result import Result
    from fortify.runtime import Guard, Monitor
    from fortify.threat import L0, L2, Linf, Threat, make_threat
    from fortify.training import TrainConfig
    from fortify.training.train import train
    from fortify.types import FortifyError
