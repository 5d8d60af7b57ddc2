"""``uvicorn --factory fortify.service.factory:app_from_env``: the app a worker process builds.

``fortify serve --workers N`` puts the resolved settings (JSON) in ``FORTIFY_SERVE_RESOLVED`` and each
worker rebuilds the app from them: guards from their bundles, its own monitor, the shared store.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from fortify.service.app import create_app, load_guards
from fortify.service.bootstrap import build_monitor
from fortify.service.settings import ServeSettings

ENV = "FORTIFY_SERVE_RESOLVED"


def build_app(settings: ServeSettings) -> FastAPI:
    """The app for ``settings`` with its guard bundles loaded and its monitor built."""
    guards = load_guards(settings)
    monitor = build_monitor(settings, guards[settings.model_version])
    return create_app(settings, guards=guards, monitor=monitor)


def app_from_env() -> FastAPI:
    """The app for the settings JSON in ``FORTIFY_SERVE_RESOLVED`` (set by ``fortify serve``)."""
    return build_app(ServeSettings.model_validate_json(os.environ[ENV]))
