"""Watching a served endpoint's monitor from the thief's side: has the extraction alert fired yet?

``AlertWatch(endpoint)`` is the ``detected`` callback of ``fortify.audits.extraction.knockoff``: each call
reads ``GET /alerts`` (the ``review`` role) and answers whether an alert on ``metric`` (PRADA's
``prada_w`` by default) has fired since the watch began, for ``client`` (a key id) when given, else for
any client. The first such alert is kept in ``alert``. The monitor keeps each key's query history for
the life of the server process: measure with a key that has not queried it before.
"""

from __future__ import annotations

import time
from typing import Any

from fortify.service.client import EndpointError, RemoteModel
from fortify.types import FortifyError

EXTRACTION_METRIC = "prada_w"


class AlertWatch:
    """``watch()`` -> True once the endpoint has fired an alert on ``metric`` since ``since``.

    Raises ``FortifyError`` at construction when the key cannot read alerts (403: no ``review`` role),
    so a run that cannot measure detection says so before it spends queries. ``checks`` counts polls.
    """

    def __init__(
        self,
        endpoint: RemoteModel,
        *,
        metric: str = EXTRACTION_METRIC,
        client: str | None = None,
        since: float | None = None,
    ) -> None:
        self.endpoint, self.metric, self.client = endpoint, metric, client
        self.since = time.time() if since is None else float(since)
        self.alert: dict[str, Any] | None = None
        self.checks = 0
        try:
            self._matching()
        except EndpointError as exc:
            problem = f"cannot read the endpoint's alerts (does the key have the review role?): {exc}"
            raise FortifyError(problem) from None

    def _matching(self) -> list[dict[str, Any]]:
        items = self.endpoint.alerts(self.since)
        if not isinstance(items, list):
            raise EndpointError("GET /alerts: 'items' is not a list")
        return [
            a
            for a in items
            if isinstance(a, dict)
            and a.get("metric") == self.metric
            and (self.client is None or a.get("client") == self.client)
        ]

    def __call__(self) -> bool:
        if self.alert is not None:
            return True
        self.checks += 1
        found = self._matching()
        if found:
            self.alert = min(found, key=_fired_at)
        return self.alert is not None


def _fired_at(alert: dict[str, Any]) -> float:
    value = alert.get("fired_at")
    return float(value) if isinstance(value, (int, float)) else float("inf")
