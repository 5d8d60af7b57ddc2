"""Every file fortify writes goes through here: atomic writes, and writability checked before work.

``atomic_write_bytes`` / ``atomic_write_text`` write to a temporary file in the target's own folder,
flush and ``fsync`` it, then ``os.replace`` it onto the target (atomic on POSIX and Windows within one
file system) and ``fsync`` the folder. A crash, a signal, a full disk or a file-size limit at any
moment leaves either the previous file or the complete new one, never a truncated mix; the temporary
file is removed on failure. Errors become one-line ``FortifyError`` naming the target.

``check_writable`` lets a command refuse an output it cannot write before it spends minutes on the
work (the CLI calls it first, exit 2); ``read_limited`` reads an untrusted file up to a size limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from fortify.types import FortifyError

_PREFIX = ".fortify-tmp-"


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _fsync_folder(folder: Path) -> None:
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # folders cannot be opened on some platforms; the rename itself is still atomic
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parents created); returns the path."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=_PREFIX + target.name + ".", dir=target.parent)
    except OSError as exc:
        raise FortifyError(f"cannot write {target}: {_reason(exc)}") from exc
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if target.exists():
            with contextlib.suppress(OSError):
                os.chmod(temp_name, target.stat().st_mode & 0o7777)
        else:
            _default_mode(temp_name)
        os.replace(temp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(exc, OSError):
            raise FortifyError(f"cannot write {target}: {_reason(exc)}") from exc
        raise
    _fsync_folder(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """``atomic_write_bytes`` of ``text`` as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _default_mode(name: str) -> None:
    """mkstemp creates 0600; a new output gets the usual 0666 less the umask, like ``open`` would."""
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(name, 0o666 & ~umask)


def check_writable(path: str | os.PathLike[str], option: str = "output") -> Path:
    """``path`` if a file can be written there (its folder exists or can be made, and is writable);
    else a ``FortifyError`` naming ``option``. Creates missing parent folders, writes nothing else."""
    target = Path(path)
    if target.is_dir():
        raise FortifyError(f"{option} {target} is a folder; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FortifyError(
            f"{option} {target}: cannot create folder {target.parent}: {_reason(exc)}"
        ) from exc
    try:
        with tempfile.TemporaryFile(prefix=_PREFIX, dir=target.parent):
            pass
    except OSError as exc:
        raise FortifyError(
            f"{option} {target}: folder {target.parent} is not writable: {_reason(exc)}"
        ) from exc
    if target.exists() and not os.access(target, os.W_OK):
        raise FortifyError(f"{option} {target} exists and is not writable")
    return target


def check_writable_folder(path: str | os.PathLike[str], option: str = "output folder") -> Path:
    """``path`` as a folder that exists (made if missing) and is writable, else a ``FortifyError``."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise FortifyError(f"{option} {folder} is a file, not a folder")
    check_writable(folder / "probe", option)
    return folder


def read_limited(path: str | os.PathLike[str], what: str, max_bytes: int) -> bytes:
    """The bytes of ``path`` (a ``what``), refusing files larger than ``max_bytes`` before reading."""
    source = Path(path)
    try:
        with source.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as exc:
        raise FortifyError(f"cannot read {what} {source}: {_reason(exc)}") from exc
    if len(data) > max_bytes:
        raise FortifyError(f"{what} {source} is larger than {max_bytes} bytes; refusing to read it")
    return data


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
