"""Auth and limits: 401 without or with a wrong key, 403 for a wrong role, 429 with Retry-After."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fortify.service.app import create_app
from fortify.service.auth import hash_key
from fortify.service.limits import MemoryLimiter
from fortify.service.settings import ServeSettings
from fortify.types import FortifyError
from tests.service.conftest import KEYS, headers, infer_body, key_configs


def test_no_key_and_wrong_key_are_401(client, synthetic):
    body = infer_body(synthetic[0][:1])
    missing = client.post("/v2/models/fortify/infer", json=body)
    assert missing.status_code == 401 and "missing API key" in missing.json()["error"]
    assert "Bearer" in missing.headers["www-authenticate"]
    wrong = client.post("/v2/models/fortify/infer", json=body, headers={"X-API-Key": "fk_not_a_key"})
    assert wrong.status_code == 401 and wrong.json() == {"error": "invalid API key"}
    assert client.get("/review").status_code == 401


def test_bearer_and_header_keys_both_work(client, synthetic):
    body = infer_body(synthetic[0][:1])
    bearer = {"Authorization": f"Bearer {KEYS['infer']}"}
    assert client.post("/v2/models/fortify/infer", json=body, headers=bearer).status_code == 200
    assert client.post("/v2/models/fortify/infer", json=body, headers=headers("infer")).status_code == 200


def test_roles_are_enforced_and_admin_implies_all(client, synthetic):
    body = infer_body(synthetic[0][:1])
    assert client.get("/review", headers=headers("infer")).status_code == 403
    assert client.post("/v2/models/fortify/infer", json=body, headers=headers("review")).status_code == 403
    assert client.get("/review", headers=headers("review")).status_code == 200
    assert client.get("/review", headers=headers("admin")).status_code == 200
    assert client.post("/v2/models/fortify/infer", json=body, headers=headers("admin")).status_code == 200


def test_over_the_limit_is_429_with_retry_after(guard, settings_for, synthetic):
    settings = settings_for(keys=key_configs(per_second=0.5, burst=3))
    body = infer_body(synthetic[0][:1])
    with TestClient(create_app(settings, guard=guard)) as client:
        codes = [
            client.post("/v2/models/fortify/infer", json=body, headers=headers()).status_code
            for _ in range(5)
        ]
        assert codes == [200, 200, 200, 429, 429]
        refused = client.post("/v2/models/fortify/infer", json=body, headers=headers())
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        # another key has its own bucket
        assert client.post("/v2/models/fortify/infer", json=body, headers=headers("admin")).status_code == 200
        metrics = client.get("/metrics").text
        assert 'fortify_rate_limited_total{key="infer"} 3.0' in metrics


def test_gcra_refills_at_the_configured_rate():
    now = [0.0]
    limiter = MemoryLimiter(clock=lambda: now[0])
    assert [limiter.hit("k", 2.0, 2).allowed for _ in range(3)] == [True, True, False]
    decision = limiter.hit("k", 2.0, 2)
    assert decision.retry_after_s == pytest.approx(0.5)
    now[0] = 0.5
    assert limiter.hit("k", 2.0, 2).allowed and not limiter.hit("k", 2.0, 2).allowed
    limiter.block("k", 10.0)
    now[0] = 100.0
    assert limiter.hit("k", 2.0, 2).allowed  # the block expired


def test_server_refuses_to_start_without_a_key(guard, tmp_path):
    with pytest.raises(FortifyError, match="no API key configured"):
        create_app(ServeSettings(run_dir=tmp_path), guard=guard)
    app = create_app(ServeSettings(run_dir=tmp_path, insecure_no_auth=True), guard=guard)
    with TestClient(app) as client:
        assert client.get("/review").status_code == 200


def test_keys_are_never_stored_or_logged_in_plain(client, synthetic, caplog, tmp_path):
    caplog.set_level("DEBUG")
    client.post("/v2/models/fortify/infer", json=infer_body(synthetic[0][:2]), headers=headers())
    client.post(
        "/v2/models/fortify/infer",
        json=infer_body(synthetic[0][:2]),
        headers={"X-API-Key": "fk_wrong_secret"},
    )
    for key in (*KEYS.values(), "fk_wrong_secret"):
        assert key not in caplog.text
        assert key.encode() not in (tmp_path / "events.db").read_bytes()
    assert hash_key("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
