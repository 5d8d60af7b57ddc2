"""The service's one settings object: defaults < YAML ``--config`` < ``FORTIFY_*`` environment < CLI flags.

Every field can be set in the YAML file (``safe_load``), from the environment (``FORTIFY_PORT=9000``;
nested fields with ``__``: ``FORTIFY_BATCHING__MAX_BATCH=64``; lists and objects as JSON:
``FORTIFY_KEYS='[{"id": "ci", "hash": "sha256:...", "roles": ["infer"]}]'``) or, for the common ones,
from ``fortify serve`` flags. API keys are configured by their hash only (``fortify serve-key`` makes
one); the plain key never appears in the configuration, the store or the log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from fortify._files import read_limited
from fortify._untrusted import load_yaml
from fortify.types import FortifyError

Role = Literal["infer", "review", "admin"]
KEY_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
HASH_PATTERN = r"^sha256:[0-9a-f]{64}$"
MAX_CONFIG_BYTES = 1 << 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyConfig(_Strict):
    """One API key: a public id (shown in logs, metrics and the store), its hash, its roles and limits."""

    id: str = Field(pattern=KEY_ID_PATTERN)
    hash: str = Field(pattern=HASH_PATTERN, description="sha256:<hex> of the key (fortify serve-key)")
    roles: list[Role] = Field(default_factory=lambda: ["infer"], min_length=1)
    per_second: float | None = Field(default=None, gt=0, description="overrides rate_limit.per_second")
    burst: int | None = Field(default=None, ge=1, description="overrides rate_limit.burst")


class RateLimitConfig(_Strict):
    """Per-key limit as a token bucket (GCRA): ``per_second`` sustained, ``burst`` at once."""

    per_second: float = Field(default=50.0, gt=0)
    burst: int = Field(default=100, ge=1)


class BatchingConfig(_Strict):
    """Micro-batching: concurrent requests share one forward of at most ``max_batch`` rows.

    ``max_wait_ms`` = 0 batches only what is already queued when the model frees up (no added latency
    when idle); above 0 the first request of a batch waits up to that long for company (Triton's
    ``max_queue_delay``).
    """

    enabled: bool = True
    max_batch: int = Field(default=64, ge=1, le=4096)
    max_wait_ms: float = Field(default=0.0, ge=0.0, le=1000.0)


class WebhookConfig(_Strict):
    """Alerts are POSTed as JSON to ``url`` with ``retries`` retries and exponential backoff."""

    url: str | None = None
    retries: int = Field(default=3, ge=0, le=10)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    backoff_s: float = Field(default=0.2, ge=0, le=60)


class AlertAction(_Strict):
    """How the service carries out the action of alerts of rule ``rule`` (the rule names the action).

    ``action`` overrides the rule's own; ``scope`` ``key`` applies it to the offending client (the
    default for per-client alerts), ``all`` to all traffic (the default for stream alerts; only the
    fallback can apply to all).
    """

    rule: str
    action: Literal["alert", "fallback", "throttle", "block"] | None = None
    scope: Literal["key", "all"] | None = None
    duration_s: float = Field(default=300.0, gt=0)
    throttle_factor: float = Field(default=0.1, gt=0, lt=1, description="share of the normal rate kept")


class VersionConfig(_Strict):
    """A second guard bundle served as another version of the same model."""

    guard: Path
    version: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")


class CanaryConfig(VersionConfig):
    """The canary version takes ``share`` of the traffic that does not name a version."""

    share: float = Field(default=0.1, ge=0.0, le=1.0)


class MonitorConfig(_Strict):
    """Feed ``fortify.runtime.Monitor`` with every verdict.

    ``rules``: alert rules as in a rules YAML (``fortify.runtime.rules``), or ``rules_file``; neither:
    the runtime's default rules. ``reference``: a dataset whose test split (first ``reference_n``)
    is the clean reference of the drift rules (zero-config serving uses its calibration set); without
    one, drift and class-mix rules are left out.
    """

    enabled: bool = True
    rules: list[dict[str, Any]] | None = None
    rules_file: Path | None = None
    reference: str | None = None
    reference_n: int = Field(default=500, ge=10)


class ServeSettings(BaseSettings):
    """Everything ``fortify serve`` and ``create_app`` need; see the module docstring for the sources."""

    model_config = SettingsConfigDict(
        env_prefix="FORTIFY_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    model_name: str = Field(default="fortify", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    model_version: str = Field(default="1", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    guard: Path | None = Field(default=None, description="guard bundle directory (fortify guard build)")
    model: Path | None = Field(default=None, description="model.safetensors, with calibrate")
    calibrate: str | None = Field(default=None, description="dataset to calibrate a default guard on")
    calibrate_n: int | None = Field(default=None, ge=10, description="default: the runtime's (2,000)")
    fpr: float = Field(default=0.05, gt=0, lt=1)
    detectors: list[str] | None = Field(default=None, description="default: the runtime's default set")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    run_dir: Path = Path("runs/serve")
    store: str | None = Field(default=None, description="sqlite:///file.db or postgresql://...")
    redis: str | None = Field(default=None, description="redis://host:port/db, shares limits")
    insecure_no_auth: bool = False
    trust_code: bool = Field(
        default=False,
        description="let guard bundles rebuild a model from its import path (runs that code)",
    )
    keys: list[KeyConfig] = Field(default_factory=list)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_request_rows: int = Field(default=256, ge=1)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    store_inputs: Literal["flagged", "review", "all"] = "flagged"
    expose_probabilities: bool = Field(
        default=False,
        description="add class probabilities to responses (score-based red-teaming; aids theft)",
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        default="NORMAL", description="NORMAL: commits survive a killed server; FULL: also a power cut"
    )
    canary: CanaryConfig | None = None
    fallback: VersionConfig | None = None
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    alert_actions: list[AlertAction] = Field(default_factory=list)
    torch_threads: int | None = Field(default=None, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("keys")
    @classmethod
    def _unique_ids(cls, keys: list[KeyConfig]) -> list[KeyConfig]:
        ids = [k.id for k in keys]
        if len(set(ids)) != len(ids):
            raise ValueError(f"key ids must be unique, got {ids}")
        hashes = [k.hash for k in keys]
        if len(set(hashes)) != len(hashes):
            raise ValueError("two keys have the same hash")
        return keys

    @model_validator(mode="after")
    def _versions_differ(self) -> ServeSettings:
        versions = [self.model_version] + [v.version for v in (self.canary, self.fallback) if v is not None]
        if len(set(versions)) != len(versions):
            raise ValueError(f"model_version, canary.version and fallback.version must differ: {versions}")
        return self

    @property
    def store_url(self) -> str:
        """The store URL: ``store`` if set, else a SQLite file under ``run_dir``."""
        if self.store:
            return self.store
        return f"sqlite:///{(self.run_dir / 'events.db').as_posix()}"

    def check_startable(self) -> None:
        """Raise ``FortifyError`` if the server must not start: no guard source, or no key without opt-out."""
        if not self.keys and not self.insecure_no_auth:
            raise FortifyError(
                "no API key configured: add keys (fortify serve-key makes one) or pass --insecure-no-auth"
            )
        if self.guard is None and (self.model is None or self.calibrate is None):
            raise FortifyError("nothing to serve: pass --guard BUNDLE or --model FILE --calibrate DATASET")


def load_settings(config: str | os.PathLike[str] | None = None, **overrides: Any) -> ServeSettings:
    """Build ``ServeSettings`` from a YAML file, the environment and ``overrides`` (highest first: overrides).

    ``overrides`` whose value is ``None`` are ignored (unset CLI flags). Any problem, in the file or in
    a value, raises ``FortifyError`` with one line naming the field.
    """
    data = _read_yaml(config) if config is not None else {}
    try:
        env = EnvSettingsSource(ServeSettings)()
        merged = _merge(_merge(data, env), {k: v for k, v in overrides.items() if v is not None})
        return ServeSettings(**merged)
    except ValidationError as exc:
        raise FortifyError(f"invalid serve settings: {_first_error(exc)}") from None
    except ValueError as exc:  # pydantic-settings' own JSON errors for FORTIFY_* values
        raise FortifyError(f"invalid serve settings: {exc}".splitlines()[0]) from None


def _read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings mapping of an untrusted YAML file: size-limited, UTF-8, safe tags, no repeated keys,
    bounded nesting and integers; every problem one line."""
    p = Path(path)
    what = f"config {p}"
    data = load_yaml(read_limited(p, "config", MAX_CONFIG_BYTES), what, max_bytes=MAX_CONFIG_BYTES)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FortifyError(f"{what} must be a mapping of settings, got {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
    extra = f" ({len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: {err.get('msg', 'invalid')}{extra}"
