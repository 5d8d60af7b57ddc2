"""Data provenance: manifests name the data by content, and verify says exactly what changed."""

from __future__ import annotations

import json

import torch

import fortify as ft
from fortify.cli.main import main
from fortify.data.provenance import fingerprint, tensor_fingerprint, verify


def test_a_folder_manifest_names_added_removed_and_changed_files(tmp_path, capsys):
    data = tmp_path / "data"
    for cls in ("cat", "dog"):
        (data / cls).mkdir(parents=True)
        for i in range(3):
            (data / cls / f"{i}.png").write_bytes(bytes([i, len(cls)]) * 10)
    manifest = tmp_path / "manifest.json"
    assert main(["data", "fingerprint", str(data), "--out", str(manifest)]) == 0
    assert json.loads(manifest.read_text())["class_counts"] == {"cat": 3, "dog": 3}
    assert main(["data", "verify", str(manifest)]) == 0
    (data / "cat" / "0.png").write_bytes(b"poisoned")
    (data / "dog" / "2.png").unlink()
    (data / "dog" / "9.png").write_bytes(b"new")
    capsys.readouterr()
    assert main(["data", "verify", str(manifest)]) == 1
    out = capsys.readouterr().out
    assert "changed: cat/0.png" in out and "removed: dog/2.png" in out and "added: dog/9.png" in out


def test_a_dataset_manifest_is_stable_and_a_bad_manifest_is_refused(tmp_path, capsys):
    first, second = fingerprint("synthetic"), fingerprint("synthetic")
    assert first["digest"] == second["digest"] and verify(first) == []
    first["splits"]["train"]["sha256"] = "sha256:0"
    assert verify(first) == ["changed: split train"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    assert main(["data", "verify", str(bad)]) == 2
    assert "not a fortify data manifest" in capsys.readouterr().err


def test_tensor_fingerprints_change_with_one_value():
    x, y = torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1])
    base = tensor_fingerprint(x, y)
    x[0, 0, 0, 0] = 1e-6
    assert tensor_fingerprint(x, y) != base
    assert tensor_fingerprint(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 0])) != base
    assert ft.data.load("synthetic", "train")[0].shape[0] > 0
