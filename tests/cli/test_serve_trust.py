"""`fortify serve --trust-code`: a guard bundle whose model is rebuilt from an import path is served only
when the user trusts that code; without the flag the server refuses to start, in one line."""

from __future__ import annotations

import json

import httpx
import pytest
import torch
from safetensors.torch import save_file

from fortify.cli.main import main
from fortify.service.auth import hash_key
from tests.byo_package import models
from tests.service.conftest import KEYS, infer_body
from tests.service.server import serve

CNN = "tests.byo_package.models:tiny_cnn"
KEY_ENV = {
    "FORTIFY_KEYS": json.dumps([{"id": "infer", "hash": hash_key(KEYS["infer"]), "roles": ["infer"]}]),
    "FORTIFY_MONITOR__ENABLED": "false",
}


@pytest.fixture(scope="module")
def factory_bundle(tmp_path_factory):
    """A guard bundle over the user's own model (import path + weights), built by `fortify guard build`."""
    folder = tmp_path_factory.mktemp("serve-trust")
    torch.manual_seed(0)
    weights = folder / "w.safetensors"
    save_file(models.tiny_cnn(width=3).state_dict(), str(weights))
    bundle = folder / "guard"
    own = ["--model", CNN, "--weights", str(weights), "--model-arg", "width=3"]
    args = ["guard", "build", *own, "--calibrate", "synthetic", "--calibration-n", "64", "--threads", "1"]
    assert main([*args, "--out", str(bundle)]) == 0
    return bundle


def test_serve_refuses_a_factory_bundle_without_trust_code(factory_bundle, tmp_path, monkeypatch, capsys):
    for name, value in KEY_ENV.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    before = len(models.CALLS)
    assert main(["serve", "--guard", str(factory_bundle), "--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"importing {CNN}" in err and "--trust-code" in err
    assert len(models.CALLS) == before  # the user's code did not run
    assert not (tmp_path / "events.db").exists()  # nothing started


def test_serve_with_trust_code_loads_the_factory_bundle_and_answers(factory_bundle, tmp_path):
    args = ["--guard", str(factory_bundle), "--run-dir", str(tmp_path), "--trust-code"]
    with serve(args, env=KEY_ENV, log=tmp_path / "log.txt") as (url, _):
        x = torch.rand(2, 1, 8, 8)
        response = httpx.post(
            url + "/v2/models/fortify/infer",
            json=infer_body(x),
            headers={"X-API-Key": KEYS["infer"]},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs and all(o["shape"][0] == 2 for o in outputs.values())
