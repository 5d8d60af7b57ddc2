"""The guarded inference service (``fortify serve``): Open Inference Protocol v2 over a ``Guard``.

>>> from fortify.service import ServeSettings, create_app
>>> app = create_app(ServeSettings(keys=[...]), guard=guard)   # FastAPI app; run with uvicorn

``fortify.service.client.from_url`` (also ``ft.blackbox.from_url``) is the matching client. Importing
this package costs nothing: the app and its dependencies (the ``serve`` extra) load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeSettings", "create_app", "load_settings"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from fortify.service.app import create_app

        return create_app
    if name in ("ServeSettings", "load_settings"):
        from fortify.service import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'fortify.service' has no attribute {name!r}")
