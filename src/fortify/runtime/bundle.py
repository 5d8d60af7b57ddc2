"""Guard bundles: a folder that holds exactly the guard that was evaluated, and proves it.

Layout: ``guard.json`` (models, preprocessing, detectors with their parameters and thresholds, policy,
calibration record), ``models/model-K.safetensors`` (``ft.zoo`` files), ``detectors/K-NAME.safetensors``
(the fitted statistics of detectors that have them), optionally ``result.json`` (the evaluation the
guard shipped with), and ``manifest.json``: the SHA-256 of every other file, the calibration data's
fingerprint and the fortify version. With ``FORTIFY_BUNDLE_KEY`` set, ``save`` also writes
``manifest.sig``, an HMAC-SHA256 of the manifest bytes under that key.

Every file is written atomically and fsynced, then the staged folder replaces the old bundle by two
renames; a crash between them leaves the previous bundle at ``.NAME.old-PID``, which ``load`` names.
``load`` trusts nothing: it reads JSON with size limits, checks every hash (a missing, extra or changed
file is refused), checks the signature whenever a key is set (an unsigned bundle is then refused too),
validates ``guard.json`` with a schema before building anything, and never unpickles.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from fortify import zoo
from fortify._files import atomic_write_bytes, atomic_write_text, file_sha256, read_limited
from fortify._version import __version__
from fortify.defenses import (
    JPEG,
    BitDepth,
    GaussianNoise,
    MedianFilter,
    Preprocessor,
    RandomResizePad,
    RandomRotation,
)
from fortify.detect import FeatureSqueezing
from fortify.runtime.detectors import detector_name, make_detector
from fortify.types import FortifyError

FORMAT: Literal["fortify-guard"] = "fortify-guard"
FORMAT_VERSION = 1
KEY_ENV = "FORTIFY_BUNDLE_KEY"
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_FILES = 64
PREPROCESSORS: dict[str, tuple[type[Preprocessor], tuple[str, ...]]] = {
    "BitDepth": (BitDepth, ("bits",)),
    "MedianFilter": (MedianFilter, ("size",)),
    "JPEG": (JPEG, ("quality",)),
    "GaussianNoise": (GaussianNoise, ("sigma",)),
    "RandomResizePad": (RandomResizePad, ("max_scale",)),
    "RandomRotation": (RandomRotation, ("degrees",)),
}
_DETECTOR_PARAMS = {
    "squeeze": (),
    "mahalanobis": ("layer", "shrinkage"),
    "confidence": (),
    "entropy": (),
    "input-stats": ("patch", "bins"),
    "disagreement": (),
    "strip": ("n_overlays", "overlay", "seed"),
}


class BundleError(FortifyError):
    """A guard bundle is missing, malformed, tampered with or unsigned where a signature is required."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PreprocessSpec(_Strict):
    name: Literal["BitDepth", "MedianFilter", "JPEG", "GaussianNoise", "RandomResizePad", "RandomRotation"]
    params: dict[str, int | float] = Field(default_factory=dict)


class DetectorSpec(_Strict):
    name: Literal["squeeze", "mahalanobis", "confidence", "entropy", "input-stats", "disagreement", "strip"]
    params: dict[str, str | int | float | None] = Field(default_factory=dict)
    squeezers: list[PreprocessSpec] = Field(default_factory=list)
    threshold: float
    fpr: float | None = None
    reject_threshold: float | None = None
    spread: float = Field(gt=0)
    state: str | None = None


class GuardSpec(_Strict):
    models: list[str] = Field(min_length=1, max_length=16)
    combine: Literal["mean_probs", "mean_logits", "vote"]
    preprocess: list[PreprocessSpec] = Field(default_factory=list, max_length=16)
    detectors: list[DetectorSpec] = Field(default_factory=list, max_length=16)
    confidence_threshold: float = Field(ge=0, lt=1)
    input_shape: list[int] = Field(min_length=1, max_length=4)
    calibration: dict[str, Any]


class Manifest(_Strict):
    format: Literal["fortify-guard"]
    format_version: int
    fortify_version: str
    files: dict[str, str] = Field(max_length=MAX_FILES)
    data_fingerprint: str | None = None
    result: str | None = None


