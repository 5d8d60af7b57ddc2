"""Prometheus metrics of one app, on its own registry (several apps in one process do not collide).

Names follow Prometheus conventions: ``fortify_`` prefix, base units (seconds), ``_total`` counters.
Detector scores are recorded relative to their review threshold (``score / threshold``), so one set
of buckets fits every detector and 1.0 is where review starts.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """Every metric the service exports; ``render()`` gives the text exposition format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "fortify_http_requests_total",
            "HTTP requests by route and status code",
            ["method", "route", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "fortify_http_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.verdicts = Counter(
            "fortify_verdicts_total",
            "Verdicts by model version and status",
            ["version", "status"],
            registry=r,
        )
        self.scores = Histogram(
            "fortify_detector_score_ratio",
            "Detector score divided by its review threshold (above 1: sent to review)",
            ["detector"],
            buckets=RATIO_BUCKETS,
            registry=r,
        )
        self.alerts = Counter("fortify_alerts_total", "Alerts fired by rule", ["rule"], registry=r)
        self.webhook_failures = Counter(
            "fortify_alert_webhook_failures_total",
            "Alerts the webhook did not take after all retries",
            registry=r,
        )
        self.rate_limited = Counter(
            "fortify_rate_limited_total", "Requests refused with 429 by key", ["key"], registry=r
        )
        self.batch_rows = Histogram(
            "fortify_batch_rows", "Rows per model forward", ["version"], buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "fortify_batch_requests",
            "Requests per model forward",
            ["version"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "fortify_batch_queue_depth", "Requests waiting for the model", ["version"], registry=r
        )
        self.review_depth = Gauge("fortify_review_queue_depth", "Items waiting for review", registry=r)
        self.fallback_active = Gauge(
            "fortify_fallback_active",
            "Keys (and '*': all traffic) an alert routed to the fallback",
            registry=r,
        )

    def track_queue(self, version: str, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as the batch queue depth of ``version`` at every scrape."""
        self.queue_depth.labels(version=version).set_function(depth)

    def track_review(self, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as the review queue depth at every scrape."""
        self.review_depth.set_function(depth)

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
