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

The YAML is untrusted: ``fortify._untrusted.load_yaml`` (safe tags only, duplicate keys refused, size,
depth and integer limits) and a schema (one-line errors naming the field).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fortify._files import read_limited
from fortify._untrusted import as_text, load_yaml
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


def parse_rules(text: str, source: str = "rules") -> list[AlertRule]:
    """Rules from YAML text (see the module docstring); ``FortifyError`` naming the problem otherwise."""
    raw = load_yaml(text, source, max_bytes=MAX_RULES_BYTES)
    try:
        return _RuleFile.model_validate(raw).rules
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise FortifyError(f"{source}: {where}: {first['msg']}") from exc


def load_rules(path: str | Path) -> list[AlertRule]:
    """Rules from a YAML file (at most 1 MiB, UTF-8)."""
    source = Path(path)
    body = read_limited(source, f"rules file {source}", MAX_RULES_BYTES)
    return parse_rules(as_text(body, f"rules file {source}", max_bytes=MAX_RULES_BYTES), str(source))
