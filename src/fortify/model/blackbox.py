"""Black-box models: anything that maps a batch of inputs to scores or labels, with its queries counted.

``BlackBox(fn, num_classes, bounds=(0, 1), output="scores" | "labels")`` wraps any callable that takes
a float tensor ``(N, ...)`` in ``bounds`` and returns scores ``(N, num_classes)`` (logits or
probabilities: higher means more likely) or labels ``(N,)``, as a tensor or a NumPy array. Score- and
decision-based attacks (``Square``, ``HopSkipJump``, ``OnePixel``, ``ConstrainedPGD``) accept one; the
gradient attacks need a white-box ``Classifier``. Loaders for scikit-learn and ONNX models are in
``fortify.model.adapters``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from fortify._validate import integer
from fortify.model.classifier import DEFAULT_BATCH_SIZE, check_bounds, check_inputs
from fortify.types import Bounds, FortifyError

Output = Literal["scores", "labels"]


class BlackBox:
    """A model seen only through its outputs, every query counted.

    ``fn`` maps a float tensor ``(n, ...)`` on ``device`` to scores ``(n, num_classes)`` or labels
    ``(n,)`` (tensor, NumPy array or anything ``torch.as_tensor`` takes); it is called on chunks of at
    most ``batch_size`` rows. ``queries`` counts rows sent to ``fn`` (one query = one input evaluated),
    ``calls`` counts invocations of ``fn``; both are updated under a lock, so one ``BlackBox`` may serve
    several threads. A wrong output shape, a label outside ``[0, num_classes)`` or NaN scores raise
    ``FortifyError``.

    >>> bb = ft.BlackBox(lambda x: my_model(x), num_classes=10)
    >>> x_adv = ft.attacks.Square(n_queries=1000)(bb, x, y, ft.Linf(0.1))
    """

    differentiable: bool = False

    def __init__(
        self,
        fn: Callable[[Tensor], Any],
        num_classes: int,
        bounds: Sequence[float] = (0.0, 1.0),
        output: Output = "scores",
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str | torch.device = "cpu",
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        integer("num_classes", num_classes, low=2)
        if output not in ("scores", "labels"):
            raise FortifyError(f"output must be 'scores' or 'labels', got {output!r}")
        integer("batch_size", batch_size, low=1)
        self.fn = fn
        self.num_classes = num_classes
        self.bounds: Bounds = check_bounds(bounds)
        self.output: Output = output
        self.batch_size = batch_size
        self.device = torch.device(device)
        self._lock = threading.Lock()
        self._queries = 0
        self._calls = 0

    def __repr__(self) -> str:
        return f"BlackBox(num_classes={self.num_classes}, bounds={self.bounds}, output={self.output!r})"

    @property
    def queries(self) -> int:
        """Rows evaluated by ``fn`` since creation or the last ``reset_queries``."""
        with self._lock:
            return self._queries

    @property
    def calls(self) -> int:
        """Invocations of ``fn`` since creation or the last ``reset_queries``."""
        with self._lock:
            return self._calls

    def reset_queries(self) -> tuple[int, int]:
        """Zero both counters and return their previous values ``(queries, calls)``."""
        with self._lock:
            previous = (self._queries, self._calls)
            self._queries = self._calls = 0
        return previous

    def check_input(self, x: Tensor) -> None:
        """Raise ``FortifyError`` unless ``x`` is a non-empty finite floating batch inside ``bounds``."""
        check_inputs(x, self.bounds)

    def __call__(self, x: Tensor, *, check: bool = True) -> Tensor:
        """Raw output for ``x`` ``(N, ...)``: float scores ``(N, num_classes)`` or int64 labels ``(N,)``."""
        if check:
            self.check_input(x)
        outs = [self._query(chunk) for chunk in x.detach().split(self.batch_size)]
        return torch.cat(outs).to(x.device)

    def scores(self, x: Tensor, *, check: bool = True) -> Tensor:
        """Scores ``(N, num_classes)``; raises ``FortifyError`` for a labels-only model."""
        if self.output != "scores":
            raise FortifyError("this BlackBox returns labels only; it has no scores")
        return self(x, check=check)

    def predict(self, x: Tensor, *, check: bool = True) -> Tensor:
        """Predicted labels ``(N,)`` int64 (the argmax of the scores for a score model)."""
        out = self(x, check=check)
        return out.argmax(dim=1) if self.output == "scores" else out

    def describe(self) -> dict[str, object]:
        """A JSON-ready description recorded in results."""
        return {
            "class": type(self).__name__,
            "num_classes": self.num_classes,
            "bounds": list(self.bounds),
            "output": self.output,
            "differentiable": False,
        }

    def _query(self, chunk: Tensor) -> Tensor:
        n = chunk.shape[0]
        raw = self.fn(chunk.to(self.device))
        with self._lock:
            self._queries += n
            self._calls += 1
        return self._validated(raw, n)

    def _validated(self, raw: Any, n: int) -> Tensor:
        try:
            out = torch.as_tensor(np.asarray(raw) if not isinstance(raw, Tensor) else raw)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise FortifyError(f"the black box returned {type(raw).__name__}, not an array") from exc
        out = out.detach().cpu()
        if self.output == "labels":
            if out.dim() == 2 and out.shape[1] == 1:
                out = out[:, 0]
            if out.shape != (n,) or out.is_floating_point() and not bool((out == out.round()).all()):
                raise FortifyError(
                    f"the black box returned shape {tuple(out.shape)} / {out.dtype}; "
                    f"expected ({n},) integer labels"
                )
            out = out.long()
            if n and (int(out.min()) < 0 or int(out.max()) >= self.num_classes):
                raise FortifyError(f"the black box returned labels outside [0, {self.num_classes - 1}]")
            return out
        if out.shape != (n, self.num_classes) or not out.is_floating_point():
            raise FortifyError(
                f"the black box returned shape {tuple(out.shape)} / {out.dtype}; "
                f"expected ({n}, {self.num_classes}) float scores"
            )
        if bool(torch.isnan(out).any()):
            raise FortifyError("the black box returned NaN scores")
        return out
