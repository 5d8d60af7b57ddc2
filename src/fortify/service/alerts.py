"""Alerts from the monitor: stored, logged, counted, POSTed to a webhook with retries, and acted on.

An alert's action comes from ``alert_actions`` in the settings (by rule name): ``fallback`` routes the
offending key (or all traffic) to the fallback guard, ``throttle`` keeps only a share of the key's rate,
``block`` refuses the key with 403 — each for ``duration_s``. Webhook delivery runs in the background
(never in a request's path): ``retries`` retries with exponential backoff from ``backoff_s``, a 2xx
ending it; what still fails is logged and counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import httpx

from fortify.service.limits import Limiter
from fortify.service.metrics import Metrics
from fortify.service.routing import Router
from fortify.service.settings import AlertAction, WebhookConfig
from fortify.service.store import Store

log = logging.getLogger("fortify.service.alerts")


def alert_record(alert: Any) -> dict[str, Any]:
    """A JSON-ready dict of a ``fortify.runtime.Alert`` (its ``to_dict()``, rule as its name)."""
    data = dict(alert.to_dict())
    rule = data.get("rule")
    data["rule"] = str(getattr(rule, "name", rule))
    return {k: _json_safe(v) for k, v in data.items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class AlertHub:
    """Takes the monitor's alerts; ``handle`` is synchronous and quick, delivery is a background task."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        limiter: Limiter,
        router: Router,
        actions: list[AlertAction],
        webhook: WebhookConfig,
    ) -> None:
        self.store, self.metrics, self.limiter, self.router = store, metrics, limiter, router
        self.actions = {a.rule: a for a in actions}
        self.webhook = webhook
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.delivered = 0

    async def start(self) -> None:
        if self.webhook.url:
            self._client = httpx.AsyncClient(timeout=self.webhook.timeout_s)

    async def stop(self) -> None:
        """Wait (briefly) for deliveries under way, then close the client."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.webhook.timeout_s * 2)
        if self._client is not None:
            await self._client.aclose()

    def act(self, alert: Any) -> dict[str, Any]:
        """Carry out the action of ``alert`` (thread-safe; no I/O but Redis); its record.

        ``record["rule_action"]`` is what the rule asked for, ``record["action"]`` what was done.
        """
        record = alert_record(alert)
        how = self.actions.get(record["rule"]) or AlertAction(rule=record["rule"])
        action = how.action or str(record.get("action") or "alert")
        client = record.get("client")
        scope = how.scope or ("key" if client is not None else "all")
        key = client if scope == "key" else None
        record["rule_action"], record["action"] = action, None
        if action == "alert":
            return record
        if scope == "key" and key is None:
            log.warning("alert %s has no client; its %s action needs one", record["rule"], action)
        elif action == "fallback":
            if self.router.activate_fallback(key, how.duration_s):
                record["action"] = "fallback"
        elif key is not None:
            factor = None if action == "block" else how.throttle_factor
            self.limiter.block(key, how.duration_s, factor=factor)
            record["action"] = action
        else:
            log.warning("alert %s: %s applies to one key, not to all traffic", record["rule"], action)
        return record

    def persist(self, record: dict[str, Any]) -> None:
        """Store, log and count one alert record (blocking I/O: call from a worker thread)."""
        columns = (
            "rule",
            "metric",
            "value",
            "threshold",
            "client",
            "first_offending_at",
            "fired_at",
            "action",
        )
        row = {c: record.get(c) for c in columns}
        row["fired_at"] = float(row["fired_at"] or 0.0)
        row["metric"] = str(row["metric"] or record["rule"])
        row["detail"] = record
        record["id"] = self.store.insert_alert(row)
        self.metrics.alerts.labels(rule=record["rule"]).inc()
        log.warning("alert %s", json.dumps(record, sort_keys=True))

    def deliver(self, record: dict[str, Any]) -> None:
        """POST ``record`` to the webhook in the background (call on the event loop)."""
        if self._client is None:
            return
        task = asyncio.get_running_loop().create_task(self._post(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, record: dict[str, Any]) -> None:
        if self._client is None or not self.webhook.url:
            return
        delay = self.webhook.backoff_s
        for attempt in range(self.webhook.retries + 1):
            try:
                response = await self._client.post(self.webhook.url, json=record)
                if 200 <= response.status_code < 300:
                    self.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            if attempt < self.webhook.retries:
                await asyncio.sleep(delay)
                delay *= 2
        self.metrics.webhook_failures.inc()
        log.error(
            "alert %s not delivered to the webhook after %d tries: %s", record["rule"], attempt + 1, problem
        )
