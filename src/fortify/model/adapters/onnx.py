"""ONNX models: ``from_onnx`` (a ``BlackBox`` run by onnxruntime) and ``classifier_from_onnx`` (a white-box
``Classifier`` through onnx2torch, where the graph converts). Both need the ``onnx`` extra.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fortify.model.blackbox import BlackBox, Output
from fortify.model.classifier import DEFAULT_BATCH_SIZE, Classifier
from fortify.types import FortifyError


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
