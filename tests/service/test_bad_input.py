"""Bad input is a clear 4xx, never a 5xx: shapes, datatypes, values, sizes, malformed JSON, fuzzed bodies."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.conftest import headers, infer_body

URL = "/v2/models/fortify/infer"


def _post(client, body):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body, allow_nan=True)
    hdrs = headers() | {"content-type": "application/json"}
    return client.post(URL, content=raw, headers=hdrs)


def _tensor(shape, data, datatype="FP32", name="input"):
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]}


def test_structural_errors_are_400_with_a_message(client):
    cases = {
        "does not match": _tensor([1, 1, 8, 7], [0.5] * 56),
        "needs 64": _tensor([1, 1, 8, 8], [0.5] * 63),
        "not supported": _tensor([1, 1, 8, 8], [0.5] * 64, datatype="INT32"),
        "unknown input": _tensor([1, 1, 8, 8], [0.5] * 64, name="pixels"),
        "batch size 0": _tensor([0, 1, 8, 8], []),
        "batch size 1000": _tensor([1000, 1, 8, 8], [0.5] * 64),
        "JSON numbers": _tensor([1, 1, 8, 8], ["0.5"] * 64),
        "UINT8 data": _tensor([1, 1, 8, 8], [256] * 64, datatype="UINT8"),
        "does not follow shape": _tensor([1, 1, 8, 8], [[0.5] * 32, [[0.5] * 32]]),
        "deeper than its shape": _tensor([1, 1, 8, 8], [[[[[0.5]] * 8] * 8]]),
    }
    for expected, body in cases.items():
        response = _post(client, body)
        assert response.status_code == 400, (expected, response.text)
        assert expected in response.json()["error"]


def test_booleans_are_not_numbers(client):
    assert _post(client, _tensor([1, 1, 8, 8], [True] * 64)).status_code == 400
    assert _post(client, _tensor([1, 1, 8, 8], [0.5] * 63 + [False])).status_code == 400
    assert _post(client, _tensor([1, 1, 8, 8], [1] * 63 + [True], datatype="UINT8")).status_code == 400


def test_integer_literals_beyond_any_float_are_out_of_range_not_a_crash(client):
    raw = json.dumps(_tensor([1, 1, 8, 8], [0.5] * 64)).replace("0.5]", "1" + "0" * 400 + "]")
    response = _post(client, raw)
    assert response.status_code == 400 and "non-finite" in response.json()["error"]
    uint8 = json.dumps(_tensor([1, 1, 8, 8], [1] * 64, datatype="UINT8")).replace("1]", "1" + "0" * 400 + "]")
    assert _post(client, uint8).status_code == 400


def test_nan_inf_and_out_of_range_are_4xx_and_recorded_as_rejected(client):
    for value, word in ((math.nan, "non-finite"), (math.inf, "non-finite"), (1.5, "outside")):
        response = _post(client, _tensor([1, 1, 8, 8], [0.5] * 63 + [value]))
        assert response.status_code == 400 and word in response.json()["error"]
        event = int(response.json()["error"].rsplit("event ", 1)[1].rstrip(")"))
        item = client.get(f"/review/{event}", headers=headers("review")).json()
        assert item["status"] == "REJECTED" and item["label"] == -1 and item["input"] is not None


def test_schema_and_json_errors(client):
    assert _post(client, b"{not json").status_code == 422
    assert _post(client, {"inputs": []}).status_code == 422
    assert _post(client, {"inputs": [{"name": "input"}]}).status_code == 422
    assert _post(client, {"inputs": "x", "extra": 1}).status_code == 422
    assert _post(client, {"id": "\u0000bad", **_tensor([1, 1, 8, 8], [0.5] * 64)}).status_code == 422


def test_body_over_the_limit_is_413(client):
    response = _post(client, b"[" + b"0.5," * 2_000_000 + b"0.5]")
    assert response.status_code == 413 and "limit" in response.json()["error"]


def test_unknown_routes_and_methods_are_json_4xx(client):
    assert client.get("/nope").json() == {"error": "Not Found"}
    assert client.get("/v2/models/fortify/infer", headers=headers()).status_code == 405


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.just(10**400)
    | st.floats()
    | st.text(max_size=5)
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=5), max_leaves=80)
inputs = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["input", "x", ""]),
        "shape": st.lists(st.integers(-3, 70), max_size=5) | json_values,
        "datatype": st.sampled_from(["FP32", "FP64", "UINT8", "BYTES", "fp32", "BOOL"]),
        "data": st.lists(json_values, max_size=70) | json_values,
    },
    optional={"parameters": st.dictionaries(st.text(max_size=5), json_values, max_size=2)},
)
bodies = st.fixed_dictionaries(
    {"inputs": st.lists(inputs, max_size=2) | json_values}, optional={"id": json_values}
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_fuzzed_tensors_never_cause_a_5xx(client, body):
    response = _post(client, body)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert set(response.json()) == {"error"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=64, max_size=64))
def test_any_float_values_give_a_verdict_or_a_4xx(client, values):
    response = _post(client, _tensor([1, 1, 8, 8], values))
    assert response.status_code in (200, 400), response.text
    ok = all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
    assert (response.status_code == 200) == ok


def test_valid_request_still_works_after_fuzzing(client, synthetic):
    assert _post(client, infer_body(synthetic[0][:1])).status_code == 200
