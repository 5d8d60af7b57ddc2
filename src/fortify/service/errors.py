"""Service errors, each with its HTTP status; the app maps them all to ``{"error": ...}`` in one place."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses; ``status`` is the HTTP status, ``str(self)`` the one-line message."""

    status: int = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}


class BadRequest(ServiceError):
    """Malformed request: wrong shape, datatype, range, batch size or unknown output."""

    status = 400


class Unauthorized(ServiceError):
    """No API key, or a key that matches none configured."""

    status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="fortify"'})


class Forbidden(ServiceError):
    """A valid key whose roles do not allow this endpoint, or a key blocked by an alert."""

    status = 403


class NotFound(ServiceError):
    """Unknown model, version or review item."""

    status = 404


class Conflict(ServiceError):
    """The request is valid but conflicts with the current state (e.g. reviewing an item twice)."""

    status = 409


class PayloadTooLarge(ServiceError):
    """The request body is over ``max_body_bytes``."""

    status = 413


class TooManyRequests(ServiceError):
    """Over the key's rate limit; ``Retry-After`` says in how many whole seconds to retry."""

    status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        seconds = max(1, int(-(-retry_after_s // 1)))  # ceil, and never 0: clients would spin
        super().__init__(message, headers={"Retry-After": str(seconds)})
        self.retry_after_s = retry_after_s


class Unavailable(ServiceError):
    """The service is not ready (starting or stopping)."""

    status = 503
