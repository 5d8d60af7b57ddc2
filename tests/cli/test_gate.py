"""`fortify gate`: exit 0 on pass, 1 on fail with JUnit XML, 2 with one line on bad input."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from fortify.cli.main import main
from tests.report.factories import make_result
from tests.test_gate import GOOD_POLICY, write


@pytest.fixture
def files(tmp_path):
    make_result().save(str(tmp_path / "eval.json"))
    make_result(clean=0.95).save(str(tmp_path / "old.json"))
    write(tmp_path, "pass.yaml", GOOD_POLICY)
    write(tmp_path, "fail.yaml", "min_clean_accuracy: 0.99\nmax_clean_accuracy_drop: 0.01\n")
    return tmp_path


def test_cli_exit_0_on_pass_and_1_on_fail_with_junit(files, capsys):
    assert main(["gate", "--policy", str(files / "pass.yaml"), str(files / "eval.json")]) == 0
    assert "GATE PASSED" in capsys.readouterr().out
    junit = files / "ci" / "gate.xml"
    code = main(
        [
            "gate",
            "--policy",
            str(files / "fail.yaml"),
            "--baseline",
            str(files / "old.json"),
            "--junit",
            str(junit),
            str(files / "eval.json"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "GATE FAILED: 2 of 4 checks failed" in out and "min clean accuracy" in out
    assert ElementTree.parse(junit).getroot().find("testsuite").get("failures") == "2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "missing.yaml", "eval.json"], "cannot read policy file"),
        (["--policy", "bad.yaml", "eval.json"], "surprise: unknown key"),
        (["--policy", "pass.yaml", "nope.json"], "cannot read result file"),
        (["--policy", "pass.yaml", "garbage.json"], "invalid JSON"),
        (["--policy", "pass.yaml", "future.json"], "schema version '2.0' is not supported"),
        (["--policy", "fail.yaml", "eval.json"], "pass --baseline"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(files, capsys, monkeypatch, args, message):
    write(files, "bad.yaml", "surprise: 1\n")
    write(files, "garbage.json", "{{{")
    write(files, "future.json", '{"schema_version": "2.0"}')
    monkeypatch.chdir(files)
    assert main(["gate", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