def save_bundle(guard: Any, directory: str | Path, *, result: Any = None) -> Path:
    """Write ``guard`` (calibrated) to the folder ``directory``, replacing it atomically; returns it.

    ``result`` (a ``Result``) is stored as ``result.json`` and named in the manifest.
    """
    guard._check_calibrated()  # noqa: SLF001
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _write_contents(guard, staging, result)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise FortifyError(f"cannot write guard bundle {target}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _write_contents(guard: Any, folder: Path, result: Any) -> None:
    (folder / "models").mkdir()
    (folder / "detectors").mkdir()
    model_files = []
    for k, model in enumerate(guard.models):
        name = f"models/model-{k}.safetensors"
        meta = getattr(model, "metadata", None) or {}
        if "factory" in meta:  # the user's own code: the bundle records the import path that rebuilds it
            zoo.save(
                model,
                folder / name,
                factory=meta["factory"],
                factory_kwargs=meta.get("factory_kwargs"),
                input_shape=list(guard.input_shape),
            )
        else:
            zoo.save(model, folder / name)
        model_files.append(name)
    detectors = []
    for k, (key, det) in enumerate(zip(guard.names, guard.detectors, strict=True)):
        state = {n: b.detach().cpu().contiguous() for n, b in det.named_buffers(recurse=False) if b.numel()}
        state_file = None
        if state:
            state_file = f"detectors/{k}-{key}.safetensors"
            atomic_write_bytes(folder / state_file, save(state))
        name = detector_name(det)
        detectors.append(
            DetectorSpec(
                name=name,  # type: ignore[arg-type]
                params={p: getattr(det, p) for p in _DETECTOR_PARAMS[name]},
                squeezers=[_preprocess_spec(s) for s in det.squeezers if isinstance(s, Preprocessor)]
                if isinstance(det, FeatureSqueezing)
                else [],
                threshold=det.threshold,
                fpr=det._fpr,  # noqa: SLF001
                reject_threshold=guard.reject_thresholds[k],
                spread=guard.spreads[k],
                state=state_file,
            )
        )
    spec = GuardSpec(
        models=model_files,
        combine=guard.combine,
        preprocess=[_preprocess_spec(p) for p in guard.preprocess],
        detectors=detectors,
        confidence_threshold=guard.confidence_threshold,
        input_shape=list(guard.input_shape),
        calibration=guard.calibration,
    )
    atomic_write_text(folder / "guard.json", spec.model_dump_json(indent=2))
    result_name = None
    if result is not None:
        result_name = "result.json"
        atomic_write_text(folder / result_name, result.to_json())
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    manifest = Manifest(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        fortify_version=__version__,
        files={name: file_sha256(folder / name) for name in files},
        data_fingerprint=(guard.calibration or {}).get("fingerprint"),
        result=result_name,
    )
    body = manifest.model_dump_json(indent=2).encode()
    atomic_write_bytes(folder / "manifest.json", body)
    key = os.environ.get(KEY_ENV)
    if key:
        atomic_write_text(folder / "manifest.sig", _sign(body, key))
    for sub in (folder / "models", folder / "detectors", folder):
        _fsync_dir(sub)


def load_bundle(directory: str | Path, *, trust_code: bool = False) -> Any:
    """The ``Guard`` stored in ``directory``; raises ``BundleError`` (one line) on any problem.

    A model built from the user's own code (saved with its import path) is rebuilt by importing that
    code, which runs it: only with ``trust_code=True``; without it the bundle is refused naming the code.
    """
    from fortify.result import Result
    from fortify.runtime.guard import Guard

    folder = Path(directory)
    if not folder.is_dir():
        left = sorted(folder.parent.glob(f".{folder.name}.old-*")) if folder.parent.is_dir() else []
        hint = f"; an interrupted save left the previous bundle at {left[-1]}: rename it back" if left else ""
        raise BundleError(f"guard bundle {folder} is not a folder{hint}")
    body = _read_limited(folder / "manifest.json")
    _check_signature(folder, body)
    manifest = _validated(Manifest, _parse_json(body, "manifest.json"), "manifest.json")
    _check_files(folder, manifest)
    spec = _validated(
        GuardSpec, _parse_json(_read_limited(folder / "guard.json"), "guard.json"), "guard.json"
    )
    for name in spec.models:
        factory = zoo.read_metadata(folder / name).get("factory")
        if factory is not None and not trust_code:
            raise BundleError(
                f"{folder}: {name} is rebuilt by importing {factory}, which runs that code: pass "
                "--trust-code (Guard.load(path, trust_code=True)) if you trust it"
            )
    try:
        models = [zoo.load(folder / name, trust_code=trust_code) for name in spec.models]
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{folder}: a model file is malformed: {str(exc).splitlines()[0][:160]}") from exc
    preprocess = [_build_preprocess(p) for p in spec.preprocess]
    guard = Guard(
        models,
        combine=spec.combine,
        preprocess=preprocess,
        detectors=[_build_detector(folder, d) for d in spec.detectors],
        confidence_threshold=spec.confidence_threshold,
        input_shape=spec.input_shape,
    )
    for k, d in enumerate(spec.detectors):
        det = guard.detectors[k]
        det._threshold, det._fpr = d.threshold, d.fpr  # noqa: SLF001
        guard.reject_thresholds[k] = d.reject_threshold
        guard.spreads[k] = d.spread
    guard.calibration = spec.calibration
    if manifest.result is not None:
        guard.result = Result.from_json(_read_limited(folder / manifest.result))
    return guard


def verify_bundle(directory: str | Path) -> Manifest:
    """The manifest of ``directory`` after checking its signature (with a key) and every file's hash."""
    folder = Path(directory)
    body = _read_limited(folder / "manifest.json")
    _check_signature(folder, body)
    manifest = _validated(Manifest, _parse_json(body, "manifest.json"), "manifest.json")
    _check_files(folder, manifest)
    return manifest


def _check_signature(folder: Path, body: bytes) -> None:
    key = os.environ.get(KEY_ENV)
    sig_path = folder / "manifest.sig"
    if not key:
        return
    if not sig_path.is_file():
        raise BundleError(f"{folder}: {KEY_ENV} is set but the bundle is not signed (no manifest.sig)")
    signature = sig_path.read_bytes()[:200].decode("ascii", errors="replace").strip()
    if not hmac.compare_digest(signature, _sign(body, key)):
        raise BundleError(f"{folder}: the signature does not match the manifest (tampered, or another key)")


def _check_files(folder: Path, manifest: Manifest) -> None:
    if manifest.format_version != FORMAT_VERSION:
        raise BundleError(f"{folder}: bundle format version {manifest.format_version} is not supported")
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}
    present -= {"manifest.json", "manifest.sig"}
    listed = set(manifest.files)
    if present - listed:
        raise BundleError(f"{folder}: files not in the manifest: {sorted(present - listed)[:5]}")
    if listed - present:
        raise BundleError(f"{folder}: files missing from the bundle: {sorted(listed - present)[:5]}")
    for name, digest in manifest.files.items():
        path = folder / name
        if path.is_symlink() or ".." in Path(name).parts:
            raise BundleError(f"{folder}: {name} is a link or leaves the bundle")
        if file_sha256(path) != digest:
            raise BundleError(f"{folder}: {name} does not match its SHA-256 in the manifest (tampered?)")


