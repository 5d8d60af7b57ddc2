"""Open Inference Protocol v2 (KServe / Triton / MLServer) JSON shapes and tensor conversion.

Field names, datatypes and the flattened row-major ``data`` follow the protocol's REST schema, so any
OIP client works unchanged. Inputs may also be given nested (the protocol allows both); either way the
element count must equal the product of ``shape``. fortify accepts ``FP32``, ``FP64`` and ``UINT8``
inputs (``UINT8`` values ``v`` map to ``low + (high - low) * v / 255`` in the model's bounds); the
binary-data extension is refused with a 400 (send JSON data: ``binary_data=False`` in tritonclient).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from fortify.service.errors import BadRequest

ParameterValue = StrictStr | StrictBool | StrictInt | StrictFloat
Parameters = dict[str, ParameterValue]
INPUT_NAME = "input"
INPUT_DATATYPES = ("FP32", "FP64", "UINT8")
ID_PATTERN = r"^[\x20-\x7e]{0,128}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class RequestInput(_Model):
    name: str = Field(max_length=128)
    shape: list[StrictInt] = Field(max_length=8)
    datatype: str = Field(max_length=16)
    parameters: Parameters | None = None
    data: list[Any]


class RequestOutput(_Model):
    name: str = Field(max_length=128)
    parameters: Parameters | None = None


class InferenceRequest(_Model):
    id: str | None = Field(default=None, pattern=ID_PATTERN)
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=16)
    outputs: list[RequestOutput] | None = Field(default=None, max_length=16)


class ResponseOutput(_Model):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any]


class InferenceResponse(_Model):
    model_name: str
    model_version: str | None = None
    id: str
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(_Model):
    name: str
    datatype: str
    shape: list[int]


class MetadataServerResponse(_Model):
    name: str
    version: str
    extensions: list[str]


class MetadataModelResponse(_Model):
    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: Parameters | None = None


class ErrorResponse(_Model):
    error: str


OUTPUT_NAMES = ("label", "confidence", "status", "reasons", "event_id", "scores", "probabilities")


def output_metadata(num_classes: int, detectors: list[str], probabilities: bool) -> list[MetadataTensor]:
    """The outputs an infer response can carry (``scores`` when the guard has detectors,
    ``probabilities`` when the server exposes them)."""
    outs = [
        MetadataTensor(name="label", datatype="INT64", shape=[-1]),
        MetadataTensor(name="confidence", datatype="FP32", shape=[-1]),
        MetadataTensor(name="status", datatype="BYTES", shape=[-1]),
        MetadataTensor(name="reasons", datatype="BYTES", shape=[-1]),
        MetadataTensor(name="event_id", datatype="INT64", shape=[-1]),
    ]
    if detectors:
        outs.append(MetadataTensor(name="scores", datatype="FP32", shape=[-1, len(detectors)]))
    if probabilities:
        outs.append(MetadataTensor(name="probabilities", datatype="FP32", shape=[-1, num_classes]))
    return outs


def decode_input(
    inp: RequestInput, sample_shape: tuple[int, ...], bounds: tuple[float, float], max_rows: int
) -> tuple[torch.Tensor, str | None]:
    """The input as a float32 tensor ``(N, *sample_shape)`` and the first value problem, if any.

    Raises ``BadRequest`` for anything structurally wrong (name, datatype, shape, element count or
    type, batch size). Values that are non-finite or outside ``bounds`` are not structural: the tensor
    is returned with a one-line description of the problem, so the caller can let the guard record
    the attempt before refusing it.
    """
    if inp.name != INPUT_NAME:
        raise BadRequest(f"unknown input {inp.name!r}; this model has one input named {INPUT_NAME!r}")
    if inp.parameters and "binary_data_size" in inp.parameters:
        raise BadRequest("the binary tensor data extension is not supported; send the data as JSON")
    if inp.datatype not in INPUT_DATATYPES:
        raise BadRequest(
            f"datatype {inp.datatype!r} is not supported; use one of {', '.join(INPUT_DATATYPES)}"
        )
    expected = [-1, *sample_shape]
    if len(inp.shape) != len(expected) or list(inp.shape[1:]) != list(sample_shape):
        raise BadRequest(f"input shape {inp.shape} does not match the model's {expected}")
    rows = inp.shape[0]
    if not 1 <= rows <= max_rows:
        raise BadRequest(f"batch size {rows} is outside [1, {max_rows}]")
    count = math.prod(inp.shape)
    flat = _flatten(inp.data, inp.shape)
    if len(flat) != count:
        raise BadRequest(f"input has {len(flat)} elements; shape {inp.shape} needs {count}")
    kinds = set(map(type, flat))  # exact types: JSON true/false are bools, not numbers
    if inp.datatype == "UINT8":
        if not kinds <= {int} or not all(0 <= v <= 255 for v in flat):
            raise BadRequest("UINT8 data must be integers in [0, 255]")
        low, high = bounds
        array = low + (high - low) * (np.asarray(flat, dtype=np.float64) / 255.0)
    else:
        if not kinds <= {int, float}:
            raise BadRequest(f"{inp.datatype} data must be JSON numbers")
        try:
            array = np.asarray(flat, dtype=np.float64)
        except OverflowError:  # an integer literal beyond any float: out of range, like 1e400
            array = np.asarray([v if type(v) is float or abs(v) < 2**1023 else math.inf for v in flat])
    tensor = torch.from_numpy(array.astype(np.float32)).reshape(inp.shape)
    return tensor, _value_problem(array, bounds)


def _flatten(data: list[Any], shape: list[int]) -> list[Any]:
    """``data`` if flat; nested data must follow ``shape`` exactly (rectangular), then row-major flattened."""
    if all(not isinstance(v, list) for v in data):
        return data
    out: list[Any] = []

    def walk(node: list[Any], depth: int) -> None:  # depth <= len(shape) <= 8: bounded recursion
        if len(node) != shape[depth]:
            raise BadRequest(f"nested input data does not follow shape {shape} (dimension {depth})")
        if depth == len(shape) - 1:
            if any(isinstance(v, list) for v in node):
                raise BadRequest("input data is nested deeper than its shape")
            out.extend(node)
            return
        for child in node:
            if not isinstance(child, list):
                raise BadRequest(f"nested input data does not follow shape {shape} (dimension {depth + 1})")
            walk(child, depth + 1)

    walk(data, 0)
    return out


def _value_problem(array: np.ndarray, bounds: tuple[float, float]) -> str | None:
    finite = np.isfinite(array)
    if not finite.all():
        return f"input has {int((~finite).sum())} non-finite value(s) (NaN or Inf)"
    low, high = bounds
    below, above = int((array < low).sum()), int((array > high).sum())
    if below or above:
        return f"input has {below + above} value(s) outside the model's bounds [{low:g}, {high:g}]"
    return None
