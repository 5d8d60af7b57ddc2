"""The app factory: ``create_app(settings, guard=...)`` builds the FastAPI app over one data plane.

Endpoints are thin (``routes``, ``review_routes``, ``dashboard``); every error becomes
``{"error": "..."}`` here, in one place: service errors with their status, validation errors 422,
user errors (``FortifyError``) 400, an unreachable store 503, anything unexpected 500 with the
detail in the log only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fortify._version import __version__
from fortify.service import dashboard, review_routes, routes
from fortify.service.auth import KeyRing
from fortify.service.dataplane import DataPlane
from fortify.service.errors import ServiceError
from fortify.service.limits import Limiter, make_limiter
from fortify.service.metrics import Metrics
from fortify.service.middleware import BodyLimit, HttpMetrics
from fortify.service.settings import ServeSettings
from fortify.service.store import Store
from fortify.types import FortifyError

log = logging.getLogger("fortify.service")


def load_guards(settings: ServeSettings) -> dict[str, Any]:
    """The guard bundles the settings name, by version: primary, then canary and fallback if set.

    A bundle whose model is rebuilt from an import path loads only with ``settings.trust_code``;
    otherwise ``BundleError`` (a ``FortifyError``) names the code it would run."""
    from fortify.runtime import Guard

    if settings.guard is None:
        raise FortifyError("no guard bundle configured (settings.guard)")
    trust = settings.trust_code
    guards = {settings.model_version: Guard.load(str(settings.guard), trust_code=trust)}
    for extra in (settings.canary, settings.fallback):
        if extra is not None:
            guards[extra.version] = Guard.load(str(extra.guard), trust_code=trust)
    return guards


def create_app(
    settings: ServeSettings,
    guard: Any = None,
    *,
    guards: dict[str, Any] | None = None,
    monitor: Any = None,
    store: Store | None = None,
    limiter: Limiter | None = None,
) -> FastAPI:
    """The service app. ``guard`` serves as the primary version (``guards`` maps every version to one);
    without either, the bundles named in ``settings`` are loaded. ``monitor`` (a ``fortify.runtime.Monitor``)
    receives every verdict. Raises ``FortifyError`` when no key is configured and auth is not opted out.
    """
    if not settings.keys and not settings.insecure_no_auth:
        raise FortifyError(
            "no API key configured: add keys (fortify serve-key makes one) or pass --insecure-no-auth"
        )
    if guards is None:
        guards = {settings.model_version: guard} if guard is not None else load_guards(settings)
    metrics = Metrics()
    store = store or Store(settings.store_url, sqlite_synchronous=settings.sqlite_synchronous)
    limiter = limiter or make_limiter(settings.redis)
    plane = DataPlane(settings, guards, store=store, limiter=limiter, metrics=metrics, monitor=monitor)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(store.migrate)
        await plane.start()
        log.info("serving %s versions %s", settings.model_name, ", ".join(plane.served))
        try:
            yield
        finally:
            await plane.stop()
            store.close()
            limiter.close()

    app = FastAPI(
        title="fortify guarded inference",
        version=__version__,
        summary="Open Inference Protocol v2 behind a fortify Guard: verdicts, review queue, metrics.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.dataplane = plane
    app.state.keyring = KeyRing(settings.keys, insecure=settings.insecure_no_auth)
    app.state.metrics = metrics
    _errors(app)
    app.include_router(routes.router)
    app.include_router(review_routes.router)
    app.include_router(review_routes.alerts_router)
    app.include_router(dashboard.router)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    app.add_middleware(HttpMetrics, metrics=metrics)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _errors(app: FastAPI) -> None:
    """Every error handler of the app, in one place."""

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, str(exc), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(FortifyError)
    async def user_error(_: Request, exc: FortifyError) -> JSONResponse:
        return _error(400, str(exc).splitlines()[0] if str(exc) else "bad request")

    @app.exception_handler(sa.exc.OperationalError)
    async def store_down(request: Request, exc: sa.exc.OperationalError) -> JSONResponse:
        log.error("store unavailable on %s %s: %s", request.method, request.url.path, str(exc.orig)[:200])
        return _error(503, "the store is unavailable; the verdict was not recorded", {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal server error")


def validation_message(errors: Any) -> str:
    """One line from pydantic's errors: where, what, and how many more."""
    errors = list(errors)
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"[:500]
