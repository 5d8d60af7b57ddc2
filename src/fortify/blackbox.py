"""Black-box models: anything that maps a batch of inputs to scores or labels, with its queries counted.

``BlackBox(fn, num_classes, bounds=(0, 1), output="scores" | "labels")`` wraps any callable that takes
a float tensor ``(N, ...)`` in ``bounds`` and returns scores ``(N, num_classes)`` (logits or
probabilities: higher means more likely) or labels ``(N,)``, as a tensor or a NumPy array. Score- and
decision-based attacks (``Square``, ``HopSkipJump``, ``OnePixel``, ``ConstrainedPGD``) accept one; the
gradient attacks need a white-box ``Classifier``.

Loaders: ``from_sklearn`` (``predict_proba`` / ``predict``), ``from_onnx`` (onnxruntime) and
``classifier_from_onnx`` (a white-box ``Classifier`` through onnx2torch, where the graph converts).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import types
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from fortify.model import DEFAULT_BATCH_SIZE, Classifier, check_bounds
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
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise FortifyError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if output not in ("scores", "labels"):
            raise FortifyError(f"output must be 'scores' or 'labels', got {output!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise FortifyError(f"batch_size must be an integer >= 1, got {batch_size!r}")
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
        Classifier.check_input(self, x)  # type: ignore[arg-type]  # same checks, same messages

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


def from_sklearn(
    estimator: Any,
    *,
    bounds: Sequence[float] = (0.0, 1.0),
    output: Output = "scores",
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> BlackBox:
    """A ``BlackBox`` over a fitted scikit-learn classifier: ``predict_proba`` scores or ``predict`` labels.

    Inputs ``(N, ...)`` are flattened to ``(N, F)`` float64 rows. The estimator's ``classes_`` must be
    ``0 .. C-1`` so its columns line up with fortify's integer labels.
    """
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise FortifyError(f"{type(estimator).__name__} is not a fitted classifier (no classes_)")
    classes = np.asarray(classes)
    if classes.dtype.kind not in "iu" or not np.array_equal(classes, np.arange(len(classes))):
        raise FortifyError(f"the estimator's classes_ must be 0..C-1, got {classes.tolist()!r}")
    method = "predict_proba" if output == "scores" else "predict"
    if not hasattr(estimator, method):
        raise FortifyError(f"{type(estimator).__name__} has no {method}; use output='labels'")
    call = getattr(estimator, method)

    def fn(x: Tensor) -> np.ndarray:
        return np.asarray(call(x.reshape(x.shape[0], -1).cpu().double().numpy()))

    return BlackBox(fn, len(classes), bounds, output, batch_size=batch_size)


def from_onnx(
    path: str | os.PathLike[str],
    *,
    num_classes: int | None = None,
    bounds: Sequence[float] = (0.0, 1.0),
    output: Output = "scores",
    output_index: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> BlackBox:
    """A ``BlackBox`` that runs an ONNX file with onnxruntime (CPU), reading its output ``output_index``.

    The graph's single input receives ``(N, ...)`` float32; ``num_classes`` defaults to the static last
    dimension of a score output. Needs the ``onnx`` extra (``pip install fortify[onnx]``).
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise FortifyError("from_onnx needs onnxruntime: pip install 'fortify[onnx]'") from exc
    if not os.path.isfile(path):
        raise FortifyError(f"no ONNX file at {os.fspath(path)!r}")
    try:
        session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        raise FortifyError(f"onnxruntime cannot load {os.fspath(path)!r}: {exc}") from exc
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise FortifyError(f"the ONNX graph has {len(inputs)} inputs; a classifier has exactly one")
    if not 0 <= output_index < len(outputs):
        raise FortifyError(f"output_index must lie in [0, {len(outputs) - 1}], got {output_index}")
    if num_classes is None:
        num_classes = _static_classes(outputs[output_index].shape, output)
    name = inputs[0].name

    def fn(x: Tensor) -> np.ndarray:
        return session.run(None, {name: x.cpu().float().numpy()})[output_index]

    return BlackBox(fn, num_classes, bounds, output, batch_size=batch_size)


def _static_classes(shape: Sequence[Any], output: Output) -> int:
    if output == "scores" and len(shape) == 2 and isinstance(shape[1], int):
        return int(shape[1])
    raise FortifyError(f"cannot read the number of classes from output shape {list(shape)}; pass num_classes")


def classifier_from_onnx(
    path: str | os.PathLike[str],
    *,
    num_classes: int | None = None,
    bounds: Sequence[float] = (0.0, 1.0),
    mean: Sequence[float] | float | None = None,
    std: Sequence[float] | float | None = None,
) -> Classifier:
    """A white-box ``Classifier`` from an ONNX file whose graph onnx2torch converts to PyTorch modules.

    The graph must output logits ``(N, num_classes)``. A graph with an operator onnx2torch cannot
    convert raises ``FortifyError``; attack such a model as a black box with ``from_onnx`` instead.
    """
    try:
        import onnx
    except ImportError as exc:
        raise FortifyError("classifier_from_onnx needs onnx: pip install 'fortify[onnx]'") from exc
    convert = _onnx2torch_convert()
    if not os.path.isfile(path):
        raise FortifyError(f"no ONNX file at {os.fspath(path)!r}")
    try:
        graph = onnx.load(os.fspath(path))
    except Exception as exc:  # protobuf decode errors have no common public base class
        raise FortifyError(f"cannot read ONNX file {os.fspath(path)!r}: {exc}") from exc
    if num_classes is None:
        dims = graph.graph.output[0].type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else "?" for d in dims]
        num_classes = _static_classes(shape, "scores")
    try:
        module = convert(graph)
    except Exception as exc:  # onnx2torch raises a different exception type per unsupported node
        raise FortifyError(
            f"onnx2torch cannot convert {os.fspath(path)!r} ({type(exc).__name__}: {exc}); "
            "use ft.blackbox.from_onnx to attack it as a black box"
        ) from exc
    return Classifier(module, num_classes, bounds, mean, std)


def _onnx2torch_convert() -> Callable[[Any], torch.nn.Module]:
    """``onnx2torch.convert``, importable without torchvision.

    onnx2torch imports torchvision at import time for two detection operators only (NonMaxSuppression,
    RoiAlign); fortify never installs torchvision beside its CPU torch. When torchvision is absent, a
    placeholder is visible during the import alone, and those two operators raise if a graph uses them.
    """
    if importlib.util.find_spec("onnx2torch") is None:
        raise FortifyError("classifier_from_onnx needs onnx2torch: pip install 'fortify[onnx]'")
    if "onnx2torch" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        from onnx2torch import convert

        return convert
    placeholder, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")

    def _missing(*args: Any, **kwargs: Any) -> Any:
        raise FortifyError("this ONNX graph uses a detection operator that needs torchvision")

    ops.__getattr__ = lambda name: _missing  # type: ignore[method-assign]
    placeholder.ops = ops  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in ("torchvision", "torchvision.ops")}
    sys.modules.update({"torchvision": placeholder, "torchvision.ops": ops})
    try:
        from onnx2torch import convert
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
    return convert
from fortify.service.client import from_url  # noqa: E402, F401  (the OIP v2 client; needs BlackBox above)
