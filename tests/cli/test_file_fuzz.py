"""Every file fortify reads is untrusted: hypothesis-generated corruptions of a valid model file, Result
JSON and policy (truncation, bit flips, type swaps, huge values, deep nesting, non-UTF-8 bytes) fed to
every CLI command that reads them.

Whenever the loader refuses the file, the command exits 2 with one line on stderr and no traceback,
writes nothing (no output, no temporary file left behind) and leaves an existing output file intact.
A corruption that still parses as a valid file is skipped (a flipped weight is still a model).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import fortify as ft
from fortify.cli.main import main
from fortify.gate import load_policy
from tests.report.factories import make_result

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
PREVIOUS = b"previous good output\n"
POLICY = b"min_clean_accuracy: 0.5\nnorm: linf\nmin_robust_accuracy: {0.1: 0.2}\nrequire_reliable: true\n"


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("valid")
    torch.manual_seed(0)
    model = folder / "model.safetensors"
    ft.zoo.save(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), model)
    result = folder / "eval.json"
    make_result(full=True).save(str(result))
    policy = folder / "policy.yaml"
    policy.write_bytes(POLICY)
    return {"model": model, "result": result, "policy": policy}


def _truncate(data: bytes, draw: st.DrawFn) -> bytes:
    return data[: draw(st.integers(0, len(data) - 1))]


def _flip(data: bytes, draw: st.DrawFn) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(out) - 1))
        out[i] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


HOSTILE_VALUES: list[Any] = [
    None,
    True,
    "0.9",
    [],
    {},
    [0.5, 0.5],
    -1,
    10**30,
    1e308,
    "x" * 10_000,
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value[:3]):
            found += _paths(child, (*prefix, i))
    return found


DEEP = "__deep__"
"""Placeholder that ``_dumps`` turns into 5,000 nested lists (too deep to build as Python objects)."""


def _dumps(doc: Any) -> str:
    return json.dumps(doc).replace(json.dumps(DEEP), "[" * 5000 + "]" * 5000)


def _swap(doc: Any, draw: st.DrawFn) -> Any:
    """``doc`` with one value anywhere replaced by a hostile one (another type, huge, deep)."""
    paths = _paths(doc)
    path = draw(st.sampled_from(paths))
    value = draw(st.sampled_from([*HOSTILE_VALUES, DEEP]))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _text_corruption(data: bytes, draw: st.DrawFn, parse: Callable[[bytes], Any]) -> bytes:
    kind = draw(st.sampled_from(["truncate", "flip", "swap", "huge-int", "not-utf8", "nan"]))
    if kind == "truncate":
        return _truncate(data, draw)
    if kind == "flip":
        return _flip(data, draw)
    if kind == "huge-int":
        text = data.decode()
        return text.replace("0.5", "1" + "0" * 5000, 1).encode()
    if kind == "not-utf8":
        i = draw(st.integers(0, len(data)))
        return data[:i] + b"\xff\xfe\xc3" + data[i:]
    if kind == "nan":
        return (
            data.decode()
            .replace("0.5", draw(st.sampled_from(["NaN", ".nan", "Infinity", "1e999"])), 1)
            .encode()
        )
    return _dumps(_swap(parse(data), draw)).encode()


@st.composite
def corrupt_result(draw: st.DrawFn, data: bytes) -> bytes:
    return _text_corruption(data, draw, json.loads)


@st.composite
def corrupt_policy(draw: st.DrawFn, data: bytes) -> bytes:
    import yaml

    extra = draw(st.sampled_from(["", "dup", "bool"]))
    if extra == "dup":
        return data + b"min_clean_accuracy: 0.1\n"
    if extra == "bool":
        key = draw(st.sampled_from([b"min_clean_accuracy: 0.5", b"require_reliable: true"]))
        value = draw(st.sampled_from([b"yes", b"1", b'"true"', b"on", b"true"]))
        return data.replace(key, key.split(b":")[0] + b": " + value)
    return _text_corruption(data, draw, yaml.safe_load)


@st.composite
def corrupt_model(draw: st.DrawFn, path: Path) -> bytes:
    data = path.read_bytes()
    kind = draw(st.sampled_from(["truncate", "flip-header", "flip", "metadata"]))
    if kind == "truncate":
        return _truncate(data, draw)
    if kind == "flip-header":
        header = int.from_bytes(data[:8], "little") + 8
        return _flip(data[:header], draw) + data[header:]
    if kind == "flip":
        return _flip(data, draw)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["fortify"])
    swapped = _swap({"m": meta}, draw)["m"]
    out = path.parent / f"swap-{draw(st.integers(0, 10**9))}.safetensors"
    header = swapped if draw(st.booleans()) else json.dumps(swapped)
    save_file(
        load_file(str(path)), str(out), metadata={"fortify": header if isinstance(header, str) else "[]"}
    )
    blob = out.read_bytes()
    out.unlink()
    return blob


def _refused(load: Callable[[Path], Any], path: Path) -> bool:
    """True when the library loader refuses ``path`` with a one-line FortifyError (any other
    exception fails the test: it would be a traceback)."""
    try:
        load(path)
    except ft.FortifyError as exc:
        assert "\n" not in str(exc)
        return True
    return False


def _run_refused(args: list[str], folder: Path, output: Path, capsys) -> None:
    output.write_bytes(PREVIOUS)
    before = sorted(p.name for p in folder.iterdir())
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.count("\n") == 0 and "Traceback" not in err and err.startswith("error:"), err
    assert output.read_bytes() == PREVIOUS, "an existing output was overwritten"
    assert sorted(p.name for p in folder.iterdir()) == before, "a file was written"


MODEL_COMMANDS = {
    "evaluate": lambda m, o: ["evaluate", "--model", m, "--data", "synthetic", "--n", "8", "--out", o],
    "attack": lambda m, o: ["attack", "--model", m, "--data", "synthetic", "--n", "8", "--save", o],
    "sweep": lambda m, o: [
        "sweep",
        "--model",
        m,
        "--data",
        "synthetic",
        "--n",
        "8",
        "--eps",
        "0.1",
        "--out",
        o,
    ],
    "certify": lambda m, o: ["certify", "--model", m, "--data", "synthetic", "--n-samples", "2", "--out", o],
}


@pytest.mark.parametrize("command", sorted(MODEL_COMMANDS))
def test_corrupt_model_files_are_refused_by_every_command(valid, tmp_path_factory, capsys, command):
    @SETTINGS
    @given(st.data())
    def run(data: st.DataObject) -> None:
        folder = tmp_path_factory.mktemp("m")
        bad = folder / "bad.safetensors"
        bad.write_bytes(data.draw(corrupt_model(valid["model"])))
        assume(_refused(ft.zoo.load, bad))
        output = folder / ("out.safetensors" if command == "attack" else "out.json")
        _run_refused(MODEL_COMMANDS[command](str(bad), str(output)), folder, output, capsys)

    run()


RESULT_COMMANDS = {
    "report": lambda r, good, p, o: ["report", r, "--out", o],
    "gate": lambda r, good, p, o: ["gate", good, r, "--policy", p, "--junit", o],
    "gate-baseline": lambda r, good, p, o: ["gate", good, "--baseline", r, "--policy", p, "--junit", o],
}


@pytest.mark.parametrize("command", sorted(RESULT_COMMANDS))
def test_corrupt_results_are_refused_by_every_command(valid, tmp_path_factory, capsys, command):
    text = valid["result"].read_bytes()

    @SETTINGS
    @given(corrupt_result(text))
    def run(blob: bytes) -> None:
        folder = tmp_path_factory.mktemp("r")
        bad = folder / "bad.json"
        bad.write_bytes(blob)
        assume(_refused(lambda p: ft.Result.load(str(p)), bad))
        output = folder / ("out.html" if command == "report" else "out.xml")
        policy = str(valid["policy"])
        args = RESULT_COMMANDS[command](str(bad), str(valid["result"]), policy, str(output))
        _run_refused(args, folder, output, capsys)

    run()


def test_corrupt_policies_are_refused_by_the_gate(valid, tmp_path_factory, capsys):
    @SETTINGS
    @given(corrupt_policy(valid["policy"].read_bytes()))
    def run(blob: bytes) -> None:
        folder = tmp_path_factory.mktemp("p")
        bad = folder / "bad.yaml"
        bad.write_bytes(blob)
        assume(_refused(load_policy, bad))
        output = folder / "out.xml"
        _run_refused(
            ["gate", str(valid["result"]), "--policy", str(bad), "--junit", str(output)],
            folder,
            output,
            capsys,
        )

    run()


def test_an_unwritable_output_is_refused_before_any_work(valid, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(
        [
            "evaluate",
            "--model",
            str(valid["model"]),
            "--data",
            "synthetic",
            "--n",
            "8",
            "--out",
            str(blocker / "r.json"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--out" in err and "\n" not in err


def test_threads_beyond_the_machine_are_refused(valid, capsys):
    code = main(
        ["evaluate", "--model", str(valid["model"]), "--data", "synthetic", "--n", "8", "--threads", "100000"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--threads must be in [1," in err and "\n" not in err


def test_evaluate_refuses_an_eps_beyond_the_input_box_like_attack(valid, capsys):
    for command in (["evaluate"], ["attack"]):
        code = main(
            [*command, "--model", str(valid["model"]), "--data", "synthetic", "--n", "8", "--eps", "8"]
        )
        err = capsys.readouterr().err.strip()
        assert code == 2 and "eps 8 is larger than any linf distance" in err and "\n" not in err