def _build_preprocess(spec: PreprocessSpec) -> Preprocessor:
    cls, allowed = PREPROCESSORS[spec.name]
    unknown = set(spec.params) - set(allowed)
    if unknown:
        raise BundleError(f"guard.json: unknown parameters {sorted(unknown)} for {spec.name}")
    try:
        return cls(**spec.params)
    except (TypeError, FortifyError) as exc:
        raise BundleError(f"guard.json: bad {spec.name} parameters: {exc}") from exc


def _build_detector(folder: Path, spec: DetectorSpec) -> Any:
    unknown = set(spec.params) - set(_DETECTOR_PARAMS[spec.name])
    if unknown:
        raise BundleError(f"guard.json: unknown parameters {sorted(unknown)} for detector {spec.name}")
    params: dict[str, Any] = dict(spec.params)
    if spec.name == "squeeze":
        params["squeezers"] = [_build_preprocess(s) for s in spec.squeezers] or None
    det = make_detector(spec.name, **params)
    if spec.state is not None:
        try:
            state = load_file(str(folder / spec.state))
        except (SafetensorError, OSError) as exc:
            raise BundleError(f"{folder}: {spec.state} is not a readable safetensors file") from exc
        own = dict(det.named_buffers(recurse=False))
        if not set(state) <= set(own):
            raise BundleError(f"{folder}: {spec.state} holds unexpected tensors {sorted(state)[:5]}")
        for name, tensor in state.items():
            if not torch.isfinite(tensor).all() and name != "means":
                raise BundleError(f"{folder}: {spec.state} holds non-finite values in {name}")
            setattr(det, name, tensor)
    return det


def _preprocess_spec(step: Preprocessor) -> PreprocessSpec:
    name = type(step).__name__
    if name not in PREPROCESSORS:
        raise FortifyError(f"{name} cannot be stored in a guard bundle; use one of {sorted(PREPROCESSORS)}")
    return PreprocessSpec(name=name, params={p: getattr(step, p) for p in PREPROCESSORS[name][1]})  # type: ignore[arg-type]


def _read_limited(path: Path) -> bytes:
    try:
        return read_limited(path, "bundle file", MAX_JSON_BYTES)
    except FortifyError as exc:
        raise BundleError(str(exc)) from exc


def _parse_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise BundleError(f"{what} is not valid JSON: {str(exc).splitlines()[0][:120]}") from exc


def _validated(model: type[BaseModel], raw: Any, what: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise BundleError(f"{what}: {where}: {first['msg']} ({exc.error_count()} problem(s))") from exc


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sign(body: bytes, key: str) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
