"""fortify/_files.py: atomic writes keep the previous file on any failure, leave no temporary file, and
outputs are checked writable before work starts."""

from __future__ import annotations

import os
import resource

import pytest

import fortify as ft
from fortify._files import atomic_write_bytes, atomic_write_text, check_writable, read_limited
from tests.report.factories import make_result


def test_atomic_write_replaces_the_file_and_keeps_its_mode(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_write_beyond_the_file_size_limit_keeps_the_previous_file(tmp_path):
    target = tmp_path / "result.json"
    make_result().save(str(target))
    before = target.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    pid = os.fork()
    if pid == 0:  # the limit (and its SIGXFSZ) only in a child, so the test process is unaffected
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
        try:
            atomic_write_bytes(target, b"x" * 100_000)
        except ft.FortifyError:
            os._exit(3)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 3
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
    assert ft.Result.load(str(target)) == ft.Result.from_json(before)


def test_check_writable_refuses_folders_and_unwritable_places(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(ft.FortifyError, match="--out .* is a folder"):
        check_writable(tmp_path / "folder", "--out")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ft.FortifyError, match="--out .*cannot create folder"):
        check_writable(blocker / "sub" / "r.json", "--out")
    assert check_writable(tmp_path / "new" / "r.json") == tmp_path / "new" / "r.json"
    assert not (tmp_path / "new" / "r.json").exists()


def test_read_limited_refuses_large_files_before_reading(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b"{" * 2000)
    with pytest.raises(ft.FortifyError, match="larger than 1000 bytes"):
        read_limited(big, "result file", 1000)
