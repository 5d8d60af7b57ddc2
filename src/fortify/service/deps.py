"""FastAPI dependencies: the settings, the data plane and the caller, injected with ``Depends``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from fortify.service.auth import KeyRing, Principal
from fortify.service.dataplane import DataPlane
from fortify.service.settings import ServeSettings

COOKIE = "fortify_key"


def get_settings(request: Request) -> ServeSettings:
    """The app's one settings object."""
    return request.app.state.settings


def get_dataplane(request: Request) -> DataPlane:
    """The app's data plane."""
    return request.app.state.dataplane


def _keyring(request: Request) -> KeyRing:
    return request.app.state.keyring


def require(role: str, *, cookie: bool = False) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks ``role`` (401 / 403 otherwise).

    ``cookie`` also accepts the dashboard's ``fortify_key`` cookie (for pages a browser opens).
    """

    def dependency(request: Request, keyring: Annotated[KeyRing, Depends(_keyring)]) -> Principal:
        presented = request.cookies.get(COOKIE) if cookie else None
        principal = keyring.authenticate(request.headers, presented)
        principal.require(role)
        return principal

    return dependency


Settings = Annotated[ServeSettings, Depends(get_settings)]
Plane = Annotated[DataPlane, Depends(get_dataplane)]
Inferrer = Annotated[Principal, Depends(require("infer"))]
Reviewer = Annotated[Principal, Depends(require("review"))]
Admin = Annotated[Principal, Depends(require("admin"))]
