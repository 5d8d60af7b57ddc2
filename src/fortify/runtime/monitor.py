"""``ft.Monitor``: rolling windows over the guard's verdicts and inputs, and the alerts their rules fire.

The monitor is fed in process (the service calls ``observe`` after every scored batch) and keeps, by
count and by time, what its rules read: verdict statuses, confidences, detector scores and flags,
predicted classes, input features for drift tests against a reference set, and each client's query
stream for extraction patterns (``fortify.runtime.extraction``). ``observe`` returns the alerts that
fired on that batch; an alert records when the first offending request arrived (the earliest offending
record in the window that fired it, after the rule's previous alert) and when it fired.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify.detect.drift import ks_drift, mmd_drift
from fortify.runtime.extraction import Prada
from fortify.runtime.rules import DEFAULT_RULES, NEAR_BOUNDARY_CONFIDENCE, AlertRule
from fortify.runtime.verdict import Status, Verdict
from fortify.types import FortifyError

MAX_ALERTS = 1000
MAX_RECORDS = 100_000
MAX_REFERENCE = 500
DRIFT_EVERY = 25


@dataclass(frozen=True)
class Alert:
    """A rule that fired: the metric's value against its threshold, for one client or the whole stream."""

    rule: str
    metric: str
    value: float
    threshold: float
    op: str
    action: str
    client: str | None
    first_offending_at: float
    fired_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Record:
    t: float
    status: Status
    confidence: float
    label: int
    scores: dict[str, float]
    flags: dict[str, bool]
    client: str | None
    features: Tensor | None


def _offending(metric: str) -> Callable[[_Record], bool] | None:
    """The per-record predicate a rate metric counts (None for metrics that are not rates)."""
    if metric == "review_rate":
        return lambda r: r.status is not Status.ACCEPTED
    if metric == "reject_rate":
        return lambda r: r.status is Status.REJECTED
    if metric == "near_boundary_rate":
        return lambda r: r.confidence < NEAR_BOUNDARY_CONFIDENCE
    if metric.startswith("flag_rate:"):
        name = metric.split(":", 1)[1]
        return lambda r: r.flags.get(name, False)
    return None


def default_embedding(x: Tensor) -> Tensor:
    """Cheap input features for drift tests: 4x4 average pooling per channel of images ``(N, C, H, W)``,
    the first 32 values of anything else; ``(N, d)``."""
    if x.dim() == 4 and x.shape[2] >= 4 and x.shape[3] >= 4:
        return F.adaptive_avg_pool2d(x.float(), 4).flatten(1)
    return x.float().flatten(1)[:, :32]


