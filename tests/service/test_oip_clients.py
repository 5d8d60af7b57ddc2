"""A standard OIP client library, unchanged, against fortify: NVIDIA's tritonclient (HTTP, JSON tensors)."""

from __future__ import annotations

import numpy as np
import pytest

from fortify.service.app import create_app
from tests.service.conftest import KEYS, need
from tests.service.server import running

try:
    import tritonclient.http as httpclient
except ImportError:  # the serve-test extra; under CI=true the test fails instead of skipping
    httpclient = None


def test_tritonclient_talks_to_fortify_unchanged(guard, settings_for, synthetic):
    need(httpclient is not None, "no tritonclient (pip install 'fortify[serve-test]')")
    x, _ = synthetic
    batch = x[:3].numpy().astype(np.float32)
    auth = {"X-API-Key": KEYS["infer"]}
    with running(create_app(settings_for(), guard=guard)) as url:
        client = httpclient.InferenceServerClient(url.removeprefix("http://"))
        try:
            assert client.is_server_live() and client.is_server_ready()
            assert client.get_server_metadata()["name"] == "fortify"
            assert client.is_model_ready("fortify", headers=auth)
            meta = client.get_model_metadata("fortify", headers=auth)
            assert meta["inputs"][0]["shape"] == [-1, 1, 8, 8]
            tensor = httpclient.InferInput("input", list(batch.shape), "FP32")
            tensor.set_data_from_numpy(batch, binary_data=False)
            wanted = [httpclient.InferRequestedOutput(n, binary_data=False) for n in ("label", "status")]
            result = client.infer("fortify", [tensor], outputs=wanted, headers=auth, request_id="triton-1")
            labels, statuses = result.as_numpy("label"), result.as_numpy("status")
            with pytest.raises(httpclient.InferenceServerException, match="invalid API key"):
                client.infer("fortify", [tensor], headers={"X-API-Key": "fk_wrong"})
        finally:
            client.close()
    expected = guard(x[:3])
    assert labels.tolist() == [v.label for v in expected]
    assert [s.decode() if isinstance(s, bytes) else s for s in statuses.tolist()] == [
        v.status.value for v in expected
    ]
    assert result.get_response()["id"] == "triton-1"
