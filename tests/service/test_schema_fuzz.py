"""Schemathesis against the served OpenAPI schema: bounded, on loopback, never a 5xx, errors as JSON."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from fortify.service.app import create_app
from tests.service.conftest import KEYS, headers, infer_body, key_configs
from tests.service.server import running


@pytest.fixture(scope="module")
def served_url(guard, tmp_path_factory):
    from fortify.service.settings import ServeSettings

    settings = ServeSettings(
        keys=key_configs(per_second=10_000, burst=10_000),
        run_dir=tmp_path_factory.mktemp("fuzz"),
        sqlite_synchronous="NORMAL",
    )
    with running(create_app(settings, guard=guard)) as url:
        yield url


def _fuzz(operation, served_url: str, codes: dict[int, int]) -> None:
    cases = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | operation.as_strategy(
        generation_mode=GenerationMode.NEGATIVE
    )

    @given(case=cases, real=st.sampled_from([0, 0, 1, 2, 3]))
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case, real):
        if real:  # some cases name the served model and stored events, so they get past the 404s
            known = {"model_name": "fortify", "model_version": "1", "event_id": real}
            case.path_parameters = {k: known.get(k, v) for k, v in (case.path_parameters or {}).items()}
        response = case.call(base_url=served_url, headers={"X-API-Key": KEYS["admin"]}, timeout=10)
        codes[response.status_code] = codes.get(response.status_code, 0) + 1
        assert response.status_code < 500, f"{operation.label}: {response.status_code} {response.text[:300]}"
        if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
            assert list(response.json()) == ["error"], response.text[:300]

    fuzz()


def test_served_schema_fuzzing_never_gives_a_5xx(served_url, synthetic):
    """Every operation of /openapi.json, valid and invalid cases (25 each): no 5xx, errors as JSON."""
    schema = schemathesis.openapi.from_url(served_url + "/openapi.json")
    seed = httpx.post(
        served_url + "/v2/models/fortify/infer", json=infer_body(synthetic[0][:3]), headers=headers("admin")
    )
    assert seed.status_code == 200
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    codes: dict[int, int] = {}
    for operation in operations:
        _fuzz(operation, served_url, codes)
    assert codes.get(200, 0) >= 20 and sum(codes.values()) >= 12 * 20, codes
