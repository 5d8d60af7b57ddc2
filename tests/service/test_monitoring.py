"""Monitor feed and alerts: log, store, metrics, webhook with retries; fallback, block and canary routing."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from fortify.runtime import AlertRule, Guard, Monitor
from fortify.service.app import create_app
from fortify.service.settings import AlertAction, CanaryConfig, VersionConfig, WebhookConfig
from tests.service.conftest import headers, infer_body

NOISE = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))  # the guard rejects these


class Receiver:
    """A loopback webhook that answers 500 to its first ``failures`` posts, then 200."""

    def __init__(self, failures: int) -> None:
        self.bodies: list[dict] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                receiver.attempts += 1
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                ok = receiver.attempts > failures
                if ok:
                    receiver.bodies.append(body)
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, n: int, timeout_s: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while len(self.bodies) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.bodies

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(failures=2)
    yield r
    r.close()


@pytest.fixture(scope="module")
def robust(tiny_cnn):
    """A second guard, standing in for the robust fallback (a stricter policy on the same model)."""
    clf, x_test, _ = tiny_cnn
    return Guard([clf], detectors=["confidence"]).calibrate(x_test, fpr=0.05)


def _version_of(client, x, key="infer", path="/v2/models/fortify/infer"):
    response = client.post(path, json=infer_body(x), headers=headers(key))
    assert response.status_code == 200, response.text
    return response.json()["model_version"]


def test_attack_alert_switches_all_traffic_to_the_fallback_and_reaches_the_webhook(
    guard, robust, settings_for, synthetic, receiver, caplog
):
    rule = AlertRule(
        name="attack", metric="review_rate", window=5, threshold=0.5, action="fallback", cooldown_s=600
    )
    settings = settings_for(
        fallback=VersionConfig(guard=Path("unused"), version="robust"),
        webhook=WebhookConfig(url=receiver.url, retries=3, backoff_s=0.05),
        alert_actions=[AlertAction(rule="attack", duration_s=600)],
    )
    monitor = Monitor(rules=[rule])
    app = create_app(settings, guards={"1": guard, "robust": robust}, monitor=monitor)
    caplog.set_level("WARNING", logger="fortify.service.alerts")
    x, _ = synthetic
    with TestClient(app) as client:
        assert _version_of(client, x[:1]) == "1"
        for i in range(5):
            client.post("/v2/models/fortify/infer", json=infer_body(NOISE[i : i + 1]), headers=headers())
        assert _version_of(client, x[:1]) == "robust"
        assert _version_of(client, x[:1], key="admin") == "robust"  # scope all: every key
        assert _version_of(client, x[:1], path="/v2/models/fortify/versions/1/infer") == "1"
        metrics = client.get("/metrics").text
        alerts = app.state.dataplane.store.recent_alerts(10)
        page = client.get("/dashboard", headers=headers("review")).text
    bodies = receiver.wait(1)
    assert receiver.attempts == 3 and len(bodies) == 1  # two 500s, then delivered
    assert bodies[0]["rule"] == "attack" and bodies[0]["action"] == "fallback" and bodies[0]["value"] > 0.5
    assert bodies[0]["first_offending_at"] <= bodies[0]["fired_at"]
    assert 'fortify_alerts_total{rule="attack"} 1.0' in metrics
    assert 'fortify_verdicts_total{status="ACCEPTED",version="robust"}' in metrics
    assert [a["rule"] for a in alerts] == ["attack"] and alerts[0]["action"] == "fallback"
    assert "alert {" in caplog.text and '"rule": "attack"' in caplog.text
    assert "attack" in page and "robust" in page and "On the fallback: * for" in page
    assert "fortify_fallback_active 1.0" in metrics


def test_extraction_style_alert_blocks_only_the_offending_key(guard, settings_for, synthetic):
    rule = AlertRule(
        name="volume", metric="client_volume", window_s=60, threshold=5, action="block", min_count=1
    )
    settings = settings_for(alert_actions=[AlertAction(rule="volume", duration_s=300)])
    app = create_app(settings, guard=guard, monitor=Monitor(rules=[rule]))
    x, _ = synthetic
    with TestClient(app) as client:
        codes = [
            client.post(
                "/v2/models/fortify/infer", json=infer_body(x[i : i + 1]), headers=headers()
            ).status_code
            for i in range(8)
        ]
        other = client.post("/v2/models/fortify/infer", json=infer_body(x[:1]), headers=headers("admin"))
        blocked = client.post("/v2/models/fortify/infer", json=infer_body(x[:1]), headers=headers())
    assert codes == [200] * 6 + [403] * 2  # the 6th request fires the alert; the block applies after it
    assert other.status_code == 200
    assert blocked.status_code == 403 and "blocked by an alert" in blocked.json()["error"]


def test_throttle_keeps_a_share_of_the_keys_rate(guard, settings_for, synthetic):
    rule = AlertRule(
        name="volume", metric="client_volume", window_s=60, threshold=2, action="throttle", min_count=1
    )
    from tests.service.conftest import key_configs

    settings = settings_for(
        keys=key_configs(per_second=1.0, burst=10),
        alert_actions=[AlertAction(rule="volume", duration_s=300, throttle_factor=0.01)],
    )
    app = create_app(settings, guard=guard, monitor=Monitor(rules=[rule]))
    x, _ = synthetic
    with TestClient(app) as client:
        codes = [
            client.post("/v2/models/fortify/infer", json=infer_body(x[:1]), headers=headers()).status_code
            for _ in range(6)
        ]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]


def test_canary_takes_exactly_its_share_and_verdicts_are_tagged_by_version(
    guard, robust, settings_for, synthetic
):
    settings = settings_for(canary=CanaryConfig(guard=Path("unused"), version="2", share=0.25))
    app = create_app(settings, guards={"1": guard, "2": robust})
    x, _ = synthetic
    with TestClient(app) as client:
        versions = [_version_of(client, x[i : i + 1]) for i in range(8)]
        assert _version_of(client, x[:1], path="/v2/models/fortify/versions/2/infer") == "2"
        meta = client.get("/v2/models/fortify", headers=headers()).json()
        metrics = client.get("/metrics").text
        canary_events = app.state.dataplane.store.list_events(review_state=None, model_version="2", limit=50)
    assert versions.count("2") == 2 and versions == ["1", "1", "1", "2"] * 2
    assert meta["versions"] == ["1", "2"]
    assert len(canary_events) == 3
    assert 'version="2"' in metrics
