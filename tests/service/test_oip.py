"""The Open Inference Protocol v2 surface: health, metadata, infer, with the verdict in the response."""

from __future__ import annotations

from tests.service.conftest import headers, infer_body


def test_health_needs_no_key_and_has_empty_bodies(client):
    for path in ("/v2/health/live", "/v2/health/ready"):
        response = client.get(path)
        assert response.status_code == 200 and response.content == b""


def test_server_and_model_metadata_follow_the_protocol(client, guard):
    server = client.get("/v2").json()
    assert server["name"] == "fortify" and isinstance(server["extensions"], list) and server["version"]
    meta = client.get("/v2/models/fortify", headers=headers()).json()
    assert meta["name"] == "fortify" and meta["platform"] and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    assert {o["name"] for o in meta["outputs"]} == {
        "label",
        "confidence",
        "status",
        "reasons",
        "event_id",
        "scores",
    }
    assert client.get("/v2/models/fortify/versions/1", headers=headers()).json()["versions"] == ["1"]
    assert client.get("/v2/models/fortify/ready", headers=headers()).status_code == 200
    assert client.get("/v2/models/other", headers=headers()).status_code == 404
    assert client.get("/v2/models/fortify/versions/9/ready", headers=headers()).status_code == 404


def test_infer_returns_the_guards_verdicts_as_tensors(client, guard, synthetic):
    x, _ = synthetic
    batch = x[:5]
    response = client.post("/v2/models/fortify/infer", json=infer_body(batch, id="req-1"), headers=headers())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "fortify" and body["model_version"] == "1" and body["id"] == "req-1"
    out = {o["name"]: o for o in body["outputs"]}
    expected = guard(batch)
    assert out["label"]["datatype"] == "INT64" and out["label"]["shape"] == [5]
    assert out["label"]["data"] == [v.label for v in expected]
    assert out["status"]["data"] == [v.status.value for v in expected]
    assert (
        out["scores"]["shape"] == [5, 2] and out["scores"]["parameters"]["detectors"] == "squeeze,confidence"
    )
    assert len(set(out["event_id"]["data"])) == 5
    assert body["parameters"]["accepted"] + body["parameters"]["review"] + body["parameters"]["rejected"] == 5


def test_outputs_can_be_selected_and_unknown_ones_are_refused(client, synthetic):
    x, _ = synthetic
    body = infer_body(x[:2], outputs=[{"name": "label"}])
    response = client.post("/v2/models/fortify/versions/1/infer", json=body, headers=headers())
    assert [o["name"] for o in response.json()["outputs"]] == ["label"]
    bad = client.post(
        "/v2/models/fortify/infer", json=infer_body(x[:2], outputs=[{"name": "x"}]), headers=headers()
    )
    assert bad.status_code == 400 and "unknown output" in bad.json()["error"]


def test_uint8_and_nested_data_are_accepted(client, guard, synthetic):
    x, _ = synthetic
    q = (x[:3] * 255).round().to(int)
    nested = {"name": "input", "shape": [3, 1, 8, 8], "datatype": "UINT8", "data": q.tolist()}
    response = client.post("/v2/models/fortify/infer", json={"inputs": [nested]}, headers=headers())
    assert response.status_code == 200, response.text
    labels = {o["name"]: o for o in response.json()["outputs"]}["label"]["data"]
    assert labels == [v.label for v in guard(q.float() / 255)]


def test_fp64_inputs_give_the_same_verdicts(client, synthetic):
    x, _ = synthetic
    fp32 = client.post("/v2/models/fortify/infer", json=infer_body(x[:3]), headers=headers()).json()
    body = infer_body(x[:3])
    body["inputs"][0]["datatype"] = "FP64"
    fp64 = client.post("/v2/models/fortify/infer", json=body, headers=headers()).json()
    label = lambda r: next(o for o in r["outputs"] if o["name"] == "label")["data"]  # noqa: E731
    assert label(fp64) == label(fp32)
