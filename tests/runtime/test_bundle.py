"""Guard bundles: what is loaded is exactly what was saved, and anything else is refused in one line."""

from __future__ import annotations

import json

import pytest
import torch

import fortify as ft
from fortify.runtime import Guard
from fortify.runtime.bundle import KEY_ENV, BundleError, verify_bundle


def _same_verdicts(a: Guard, b: Guard, x: torch.Tensor) -> None:
    for va, vb in zip(a(x), b(x), strict=True):
        assert (va.label, va.status, va.reasons) == (vb.label, vb.status, vb.reasons)
        assert va.scores == pytest.approx(vb.scores, rel=1e-5, abs=1e-6)
        assert va.thresholds == vb.thresholds and va.reject_thresholds == vb.reject_thresholds


@pytest.fixture
def bundle(guard, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "bundle"
    guard.save(str(path))
    return path


def test_a_saved_guard_loads_with_identical_verdicts_and_its_calibration_record(guard, bundle, tiny_cnn):
    _, x, _ = tiny_cnn
    loaded = Guard.load(str(bundle))
    _same_verdicts(guard, loaded, x[:64])
    assert loaded.calibration == guard.calibration
    manifest = verify_bundle(bundle)
    assert manifest.data_fingerprint == guard.calibration["fingerprint"]
    assert set(manifest.files) >= {"guard.json", "models/model-0.safetensors"}


def test_the_evaluation_result_ships_inside_the_bundle(guard, tmp_path, tiny_cnn, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    _, x, y = tiny_cnn
    result = ft.evaluate(guard, x[:16], y[:16], ft.Linf(0.1), "quick")
    guard.save(str(tmp_path / "b"), result=result)
    loaded = Guard.load(str(tmp_path / "b"))
    assert loaded.result is not None and loaded.result.robust_accuracy == result.robust_accuracy
    assert "guard" in loaded.result.sections


@pytest.mark.parametrize("name", ["models/model-0.safetensors", "guard.json"])
def test_a_changed_byte_anywhere_is_refused(bundle, name):
    path = bundle / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match its SHA-256"):
        Guard.load(str(bundle))


def test_extra_and_missing_files_are_refused(bundle):
    (bundle / "extra.py").write_text("print('hi')")
    with pytest.raises(BundleError, match="not in the manifest"):
        Guard.load(str(bundle))
    (bundle / "extra.py").unlink()
    (bundle / "guard.json").unlink()
    with pytest.raises(BundleError, match="missing"):
        Guard.load(str(bundle))


def test_a_rewritten_manifest_still_cannot_smuggle_bad_config(bundle):
    """An attacker who rewrites guard.json and the manifest's hash gets a schema error, not a crash."""
    import hashlib

    spec = json.loads((bundle / "guard.json").read_text())
    spec["preprocess"] = [{"name": "os.system", "params": {}}]
    (bundle / "guard.json").write_text(json.dumps(spec))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["guard.json"] = hashlib.sha256((bundle / "guard.json").read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"guard.json: preprocess\.0\.name"):
        Guard.load(str(bundle))
    (bundle / "manifest.json").write_text("{" * 100_000)
    with pytest.raises(BundleError, match="not valid JSON"):
        Guard.load(str(bundle))


def test_with_a_key_bundles_are_signed_and_unsigned_or_foreign_ones_refused(guard, tmp_path, monkeypatch):
    unsigned = tmp_path / "unsigned"
    monkeypatch.delenv(KEY_ENV, raising=False)
    guard.save(str(unsigned))
    monkeypatch.setenv(KEY_ENV, "s3cret")
    with pytest.raises(BundleError, match="not signed"):
        Guard.load(str(unsigned))
    signed = tmp_path / "signed"
    guard.save(str(signed))
    assert (signed / "manifest.sig").is_file()
    Guard.load(str(signed))
    monkeypatch.setenv(KEY_ENV, "another key")
    with pytest.raises(BundleError, match="signature does not match"):
        Guard.load(str(signed))


def test_saving_over_an_existing_bundle_replaces_it_whole(guard, bundle):
    (bundle / "stale.txt").write_text("left over")
    guard.save(str(bundle))
    assert not (bundle / "stale.txt").exists()
    Guard.load(str(bundle))
    assert not [p for p in bundle.parent.iterdir() if p.name.startswith(".bundle")]
