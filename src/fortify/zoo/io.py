"""Safe model files: weights in safetensors, metadata as JSON in the same file's header.

Nothing is ever unpickled: a pickle-based file (``.pt``/``.pth``/``.pkl``/``.ckpt`` or a pickle / zip
payload) is refused with an explanation, because loading it could execute arbitrary code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors
from torch import nn

from fortify._files import atomic_write_bytes, file_sha256
from fortify._untrusted import load_json
from fortify._version import __version__
from fortify.model import Classifier
from fortify.result.identity import (
    TRAINING_RUN,
    TrainingRun,
    new_training_run,
    training_settings,
)
from fortify.types import FortifyError, UnsafeFileError
from fortify.zoo.architectures import SPEC_ATTRIBUTE, names
from fortify.zoo.architectures import create as create_zoo
from fortify.zoo.factory import build, is_import_path

Number = Annotated[StrictFloat | StrictInt, Field(allow_inf_nan=False)]

META_KEY = "fortify"
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}


def save(
    model: nn.Module,
    path: str | Path,
    *,
    factory: str | None = None,
    factory_kwargs: Mapping[str, Any] | None = None,
    **meta: Any,
) -> Path:
    """Write ``model`` (any module, or a ``Classifier`` around one) to ``path`` as safetensors.

    A zoo module (``ft.zoo.create``) is recorded by architecture name. Any other module needs
    ``factory="pkg.module:function"`` (and its ``factory_kwargs``) that rebuilds it, plus
    ``input_shape=(C, H, W)`` and, unless ``model`` is a ``Classifier``, ``num_classes``; ``ft.zoo.load``
    rebuilds it only with ``trust_code=True``. ``meta`` adds JSON-ready metadata (dataset, training
    method, metrics...); bounds, normalisation and the fortify version are recorded automatically.
    A file with a ``training`` history (``TrainingHistory`` as JSON) and no ``training_run`` gets a new
    ``training_run`` record (``fortify.result.identity.TrainingRun``: id, time, config digest, and a
    differentially private run's budget), which ``ft.zoo.load`` puts into the model's identity and so
    into every Result about it.
    """
    module, clf_meta = _unwrap(model)
    spec = getattr(module, SPEC_ATTRIBUTE, None)
    if spec is None:
        known = {**clf_meta, **meta}
        if isinstance(model, Classifier):
            known.setdefault("num_classes", model.num_classes)
        spec = _factory_spec(module, factory, factory_kwargs, known)
    elif factory is not None:
        raise FortifyError("a zoo model is rebuilt by its architecture name; give no factory")
    record = {**spec, **clf_meta, **meta, "fortify_version": __version__}
    if "training_run" in meta:
        try:
            TRAINING_RUN.validate_python(meta["training_run"])
        except ValidationError as exc:
            raise FortifyError(f"training_run: {_problems(exc)}") from exc
    elif isinstance(meta.get("training"), Mapping):
        record["training_run"] = _training_run(meta["training"], meta.get("dataset"))
    try:
        header = json.dumps(record)
    except TypeError as exc:
        raise FortifyError(f"metadata must be JSON-serialisable: {exc}") from exc
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    return atomic_write_bytes(path, save_tensors(tensors, metadata={META_KEY: header}))


def _factory_spec(
    module: nn.Module, factory: str | None, kwargs: Mapping[str, Any] | None, meta: dict[str, Any]
) -> dict[str, Any]:
    if factory is None:
        raise FortifyError(
            f"a {type(module).__name__} was not built by ft.zoo.create: give factory='pkg.module:function' "
            "(and factory_kwargs) that rebuilds it, with input_shape and num_classes"
        )
    if not is_import_path(factory):
        raise FortifyError(f"factory must be an import path pkg.module:function, got {factory[:80]!r}")
    missing = [k for k in ("input_shape", "num_classes") if k not in meta]
    if missing:
        raise FortifyError(f"saving {factory} needs {' and '.join(missing)} (e.g. input_shape=(3, 32, 32))")
    return {
        "arch": factory,
        "factory": factory,
        "factory_kwargs": dict(kwargs or {}),
        "input_shape": list(meta["input_shape"]),
        "num_classes": meta["num_classes"],
    }


def _training_run(training: Mapping[str, Any], dataset: Any) -> TrainingRun:
    """A new run record for a training history: its digest covers every setting of the run; a DP
    run's budget (``training["privacy"]``) is carried into the record."""
    method = training.get("method")
    privacy = training.get("privacy")
    try:
        return new_training_run(
            training_settings(training),
            method=method if isinstance(method, str) else None,
            dataset=dataset if isinstance(dataset, str) else None,
            privacy=privacy if isinstance(privacy, Mapping) else None,
        )
    except ValidationError as exc:
        raise FortifyError(f"training.privacy: {_problems(exc)}") from exc


MAX_HEADER_BYTES = 16 * 2**20
"""Largest metadata JSON read from a model file."""
MAX_INPUT_VALUES = 2**24
"""Most values one input may have (a 4096 x 4096 image): a larger shape is refused before building."""
MAX_CLASSES = 100_000


class ModelMetadata(BaseModel):
    """What a model file must say before anything is built from it; other keys are kept as given."""

    model_config = ConfigDict(extra="allow")

    arch: StrictStr
    input_shape: list[Annotated[StrictInt, Field(ge=1, le=MAX_INPUT_VALUES)]] = Field(
        min_length=1, max_length=4
    )
    num_classes: Annotated[StrictInt, Field(ge=2, le=MAX_CLASSES)]
    bounds: tuple[Number, Number] = (0.0, 1.0)
    mean: Number | list[Number] | None = Field(default=None)
    std: Number | list[Number] | None = Field(default=None)
    training_run: TrainingRun | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModelMetadata:
        if math.prod(self.input_shape) > MAX_INPUT_VALUES:
            raise ValueError(
                f"input_shape {self.input_shape} has {math.prod(self.input_shape)} values per input "
                f"(at most {MAX_INPUT_VALUES})"
            )
        low, high = self.bounds
        if not low < high:
            raise ValueError(f"bounds must have low < high, got {list(self.bounds)}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if isinstance(value, list) and len(value) not in (1, self.input_shape[0]):
                raise ValueError(f"{name} has {len(value)} values for {self.input_shape[0]} input channel(s)")
        return self


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata stored in a fortify safetensors file, validated (``ModelMetadata``)."""
    source = _checked_path(path)
    header = _header(source).get(META_KEY)
    if header is None:
        raise FortifyError(f"{source} has no fortify metadata; was it written by ft.zoo.save?")
    raw = load_json(header, f"{source}: fortify metadata", max_bytes=MAX_HEADER_BYTES)
    if not isinstance(raw, dict):
        raise FortifyError(f"{source}: fortify metadata must be a JSON object, got {type(raw).__name__}")
    try:
        ModelMetadata.model_validate(raw)
    except ValidationError as exc:
        raise FortifyError(f"{source}: fortify metadata: {_problems(exc)}") from exc
    factory = raw.get("factory")
    if factory is not None:
        if not isinstance(factory, str) or not is_import_path(factory) or raw["arch"] != factory:
            raise FortifyError(f"{source}: fortify metadata: factory must be an import path equal to arch")
        if not isinstance(raw.get("factory_kwargs", {}), dict):
            raise FortifyError(f"{source}: fortify metadata: factory_kwargs must be an object")
    elif raw["arch"] not in names():
        raise FortifyError(
            f"{source}: unknown architecture {raw['arch'][:60]!r}; known: {', '.join(names())}"
        )
    return raw


def _header(source: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(source), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise FortifyError(f"{source} is not a readable safetensors file: {_first_line(exc)}") from exc


def _tensor_shapes(source: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    try:
        with safe_open(str(source), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise FortifyError(f"{source} is not a readable safetensors file: {_first_line(exc)}") from exc


def _mismatch(
    path: Path, arch: str, wanted: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]
) -> str:
    """One line saying how the file's tensors differ from the architecture's (torch's dump is many)."""
    missing = [k for k in wanted if k not in found]
    unexpected = [k for k in found if k not in wanted]
    shapes = [
        f"{k} {list(found[k])} vs {list(wanted[k])}" for k in wanted if k in found and found[k] != wanted[k]
    ]
    parts = [
        f"{len(items)} {label} ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes))
        if items
    ]
    return f"{path}: weights do not match architecture {arch!r}: " + "; ".join(parts)


def load(
    path: str | Path, *, device: str | torch.device | None = None, trust_code: bool = False
) -> Classifier:
    """Rebuild the model saved at ``path`` as a ``Classifier``; its ``metadata`` holds the file's JSON.

    A model saved with a ``factory`` is rebuilt by importing that code, which runs it: only with
    ``trust_code=True`` (a file alone never imports anything). The metadata is validated and the
    architecture is first built on torch's ``meta`` device (no memory) and compared with the file's
    tensors, so a crafted file cannot make fortify allocate more than the weights it actually holds.
    The classifier's ``identity`` (``fortify.result.identity.ModelIdentity``) names the architecture,
    the parameter count, this file and the SHA-256 of its bytes, and the training run it records.
    """
    source = Path(path)
    meta = read_metadata(source)
    shape, classes = tuple(meta["input_shape"]), meta["num_classes"]
    if "factory" in meta and not trust_code:
        raise FortifyError(
            f"{source} is rebuilt by importing {meta['factory']}, which runs that code: pass "
            f"trust_code=True (CLI: --model {meta['factory']} --weights {source})"
        )

    def create(arch: str, shape: tuple[int, ...], classes: int) -> nn.Module:
        if "factory" in meta:
            return build(meta["factory"], meta.get("factory_kwargs"))
        return create_zoo(arch, shape, classes)

    try:
        with torch.device("meta"):
            skeleton = create(meta["arch"], shape, classes)
    except (RuntimeError, ValueError) as exc:  # e.g. an image too small for the architecture's layers
        raise FortifyError(
            f"{source}: architecture {meta['arch']!r} cannot take input shape {list(shape)}: "
            f"{_first_line(exc)}"
        ) from exc
    wanted = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    found = _tensor_shapes(source)
    if wanted != found:
        raise FortifyError(_mismatch(source, meta["arch"], wanted, found))
    module = create(meta["arch"], shape, classes)
    try:
        state = load_file(str(source), device=str(device) if device is not None else "cpu")
        module.load_state_dict(state)
    except (SafetensorError, RuntimeError) as exc:
        raise FortifyError(
            f"{source}: weights do not load into architecture {meta['arch']!r}: {_first_line(exc)}"
        ) from exc
    if device is not None:
        module.to(device)
    clf = Classifier(
        module,
        num_classes=classes,
        bounds=tuple(meta.get("bounds", (0.0, 1.0))),
        mean=meta.get("mean"),
        std=meta.get("std"),
    )
    clf.metadata = meta
    clf.identity = file_identity(
        meta["arch"], "factory" if "factory" in meta else "zoo", module, source, meta.get("training_run")
    )
    return clf


def file_identity(
    architecture: str,
    kind: str,
    module: nn.Module,
    weights: Path,
    training_run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The identity of ``module`` loaded from the file ``weights``, in the shape of
    ``fortify.result.identity.ModelIdentity`` (checked when a Result holding it is built): ``kind``
    is its ``source`` (``zoo``, ``factory`` or ``onnx``); the digest is of the file's bytes now,
    just after loading."""
    identity: dict[str, Any] = {
        "architecture": architecture[:300],
        "source": kind,
        "parameters": sum(p.numel() for p in module.parameters()),
        "weights_file": str(weights)[:1000],
        "weights_sha256": file_sha256(weights),
    }
    if training_run:
        identity["training_run"] = dict(training_run)
    return identity


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _problems(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or 'metadata'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()[:3]
    ]
    return "; ".join(parts)


def _unwrap(model: nn.Module) -> tuple[nn.Module, dict[str, Any]]:
    if isinstance(model, Classifier):
        meta: dict[str, Any] = {"bounds": list(model.bounds)}
        if model.mean is not None:
            meta["mean"] = model.mean.tolist()
        if model.std is not None:
            meta["std"] = model.std.tolist()
        return model.module, meta
    if isinstance(model, nn.Module):
        return model, {}
    raise TypeError(f"expected an nn.Module or Classifier, got {type(model).__name__}")


def _checked_path(path: str | Path) -> Path:
    source = Path(path)
    if not source.is_file():
        raise FortifyError(f"model file {source} does not exist")
    with source.open("rb") as handle:
        head = handle.read(9)
    header_len = int.from_bytes(head[:8], "little") if len(head) == 9 else -1
    is_safetensors = 0 < header_len < source.stat().st_size and head[8:9] == b"{"
    pickled = head[:1] == b"\x80" or head[:2] == b"PK"
    if source.suffix.lower() in _PICKLE_SUFFIXES or (pickled and not is_safetensors):
        raise UnsafeFileError(
            f"{source} looks like a pickle-based checkpoint; fortify refuses to unpickle files because "
            "that can execute arbitrary code. Convert it once, in a process you trust: "
            "load the state_dict with torch.load(path, weights_only=True) and save it with ft.zoo.save"
        )
    if not is_safetensors:
        raise FortifyError(f"{source} is not a safetensors file")
    return source
