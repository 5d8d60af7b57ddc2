"""Reviewed items as a training set: ``x`` float32 ``(N, ...)``, ``y`` int64 ``(N,)``, ``event_id``."""

from __future__ import annotations

import json
import time
from os import PathLike

import numpy as np
import torch
from safetensors.torch import save

from fortify._files import atomic_write_bytes
from fortify.service.store import Store, redact
from fortify.types import FortifyError

FORMAT = "fortify-reviewed/1"


def export_reviewed(store_url: str, to: str | PathLike[str]) -> tuple[int, tuple[int, ...]]:
    """Write the accepted and labelled review items of the store at ``store_url`` to ``to`` (safetensors).

    ``y`` is the reviewer's label (the model's, for an accepted item); rejected items are left out.
    The file appears atomically (written beside ``to``, then renamed); its metadata records the
    format, the count and the (password-redacted) store. Returns the count and the input shape.
    Raises ``FortifyError`` when nothing was reviewed or the inputs differ in shape.
    """
    store = Store(store_url)
    try:
        store.migrate()
        rows = list(store.reviewed())
    finally:
        store.close()
    if not rows:
        raise FortifyError(f"no accepted or labelled review items in {redact(store_url)}")
    shapes = {tuple(r["input"].shape) for r in rows}
    if len(shapes) != 1:
        raise FortifyError(
            f"review items have different input shapes {sorted(shapes)}; export one model at a time"
        )
    x = torch.from_numpy(np.stack([r["input"] for r in rows]).astype(np.float32))
    tensors = {
        "x": x,
        "y": torch.tensor([int(r["review_label"]) for r in rows], dtype=torch.int64),
        "event_id": torch.tensor([int(r["id"]) for r in rows], dtype=torch.int64),
    }
    meta = {
        "format": FORMAT,
        "count": str(len(rows)),
        "store": redact(store_url),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": json.dumps(sorted({r["model_version"] for r in rows})),
    }
    atomic_write_bytes(to, save(tensors, metadata=meta))  # fsynced, then renamed into place
    return len(rows), next(iter(shapes))
