"""Data provenance: a manifest that names exactly which data a model was trained on, and a check of it.

``fingerprint(source)`` describes a data set by content: for a built-in dataset name, each split's
SHA-256 over its float32 images and int64 labels (with shapes), its size and class counts; for a
folder, every file's SHA-256 and size (in sorted relative-path order) and, for a folder of class
sub-folders, the file count per class. ``digest`` summarises the whole manifest. ``verify(manifest)``
recomputes it and lists what changed: files added, removed or altered, splits whose content differs.
``tensor_fingerprint`` is the digest of one ``(x, y)`` pair that ``fortify train`` stores with a model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fortify import data as datasets
from fortify._files import file_sha256
from fortify._untrusted import load_json
from fortify.types import FortifyError

FORMAT = "fortify-data-manifest"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_FILES = 2_000_000


def tensor_fingerprint(x: Tensor, y: Tensor | None = None) -> str:
    """``sha256:...`` of ``x`` as float32 and ``y`` as int64, shapes included."""
    digest = hashlib.sha256()
    for tensor, dtype in ((x, torch.float32), (y, torch.int64)):
        if tensor is None:
            continue
        array = tensor.detach().to(dtype).contiguous().cpu().numpy()
        digest.update(str(tuple(array.shape)).encode())
        digest.update(array.tobytes())
    return "sha256:" + digest.hexdigest()


def _folder_entries(folder: Path) -> dict[str, Any]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    if len(files) > MAX_FILES:
        raise FortifyError(f"{folder} holds more than {MAX_FILES} files")
    entries = {
        p.relative_to(folder).as_posix(): {"sha256": file_sha256(p), "bytes": p.stat().st_size} for p in files
    }
    classes: dict[str, int] = {}
    for name in entries:
        if "/" in name:
            top = name.split("/", 1)[0]
            classes[top] = classes.get(top, 0) + 1
    return {"files": entries, "class_counts": classes}


def _dataset_entries(name: str) -> dict[str, Any]:
    info = datasets.info(name)
    splits = {}
    for split in datasets.SPLITS:
        x, y = datasets.load(name, split)
        counts = torch.bincount(y, minlength=info.num_classes).tolist()
        splits[split] = {"sha256": tensor_fingerprint(x, y), "n": int(x.shape[0]), "class_counts": counts}
    return {"splits": splits}


def fingerprint(source: str | Path) -> dict[str, Any]:
    """The manifest of ``source``: a built-in dataset name (see ``fortify.data.DATASETS``) or a folder."""
    path = Path(source)
    if str(source) in datasets.DATASETS:
        body: dict[str, Any] = {"kind": "dataset", "source": str(source), **_dataset_entries(str(source))}
    elif path.is_dir():
        body = {"kind": "folder", "source": str(path.resolve()), **_folder_entries(path)}
    else:
        raise FortifyError(
            f"{source} is neither a dataset name ({', '.join(datasets.DATASETS)}) nor a folder"
        )
    content = json.dumps({k: v for k, v in body.items() if k != "source"}, sort_keys=True).encode()
    return {"format": FORMAT, "version": 1, **body, "digest": "sha256:" + hashlib.sha256(content).hexdigest()}


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A manifest written by ``fingerprint`` (size-limited, strictly parsed); one-line error otherwise."""
    source = Path(path)
    try:
        raw = source.read_bytes()[: MAX_MANIFEST_BYTES + 1]
    except OSError as exc:
        raise FortifyError(f"cannot read manifest {source}: {exc.strerror}") from exc
    manifest = load_json(raw, f"manifest {source}", max_bytes=MAX_MANIFEST_BYTES)
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or manifest.get("kind")
        not in (
            "dataset",
            "folder",
        )
    ):
        raise FortifyError(f"{source} is not a fortify data manifest (fortify data fingerprint writes one)")
    if not isinstance(manifest.get("source"), str):
        raise FortifyError(f"{source}: the manifest has no source")
    return manifest


def verify(manifest: dict[str, Any]) -> list[str]:
    """What differs between ``manifest`` and its source now: one line per change (empty: unchanged)."""
    now = fingerprint(manifest["source"])
    changes: list[str] = []
    if manifest["kind"] == "folder":
        before, after = manifest.get("files") or {}, now["files"]
        if not isinstance(before, dict):
            raise FortifyError("the manifest's files must be a mapping")
        changes += [f"added: {name}" for name in sorted(set(after) - set(before))]
        changes += [f"removed: {name}" for name in sorted(set(before) - set(after))]
        changes += [
            f"changed: {name}"
            for name in sorted(set(before) & set(after))
            if not isinstance(before[name], dict) or before[name].get("sha256") != after[name]["sha256"]
        ]
    else:
        before, after = manifest.get("splits") or {}, now["splits"]
        if not isinstance(before, dict):
            raise FortifyError("the manifest's splits must be a mapping")
        for split in sorted(set(before) | set(after)):
            old, new = before.get(split), after.get(split)
            if not isinstance(old, dict) or new is None or old.get("sha256") != new["sha256"]:
                changes.append(f"changed: split {split}")
    if not changes and manifest.get("digest") != now["digest"]:
        changes.append("changed: the manifest's digest does not match its content")
    return changes
