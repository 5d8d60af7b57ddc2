"""The Result schema: JSON round trip, versions, bad documents."""

from __future__ import annotations

import base64
import json
import zlib

import numpy as np
import pytest
import torch

import fortify as ft
from fortify.result import SCHEMA_VERSION, SchemaVersionError


@pytest.fixture(scope="module")
def result(tiny_cnn):
    clf, x, y = tiny_cnn
    return ft.evaluate(clf, x[:40], y[:40], ft.Linf(0.2), seed=3, dataset="synthetic")


def test_round_trip_is_lossless(result):
    again = ft.Result.from_json(result.to_json())
    assert again == result
    assert again.to_json() == result.to_json()


def test_result_records_seed_versions_suite_and_threat(result):
    data = json.loads(result.to_json())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["seed"] == 3 and data["suite"] == "quick" and data["dataset"] == "synthetic"
    assert data["threat"] == {"norm": "linf", "eps": 0.2}
    assert data["environment"]["torch"] and data["environment"]["fortify"] == ft.__version__
    assert len(data["samples"]) == 40


@pytest.mark.parametrize("version", ["2.0", "0.9", "1.8", "1.99", "one", "1"])
def test_unknown_schema_versions_are_refused_clearly(result, version):
    data = json.loads(result.to_json())
    data["schema_version"] = version
    with pytest.raises(SchemaVersionError, match="schema version"):
        ft.Result.from_json(json.dumps(data))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "invalid JSON"),
        ("[]", "schema_version"),
        ('{"schema_version": "1.0", "n_samples": "x"}', "valid"),
        ('{"schema_version": "1.0", "surprise": 1}', "valid"),
    ],
)
def test_malformed_documents_are_refused(text, match):
    with pytest.raises(ft.FortifyError, match=match):
        ft.Result.from_json(text)


def test_results_of_older_minor_versions_still_load(result):
    old = json.loads(result.to_json())
    old.pop("gallery")
    for version in ("1.0", "1.1"):
        old["schema_version"] = version
        loaded = ft.Result.from_json(json.dumps(old))
        assert loaded.gallery is None and loaded.samples == result.samples


def test_the_gallery_round_trips_with_its_pixels(result):
    assert result.gallery and ft.Result.from_json(result.to_json()).gallery == result.gallery
    clean, adv = result.gallery[0].images()
    assert clean.shape == adv.shape == (1, 8, 8) and not torch.equal(clean, adv)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("clean", "not base64!", "gallery.0.clean: .*not base64"),
        ("adversarial", _b64(zlib.compress(b"\0" * 100)), "gallery.0.adversarial: .*needs 256"),
        ("adversarial", _b64(b"plain bytes"), "gallery.0.adversarial: .*zlib"),
        ("clean", _b64(zlib.compress(b"\0" * 256)[:-4]), "gallery.0.clean: .*complete"),
        ("clean", _b64(zlib.compress(np.full(64, 2.0, "<f4").tobytes())), "gallery.0.clean: .*outside"),
        ("shape", [8, 8], "gallery.0.shape: .*C, H, W"),
        ("shape", [2, 8, 4], "gallery.0.shape: .*C 1 or 3"),
        ("shape", [1, 8, 4], "gallery.0.clean: .*needs 128"),
        ("bounds", [1.0, 0.0], "gallery.0.bounds"),
    ],
)
def test_corrupt_gallery_data_is_refused_naming_the_field(result, field, value, message):
    data = json.loads(result.to_json())
    data["gallery"][0][field] = value
    with pytest.raises(ft.FortifyError, match=f"not a valid fortify result: .*{message}"):
        ft.Result.from_json(json.dumps(data))


def test_save_and_load(tmp_path, result):
    path = tmp_path / "sub" / "eval.json"
    result.save(str(path))
    assert ft.Result.load(str(path)) == result
    with pytest.raises(ft.FortifyError, match="cannot read"):
        ft.Result.load(str(tmp_path / "missing.json"))


def test_attack_lookup(result):
    assert result.attack("pgd").name == "pgd"
    with pytest.raises(KeyError):
        result.attack("nope")
