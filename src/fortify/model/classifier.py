"""The classifier that every attack, evaluation, defense and certificate talks to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fortify._validate import integer
from fortify.types import Bounds, FortifyError

DEFAULT_BATCH_SIZE = 512


def check_bounds(bounds: Sequence[float]) -> Bounds:
    """Validate a ``(low, high)`` pair and return it as floats."""
    if len(bounds) != 2:
        raise FortifyError(f"bounds must be a (low, high) pair, got {bounds!r}")
    low, high = float(bounds[0]), float(bounds[1])
    if not (low < high) or not all(map(torch.isfinite, torch.tensor([low, high]))):
        raise FortifyError(f"bounds must be finite with low < high, got {bounds!r}")
    return low, high


def check_inputs(x: Tensor, bounds: Bounds) -> None:
    """Raise ``FortifyError`` unless ``x`` is a non-empty finite floating batch inside ``bounds``
    (``TypeError`` when it is not a tensor)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise FortifyError(f"inputs must be a non-empty batch (N, ...), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise FortifyError(f"inputs must be floating point, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise FortifyError("inputs contain NaN or infinite values")
    low, high = bounds
    tol = 1e-5 * (high - low)
    lo, hi = float(x.min()), float(x.max())
    if lo < low - tol or hi > high + tol:
        raise FortifyError(
            f"inputs must lie in bounds [{low:g}, {high:g}], got values in [{lo:g}, {hi:g}] "
            "(normalise inside the Classifier with mean/std, not before it)"
        )


class Classifier(nn.Module):
    """Any ``nn.Module`` that returns logits, with its input space made explicit.

    ``Classifier(module, num_classes, bounds=(0, 1), mean=None, std=None)``

    Inputs live in ``bounds`` (default ``[0, 1]``); normalisation ``(x - mean) / std`` happens inside,
    so attacks and defenses always work in the input space. Calling the classifier (``clf(x)``) is the
    differentiable forward pass used by attacks; ``logits``, ``predict`` and ``predict_proba`` are
    gradient-free, validated and batched, and run on whatever device the module is on.

    A defended model is still a ``Classifier``: subclasses (preprocessing pipelines, ensembles) override
    ``forward`` and set ``differentiable`` / ``randomized`` so evaluation can attack them adaptively.
    """

    differentiable: bool = True
    randomized: bool = False
    mean: Tensor | None
    std: Tensor | None
    metadata: dict[str, Any]
    """JSON metadata of the file the classifier was loaded from (``zoo.load``); empty otherwise."""
    identity: dict[str, Any]
    """Which model this is (``fortify.result.identity.ModelIdentity``: architecture, parameters, weights
    file and its SHA-256, training run), set by whatever loaded it; ``describe`` records it."""

    def __init__(
        self,
        module: nn.Module,
        num_classes: int,
        bounds: Sequence[float] = (0.0, 1.0),
        mean: Sequence[float] | float | None = None,
        std: Sequence[float] | float | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        integer("num_classes", num_classes, low=2)
        if batch_size < 1:
            raise FortifyError(f"batch_size must be >= 1, got {batch_size!r}")
        self.module = module.eval()
        self.num_classes = num_classes
        self.bounds: Bounds = check_bounds(bounds)
        self.batch_size = batch_size
        self.register_buffer("mean", _channel_stat(mean, "mean"), persistent=False)
        self.register_buffer("std", _channel_stat(std, "std"), persistent=False)
        self.metadata = {}
        self.identity = {}
        if self.std is not None and bool((self.std <= 0).any()):
            raise FortifyError(f"std must be positive, got {std!r}")
        self.eval()

    @property
    def device(self) -> torch.device:
        for parameter in self.module.parameters():
            return parameter.device
        for buffer in self.module.buffers():
            return buffer.device
        return torch.device("cpu")

    def normalize(self, x: Tensor) -> Tensor:
        if self.mean is not None:
            x = x - _broadcast(self.mean, x)
        if self.std is not None:
            x = x / _broadcast(self.std, x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Differentiable logits ``(N, num_classes)`` for inputs ``(N, ...)`` in ``bounds``."""
        return self.module(self.normalize(x))

    @property
    def weight_dtype(self) -> torch.dtype | None:
        """The floating dtype of the module's weights (first parameter, else buffer); ``None`` if none."""
        for tensor in (*self.module.parameters(), *self.module.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
        return None

    def check_input(self, x: Tensor) -> None:
        """Raise ``FortifyError`` unless ``x`` is a non-empty floating batch inside ``bounds``, of the
        weights' dtype (fortify never casts silently: a float64 point rounded to float32 is another
        point, and an attack's ball is defined in the inputs' own dtype)."""
        check_inputs(x, self.bounds)
        weights = self.weight_dtype
        if weights is not None and x.dtype != weights:
            raise FortifyError(
                f"inputs are {x.dtype} but the model's weights are {weights}: cast the inputs "
                f"(x.to({weights})) or the model (clf.to({x.dtype}))"
            )

    def check_output(self, out: Tensor, n: int) -> Tensor:
        """``out`` if it is logits ``(n, num_classes)``, else a ``FortifyError`` saying what came back."""
        if out.dim() != 2 or out.shape[0] != n or out.shape[1] != self.num_classes:
            raise FortifyError(
                f"the module returned shape {tuple(out.shape)} for {n} inputs; expected (N, "
                f"{self.num_classes}) logits with N = {n} (num_classes={self.num_classes})"
            )
        return out

    @torch.no_grad()
    def logits(self, x: Tensor, *, check: bool = True) -> Tensor:
        """Logits ``(N, num_classes)`` without gradients, computed in batches of ``batch_size``."""
        if check:
            self.check_input(x)
        device = self.device
        outs = [
            self.check_output(self(chunk.to(device)), chunk.shape[0]) for chunk in x.split(self.batch_size)
        ]
        return torch.cat(outs)

    def predict(self, x: Tensor, *, check: bool = True) -> Tensor:
        """Predicted labels ``(N,)`` (int64) on the module's device."""
        return self.logits(x, check=check).argmax(dim=1)

    def predict_proba(self, x: Tensor, *, check: bool = True) -> Tensor:
        """Class probabilities ``(N, num_classes)`` (softmax of the logits)."""
        return self.logits(x, check=check).softmax(dim=1)

    def describe(self) -> dict[str, object]:
        """A JSON-ready description recorded in results: with the normalisation (``mean``, ``std``) when
        the classifier has one, and the model's ``identity`` when known."""
        info: dict[str, object] = {
            "class": type(self).__name__,
            "module": type(self.module).__name__,
            "num_classes": self.num_classes,
            "bounds": list(self.bounds),
            "differentiable": self.differentiable,
            "randomized": self.randomized,
            "parameters": sum(p.numel() for p in self.module.parameters()),
        }
        if self.mean is not None:
            info["mean"] = [float(f"{v:.8g}") for v in self.mean.tolist()]  # float32, as typed
        if self.std is not None:
            info["std"] = [float(f"{v:.8g}") for v in self.std.tolist()]
        if self.identity:
            info["identity"] = dict(self.identity)
        return info


def _channel_stat(value: Sequence[float] | float | None, name: str) -> Tensor | None:
    if value is None:
        return None
    try:
        tensor = torch.as_tensor(value, dtype=torch.float32).flatten()
    except (TypeError, ValueError) as exc:
        raise FortifyError(f"{name} must be a number or a sequence of numbers, got {value!r}") from exc
    if tensor.numel() == 0 or not bool(torch.isfinite(tensor).all()):
        raise FortifyError(f"{name} must be finite and non-empty, got {value!r}")
    return tensor


def _broadcast(stat: Tensor, x: Tensor) -> Tensor:
    """Per-channel statistics broadcast over ``(N, C, ...)``; a single value broadcasts everywhere."""
    if stat.numel() == 1:
        return stat.to(x.dtype).reshape(())
    if x.dim() < 2 or x.shape[1] != stat.numel():
        raise FortifyError(f"{stat.numel()} normalisation values do not match input shape {tuple(x.shape)}")
    return stat.to(x.dtype).reshape((1, -1) + (1,) * (x.dim() - 2))