class Monitor:
    """``Monitor(reference=x_ref, rules=[...])``; ``observe(verdicts, x, client=...)`` -> fired alerts.

    ``reference``: clean inputs ``(n, ...)`` the drift tests compare against (up to 500 are kept);
    ``reference_labels``: their predicted classes, for ``class_shift``; ``embed``: features for drift
    tests (default ``default_embedding``). Drift p-values are recomputed every ``drift_every`` new
    observations. Rules: ``fortify.runtime.rules``.
    """

    def __init__(
        self,
        reference: Tensor | None = None,
        rules: Sequence[AlertRule] = DEFAULT_RULES,
        *,
        reference_labels: Tensor | None = None,
        num_classes: int | None = None,
        embed: Callable[[Tensor], Tensor] = default_embedding,
        drift_every: int = DRIFT_EVERY,
        seed: int = 0,
    ) -> None:
        self.rules = list(rules)
        if not all(isinstance(r, AlertRule) for r in self.rules):
            raise FortifyError("rules must be fortify.runtime.AlertRule objects (or load_rules(path))")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise FortifyError(f"rule names must be unique, got {names}")
        needs_drift = any(r.metric.startswith("drift_") for r in self.rules)
        if needs_drift and reference is None:
            raise FortifyError("drift rules need reference inputs: Monitor(reference=x_clean, ...)")
        needs_mix = any(r.metric == "class_shift" for r in self.rules)
        if needs_mix and (reference_labels is None or num_classes is None):
            raise FortifyError("class_shift rules need reference_labels and num_classes")
        self.embed = embed
        self.seed = seed
        self.drift_every = max(1, int(drift_every))
        self.reference = None if reference is None else embed(reference[:MAX_REFERENCE]).detach().cpu()
        self.num_classes = num_classes
        self.reference_mix = (
            None
            if reference_labels is None or num_classes is None
            else torch.bincount(reference_labels.cpu(), minlength=num_classes).double()
            / len(reference_labels)
        )
        self.records: deque[_Record] = deque(maxlen=MAX_RECORDS)
        self.by_client: dict[str, deque[_Record]] = {}
        self.prada = Prada()
        self.alerts: deque[Alert] = deque(maxlen=MAX_ALERTS)
        self.observed = 0
        self._quiet_until: dict[tuple[str, str | None], float] = {}
        self._fired_at: dict[tuple[str, str | None], float] = {}
        self._drift_cache: dict[str, tuple[int, float]] = {}

    # feeding ------------------------------------------------------------------------------------

    def observe(
        self,
        verdicts: Sequence[Verdict],
        x: Tensor | None = None,
        *,
        client: str | None = None,
        now: float | None = None,
    ) -> list[Alert]:
        """Add one batch of verdicts (and the inputs they judged, ``(N, ...)``) from ``client``; returns
        the alerts that fired on it (also kept in ``alerts``)."""
        now = time.time() if now is None else float(now)
        if x is not None and x.shape[0] != len(verdicts):
            raise FortifyError(f"{len(verdicts)} verdicts but {x.shape[0]} inputs")
        feats = None
        if x is not None and self.reference is not None:
            feats = self.embed(torch.nan_to_num(x.detach().float().cpu()))
        new = [
            _Record(
                now,
                v.status,
                v.confidence,
                v.label,
                v.scores,
                {k: v.scores[k] > t for k, t in v.thresholds.items() if k in v.scores},
                client,
                None if feats is None else feats[i],
            )
            for i, v in enumerate(verdicts)
        ]
        self.records.extend(new)
        self.observed += len(new)
        if client is not None:
            self.by_client.setdefault(client, deque(maxlen=MAX_RECORDS)).extend(new)
            if x is not None:
                scored = [i for i, v in enumerate(verdicts) if v.label >= 0]
                if scored:
                    labels = torch.tensor([verdicts[i].label for i in scored])
                    self.prada.observe(client, x[scored], labels)
        fired = [a for rule in self.rules for a in self._check(rule, client, now)]
        self.alerts.extend(fired)
        return fired

    # rules --------------------------------------------------------------------------------------

    def _check(self, rule: AlertRule, client: str | None, now: float) -> Iterable[Alert]:
        if rule.per_client and client is None:
            return []
        key = (rule.name, client if rule.per_client else None)
        if now < self._quiet_until.get(key, -math.inf):
            return []
        if rule.metric == "prada_w":  # the client's whole stream, kept by Prada itself
            recent = self.by_client.get(client or "", deque())
            window = [recent[-1]] if recent else []
            value = self.prada.score(client or "")
        else:
            window = self._window(rule, client, now)
            value = self._value(rule, window, client) if len(window) >= rule.needed else None
        if value is None:
            return []
        breach = value > rule.threshold if rule.op == ">" else value < rule.threshold
        if not breach:
            return []
        since = self._fired_at.get(key, -math.inf)
        first = self._first_offending(rule, window, since)
        self._quiet_until[key] = now + rule.cooldown_s
        self._fired_at[key] = now
        return [
            Alert(rule.name, rule.metric, value, rule.threshold, rule.op, rule.action, key[1], first, now)
        ]

    def _window(self, rule: AlertRule, client: str | None, now: float) -> list[_Record]:
        source = self.by_client.get(client or "", deque()) if rule.per_client else self.records
        if rule.window is not None:
            n = min(rule.window, len(source))
            return [source[i] for i in range(len(source) - n, len(source))]
        cutoff = now - float(rule.window_s or 0.0)
        out: list[_Record] = []
        for record in reversed(source):
            if record.t < cutoff:
                break
            out.append(record)
        return out[::-1]

    def _value(self, rule: AlertRule, window: list[_Record], client: str | None) -> float | None:
        metric = rule.metric
        offending = _offending(metric)
        if offending is not None:
            return sum(offending(r) for r in window) / len(window)
        if metric == "mean_confidence":
            return sum(r.confidence for r in window) / len(window)
        if metric == "client_volume":
            return float(len(window))
        if metric == "prada_w":
            return self.prada.score(client or "")
        if metric == "class_shift":
            return self._class_shift(window)
        if metric.startswith("score_mean:"):
            name = metric.split(":", 1)[1]
            values = [r.scores[name] for r in window if name in r.scores]
            return sum(values) / len(values) if values else None
        return self._drift(rule, window)

    def _class_shift(self, window: list[_Record]) -> float | None:
        labels = torch.tensor([r.label for r in window if r.label >= 0], dtype=torch.long)
        if labels.numel() == 0 or self.reference_mix is None or self.num_classes is None:
            return None
        mix = torch.bincount(labels.clamp_max(self.num_classes - 1), minlength=self.num_classes).double()
        return float(0.5 * (mix / labels.numel() - self.reference_mix).abs().sum())

    def _drift(self, rule: AlertRule, window: list[_Record]) -> float | None:
        cached = self._drift_cache.get(rule.name)
        if cached is not None and self.observed - cached[0] < self.drift_every:
            return cached[1]
        feats = [r.features for r in window if r.features is not None]
        if len(feats) < 2 or self.reference is None:
            return None
        sample = torch.stack(feats)
        test = ks_drift if rule.metric == "drift_ks" else mmd_drift
        p_value = test(self.reference, sample).p_value
        self._drift_cache[rule.name] = (self.observed, p_value)
        return p_value

    def _first_offending(self, rule: AlertRule, window: list[_Record], since: float) -> float:
        """When the breach began: for a rate over records, the offending record where the suffix sum of
        ``offending - threshold`` peaks (a CUSUM change-point estimate: the start of the burst, not a
        stray false positive long before it); otherwise the first record of the window. Only records
        after the rule's previous alert count."""
        recent = [r for r in window if r.t > since] or window
        offending = _offending(rule.metric)
        if offending is None or rule.op != ">":
            return recent[0].t
        total, best, start = 0.0, -math.inf, None
        for i in range(len(recent) - 1, -1, -1):
            hit = bool(offending(recent[i]))
            total += hit - rule.threshold
            if hit and total > best:
                best, start = total, i
        return recent[start].t if start is not None else recent[0].t

    # reading ------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Current values of the stream rules' metrics, counts and the latest alerts (for dashboards)."""
        now = time.time()
        values: dict[str, float | None] = {}
        for rule in self.rules:
            if rule.per_client:
                continue
            window = self._window(rule, None, now)
            values[rule.name] = self._value(rule, window, None) if window else None
        return {
            "observed": self.observed,
            "clients": len(self.by_client),
            "rules": values,
            "alerts": [a.to_dict() for a in list(self.alerts)[-20:]],
        }
