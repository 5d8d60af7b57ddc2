"""One settings object: defaults < YAML < FORTIFY_* environment < flags; one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fortify.runtime import AlertRule
from fortify.service.settings import load_settings
from fortify.types import FortifyError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_example_config_loads(tmp_path):
    block = README.read_text().split("# serve.yaml:", 1)[1].split("```", 1)[0]
    block = block.replace("sha256:…", "sha256:" + "0" * 64, 1).replace("sha256:…", "sha256:" + "1" * 64, 1)
    path = tmp_path / "serve.yaml"
    path.write_text("#" + block)
    settings = load_settings(path)
    assert settings.canary is not None and settings.canary.share == 0.1 and settings.fallback is not None
    assert [AlertRule(**r).action for r in settings.monitor.rules] == ["fallback", "block"]
    assert [k.roles for k in settings.keys] == [["infer"], ["review"]]


def test_environment_overrides_the_file_and_flags_override_both(tmp_path, monkeypatch):
    path = tmp_path / "serve.yaml"
    path.write_text("port: 7000\nbatching: {max_batch: 8, max_wait_ms: 2}\nhost: 0.0.0.0\n")
    monkeypatch.setenv("FORTIFY_PORT", "7100")
    monkeypatch.setenv("FORTIFY_BATCHING__MAX_BATCH", "16")
    settings = load_settings(path, host="127.0.0.1", port=None)
    assert (settings.port, settings.batching.max_batch, settings.batching.max_wait_ms) == (7100, 16, 2.0)
    assert settings.host == "127.0.0.1"
    assert load_settings(path, port=7200).port == 7200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port: [1, 2\n", "not valid YAML at line"),
        ("- a\n- b\n", "must be a mapping"),
        ("prot: 1\n", "prot: Extra inputs are not permitted"),
        ("port: 99999\n", "port: Input should be less than or equal to 65535"),
        (
            "keys: [{id: a, hash: 'sha256:" + "0" * 64 + "'}, {id: a, hash: 'sha256:" + "1" * 64 + "'}]\n",
            "unique",
        ),
        ("keys: [{id: a, hash: plain-secret}]\n", "keys.0.hash"),
        ("!!python/object/apply:os.system ['true']\n", "not valid YAML"),
        ("canary: {guard: b, version: '1'}\n", "must differ"),
        ("port: 1\nport: 2\n", "port"),
        ("port: " + "9" * 5000 + "\n", "config"),
        ("host: [" * 200 + "]" * 200 + "\n", "config"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    with pytest.raises(FortifyError, match=message) as err:
        load_settings(path)
    assert "\n" not in str(err.value)


def test_non_utf8_and_oversized_configs_are_one_line_errors(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_bytes(b"host: \xff\xfe\n")
    with pytest.raises(FortifyError, match="config") as err:
        load_settings(path)
    assert "\n" not in str(err.value)
    path.write_bytes(b"# padding\n" * 200_000)
    with pytest.raises(FortifyError, match="larger than"):
        load_settings(path)


def test_missing_config_and_bad_environment_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(FortifyError, match="cannot read config"):
        load_settings(tmp_path / "absent.yaml")
    monkeypatch.setenv("FORTIFY_KEYS", "[not json")
    with pytest.raises(FortifyError, match="invalid serve settings") as err:
        load_settings()
    assert "\n" not in str(err.value)
