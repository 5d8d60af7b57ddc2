"""The user's own table: ``csv:FILE`` with a header row, one column of labels and numeric features.

The file is untrusted input and is parsed defensively: at most ``MAX_CSV_BYTES`` bytes of UTF-8 (a
byte-order mark is allowed), at most ``MAX_COLUMNS`` columns, a header of unique non-empty names,
the same number of cells in every row. Every other column than the label is a feature: each cell a
finite number in [0, 1], fortify's input space (scale the columns first, e.g. min-max over the training
rows, and declare the model's own normalisation with ``--mean/--std``). Any problem is one
``DataError`` naming the file, the row (as a spreadsheet numbers it: the header is row 1) and the
column.

Labels: when every label is a whole number >= 0 they are the class ids; otherwise they are class
names, numbered in sorted order (``"no" -> 0, "yes" -> 1``).
"""

from __future__ import annotations

import csv
import functools
import io
from array import array
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fortify._files import read_limited
from fortify.types import DataError, FortifyError

MAX_CSV_BYTES = 256 * 2**20
"""Largest CSV file read (about ten million cells)."""
MAX_COLUMNS = 10_000
MAX_CLASSES = 100_000
DEFAULT_LABEL = "label"
"""The label column used when none is named."""


def split_name(where: str) -> tuple[str, str | None]:
    """``"FILE?label=COLUMN"`` -> ``("FILE", "COLUMN")``; ``"FILE"`` -> ``("FILE", None)``."""
    path, marker, label = where.rpartition("?label=")
    return (path, label or None) if marker else (where, None)


def csv_name(path: str, label: str | None) -> str:
    """The dataset name ``csv:FILE`` (``csv:FILE?label=COLUMN`` when a label column is named)."""
    return f"csv:{path}" if label is None else f"csv:{path}?label={label}"


@functools.lru_cache(maxsize=4)
def read_csv(path: str, label: str | None) -> tuple[Tensor, Tensor, tuple[str, ...] | None, tuple[str, ...]]:
    """``x`` float32 ``(N, F)``, ``y`` int64 ``(N,)``, the class names (``None`` for integer labels) and
    the feature column names of the CSV file at ``path`` whose label column is ``label`` (default
    ``"label"``). Raises ``DataError`` (one line) on any problem; see the module docstring."""
    where = f"csv:{path}"
    if not Path(path).is_file():
        raise DataError(f"--data {where}: no such file")
    try:
        raw = read_limited(path, "the CSV file", MAX_CSV_BYTES)
        text = raw.decode("utf-8-sig")
    except FortifyError as exc:
        raise DataError(str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"--data {where}: not UTF-8 text (byte {exc.start})") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"--data {where}: the file is empty")
        names = [h.strip() for h in header]
        column = _label_column(where, names, label)
        features = [n for k, n in enumerate(names) if k != column]
        values, labels = array("f"), []
        for row in reader:
            if not row:
                continue  # a blank line
            if len(row) != len(names):
                raise DataError(
                    f"{where} row {reader.line_num}: {len(row)} cells, the header has {len(names)}"
                )
            labels.append(row[column].strip())
            if not labels[-1]:
                raise DataError(
                    f"{where} row {reader.line_num}, column {names[column]!r}: the label is empty"
                )
            for k, cell in enumerate(row):
                if k != column:
                    values.append(_feature(where, reader.line_num, names[k], cell))
    except csv.Error as exc:
        raise DataError(f"{where} row {reader.line_num}: not valid CSV ({exc})") from exc
    if not labels:
        raise DataError(f"--data {where}: no data rows after the header")
    x = torch.from_numpy(np.frombuffer(values, dtype=np.float32).copy()).reshape(len(labels), len(features))
    y, classes = _classes(where, labels)
    return x, y, classes, tuple(features)


def _label_column(where: str, names: list[str], label: str | None) -> int:
    if len(names) > MAX_COLUMNS:
        raise DataError(f"{where}: {len(names)} columns, more than the {MAX_COLUMNS} read")
    if len(names) < 2:
        raise DataError(f"{where}: needs a header row with a label column and at least one feature")
    for k, name in enumerate(names):
        if not name:
            raise DataError(f"{where}: header column {k + 1} has no name")
        if name in names[:k]:
            raise DataError(f"{where}: header names column {name!r} twice")
    wanted = label or DEFAULT_LABEL
    if wanted not in names:
        shown = ", ".join(repr(n) for n in names[:10]) + (", ..." if len(names) > 10 else "")
        hint = "" if label else " (name it with --label COLUMN)"
        raise DataError(f"{where}: no label column {wanted!r}{hint}; the columns are {shown}")
    return names.index(wanted)


def _feature(where: str, row: int, column: str, cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise DataError(
            f"{where} row {row}, column {column!r}: {cell.strip()[:40]!r} is not a number"
        ) from None
    if not 0.0 <= value <= 1.0:  # also refuses nan and infinities
        raise DataError(
            f"{where} row {row}, column {column!r}: {cell.strip()[:40]} is outside [0, 1], fortify's input "
            "space: scale the column (e.g. min-max) and declare the model's normalisation with --mean/--std"
        )
    return value


def _classes(where: str, labels: list[str]) -> tuple[Tensor, tuple[str, ...] | None]:
    """Class ids from whole-number labels, else sorted class names and their indices."""
    if all(text.isascii() and text.isdigit() for text in labels):
        ids = [int(text) for text in labels]
        if max(ids) >= MAX_CLASSES:
            raise DataError(f"{where}: label {max(ids)} is not a class id below {MAX_CLASSES}")
        return torch.tensor(ids, dtype=torch.long), None
    if len(set(labels)) > MAX_CLASSES:
        raise DataError(f"{where}: more than {MAX_CLASSES} different labels")
    names = tuple(sorted(set(labels)))
    index = {name: k for k, name in enumerate(names)}
    return torch.tensor([index[text] for text in labels], dtype=torch.long), names
