"""Alert rules: which metric, over which window, against which threshold, how often.

Rules come from Python (``AlertRule(...)``) or from YAML (``load_rules(path)``), a list under ``rules:``::

    rules:
      - name: attack-suspected
        metric: review_rate        # share of verdicts not ACCEPTED
        window: 50                 # the last 50 verdicts (or window_s: 10 for the last 10 seconds)
        op: ">"
        threshold: 0.25
        cooldown_s: 60

Metrics over the whole stream: ``review_rate``, ``reject_rate``, ``mean_confidence``, ``class_shift``
(total variation between the window's predicted-class mix and the reference's), ``flag_rate:NAME`` and
``score_mean:NAME`` (one detector), ``drift_ks`` and ``drift_mmd`` (p-values of two-sample tests of the
window's input features against the reference; alert with ``op: "<"``). Per client (``per_client``
is implied): ``prada_w`` (PRADA's Shapiro-Wilk statistic, ``op: "<"``), ``client_volume`` (the client's
requests in the window) and ``near_boundary_rate`` (share of its queries predicted with confidence
below 0.6).

The YAML is untrusted: ``yaml.safe_load`` (no tags), duplicate keys refused, a size limit, and a schema
(one-line errors naming the field).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fortify.types import FortifyError

STREAM_METRICS = ("review_rate", "reject_rate", "mean_confidence", "class_shift", "drift_ks", "drift_mmd")
CLIENT_METRICS = ("prada_w", "client_volume", "near_boundary_rate")
DETECTOR_PREFIXES = ("flag_rate:", "score_mean:")
MAX_RULES_BYTES = 1 << 20
NEAR_BOUNDARY_CONFIDENCE = 0.6


class AlertRule(BaseModel):
    """One rule: fire when ``metric`` over ``window`` verdicts (or ``window_s`` seconds) ``op threshold``.

    ``min_count`` observations must be in the window before the rule is checked (default: the count
    window, or 20 for a time window); after firing, the rule (per client, for client metrics) is silent
    for ``cooldown_s`` seconds. ``action`` is what a service does on it: ``"alert"`` (log and webhook
    only), ``"fallback"`` (route traffic to the robust fallback model), ``"throttle"`` or ``"block"``
    (the offending client).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    metric: str
    window: int | None = Field(default=None, ge=2, le=100_000)
    window_s: float | None = Field(default=None, gt=0, le=86_400)
    op: Literal[">", "<"] = ">"
    threshold: float
    cooldown_s: float = Field(default=60.0, ge=0, le=86_400)
    min_count: int | None = Field(default=None, ge=1, le=100_000)
    action: Literal["alert", "fallback", "throttle", "block"] = "alert"

    @model_validator(mode="after")
    def _consistent(self) -> AlertRule:
        known = self.metric in STREAM_METRICS or self.metric in CLIENT_METRICS
        if not known and not (self.metric.startswith(DETECTOR_PREFIXES) and self.metric.split(":", 1)[1]):
            raise ValueError(
                f"unknown metric {self.metric!r}; use one of {[*STREAM_METRICS, *CLIENT_METRICS]} or "
                "flag_rate:DETECTOR / score_mean:DETECTOR"
            )
        if (self.window is None) == (self.window_s is None):
            raise ValueError("give exactly one of window (a count) and window_s (seconds)")
        if not abs(self.threshold) < float("inf"):
            raise ValueError("threshold must be finite")
        return self

    @property
    def per_client(self) -> bool:
        return self.metric in CLIENT_METRICS

    @property
    def needed(self) -> int:
        return self.min_count or self.window or 20


DEFAULT_RULES = (
    AlertRule(name="attack-suspected", metric="review_rate", window=50, threshold=0.3, min_count=20),
    AlertRule(name="input-drift", metric="drift_ks", window=200, op="<", threshold=0.001),
    AlertRule(
        name="extraction-suspected",
        metric="prada_w",
        window_s=3600,
        op="<",
        threshold=0.9,
        min_count=1,
        action="throttle",
    ),
)


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[AlertRule] = Field(max_length=200)


class _NoDuplicates(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice."""


def _mapping(loader: _NoDuplicates, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(k) for k, _ in node.value]
    duplicated = sorted({str(k) for k in keys if keys.count(k) > 1})
    if duplicated:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate key(s) {duplicated}", node.start_mark)
    return loader.construct_mapping(node)


_NoDuplicates.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_rules(text: str, source: str = "rules") -> list[AlertRule]:
    """Rules from YAML text (see the module docstring); ``FortifyError`` naming the problem otherwise."""
    try:
        raw = yaml.load(text, Loader=_NoDuplicates)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise FortifyError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    try:
        return _RuleFile.model_validate(raw).rules
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise FortifyError(f"{source}: {where}: {first['msg']}") from exc


def load_rules(path: str | Path) -> list[AlertRule]:
    """Rules from a YAML file (at most 1 MiB, UTF-8)."""
    source = Path(path)
    try:
        with source.open("rb") as handle:
            body = handle.read(MAX_RULES_BYTES + 1)
    except OSError as exc:
        raise FortifyError(f"cannot read rules file {source}: {exc.strerror}") from exc
    if len(body) > MAX_RULES_BYTES:
        raise FortifyError(f"rules file {source} is larger than 1 MiB")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FortifyError(f"rules file {source} is not UTF-8") from exc
    return parse_rules(text, str(source))
