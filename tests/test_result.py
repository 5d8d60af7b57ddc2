"""The Result schema: JSON round trip, versions, bad documents."""

from __future__ import annotations

import json

import pytest

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


@pytest.mark.parametrize("version", ["2.0", "0.9", "1.99", "one", "1"])
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
