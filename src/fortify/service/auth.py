"""API keys: hashed at rest, sent as ``X-API-Key`` or ``Authorization: Bearer``, with roles.

A key is looked up by the SHA-256 of what the client sent, so the plain key is never stored, compared
or logged; API keys are long random tokens (``new_key`` makes 32 random bytes), for which one SHA-256
is the usual at-rest form. ``admin`` implies every role.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from fortify.service.errors import Forbidden, Unauthorized
from fortify.service.settings import KeyConfig

ANONYMOUS = "anonymous"


def hash_key(key: str) -> str:
    """The at-rest form of ``key``: ``sha256:<64 hex digits>``."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key (43 URL-safe characters, 256 bits)."""
    return "fk_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's public id (or ``anonymous`` without auth) and its roles."""

    id: str
    roles: frozenset[str]
    config: KeyConfig | None = None

    def require(self, role: str) -> None:
        """Raise ``Forbidden`` unless this caller has ``role`` (or ``admin``)."""
        if role not in self.roles and "admin" not in self.roles:
            raise Forbidden(f"key {self.id!r} lacks the {role!r} role")


class KeyRing:
    """The configured keys, indexed by hash. With no keys and ``insecure``, everyone is an admin."""

    def __init__(self, keys: list[KeyConfig], *, insecure: bool = False) -> None:
        self._by_hash = {k.hash: k for k in keys}
        self.insecure = insecure and not keys

    def authenticate(self, headers: Mapping[str, str], cookie: str | None = None) -> Principal:
        """The caller's principal from its headers (or a dashboard cookie); ``Unauthorized`` if none fits."""
        if self.insecure:
            return Principal(ANONYMOUS, frozenset({"infer", "review", "admin"}))
        key = _presented_key(headers) or cookie
        if not key:
            raise Unauthorized("missing API key: send X-API-Key or Authorization: Bearer")
        digest = hash_key(key)
        match = self._by_hash.get(digest)
        # the dict lookup is on a hash of the secret, so its timing reveals nothing usable; compare anyway
        if match is None or not hmac.compare_digest(match.hash, digest):
            raise Unauthorized("invalid API key")
        return Principal(match.id, frozenset(match.roles), match)


def _presented_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None
