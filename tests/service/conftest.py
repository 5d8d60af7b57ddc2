"""Service fixtures: a real calibrated Guard on the synthetic 8x8 set, keys for each role, app factories.

Servers that tests need (PostgreSQL, Redis, Chromium) are probed on loopback; when one is absent the
test skips with a one-line reason, except under ``CI=true``, where it fails instead.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

import fortify as ft
from fortify.runtime import Guard
from fortify.service.app import create_app
from fortify.service.auth import hash_key
from fortify.service.settings import KeyConfig, ServeSettings

KEYS = {
    "infer": "fk_test_infer_key_0123456789",
    "review": "fk_test_review_key_0123456789",
    "admin": "fk_admin_x",
}
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (with CI=true) when something the test needs is absent."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def chromium_path() -> str | None:
    return shutil.which("chromium") or (
        None if not Path("/usr/bin/chromium").exists() else "/usr/bin/chromium"
    )


def key_configs(**limits: Any) -> list[KeyConfig]:
    roles = {"infer": ["infer"], "review": ["review"], "admin": ["admin"]}
    return [KeyConfig(id=name, hash=hash_key(key), roles=roles[name], **limits) for name, key in KEYS.items()]


def headers(role: str = "infer") -> dict[str, str]:
    return {"X-API-Key": KEYS[role]}


def infer_body(x: torch.Tensor, **extra: Any) -> dict[str, Any]:
    """An OIP infer request for images ``x`` ``(N, 1, 8, 8)``."""
    return {
        "inputs": [
            {"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.flatten().tolist()}
        ]
    } | extra


@pytest.fixture(scope="session")
def synthetic() -> tuple[torch.Tensor, torch.Tensor]:
    """The synthetic test split (held out from the guard's training)."""
    return ft.data.load("synthetic", "test")


@pytest.fixture(scope="session")
def guard(tiny_cnn: Any) -> Guard:
    """A calibrated guard (squeeze + confidence) around the trained cnn-tiny, at 5% clean review."""
    clf, x_test, _ = tiny_cnn
    return Guard([clf], detectors=["squeeze", "confidence"]).calibrate(x_test, fpr=0.05)


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., ServeSettings]:
    def make(**overrides: Any) -> ServeSettings:
        base: dict[str, Any] = {"keys": key_configs(), "run_dir": tmp_path, "sqlite_synchronous": "NORMAL"}
        return ServeSettings(**(base | overrides))

    return make


@pytest.fixture
def client(guard: Guard, settings_for: Callable[..., ServeSettings]) -> Iterator[TestClient]:
    """A TestClient (lifespan run) over a fresh app with a SQLite store in tmp_path."""
    with TestClient(create_app(settings_for(), guard=guard)) as c:
        yield c
