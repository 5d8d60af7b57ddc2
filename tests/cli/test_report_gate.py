"""`fortify gate --out` writes the verdict; `fortify report ... --gate` shows it beside the numbers of
exactly the files it gated, and refuses a verdict about other files or a malformed one (exit 2)."""

from __future__ import annotations

import json
import re

import pytest

from fortify.cli.main import main
from fortify.result.gate_record import GateRecord
from tests.report.factories import make_result


@pytest.fixture
def gated(tmp_path):
    """Two Results, a failing gate run over them, and its verdict file."""
    paths = []
    for eps, robust in ((0.05, 0.7), (0.1, 0.4)):
        path = tmp_path / f"eval-{eps}.json"
        make_result(eps=eps, robust=robust).save(str(path))
        paths.append(str(path))
    policy = tmp_path / "policy.yaml"
    policy.write_text("min_clean_accuracy: 0.8\nmin_robust_accuracy: {0.1: 0.5}\n")
    verdict = tmp_path / "gate.json"
    assert main(["gate", "--policy", str(policy), *paths, "--out", str(verdict)]) == 1
    return paths, verdict


def test_the_gate_writes_its_verdict_with_the_files_it_read(gated):
    paths, verdict = gated
    record = GateRecord.load(verdict)
    assert not record.passed and record.policy == "policy.yaml"
    assert [f.path for f in record.results] == paths
    failed = [c.name for c in record.failures]
    assert failed == ["min robust accuracy at eps 0.1"] and any(c.passed for c in record.checks)


def test_the_report_shows_the_verdict_of_the_files_it_reports(gated, tmp_path, capsys):
    paths, verdict = gated
    out = tmp_path / "report.html"
    assert main(["report", *reversed(paths), "--gate", str(verdict), "-o", str(out)]) == 0  # any order
    page = out.read_text(encoding="utf-8")
    record = GateRecord.load(verdict)
    shown = re.search(r'<div id="gate">.*?<div class="verdict bad">(.*?)</div>', page, re.S)
    assert shown is not None
    assert shown.group(1) == f"GATE FAILED: 1 of {len(record.checks)} checks of policy.yaml failed"
    assert all(c.name in page for c in record.checks)


def test_a_verdict_on_other_files_is_refused(gated, tmp_path, capsys):
    paths, verdict = gated
    out = tmp_path / "report.html"
    assert main(["report", paths[0], "--gate", str(verdict), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is the verdict on other Result files" in err and "\n" not in err and not out.exists()
    make_result(eps=0.1, robust=0.45).save(paths[1])  # same name, other evidence
    assert main(["report", *paths, "--gate", str(verdict), "-o", str(out)]) == 2
    assert not out.exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: {**d, "passed": True}, "passed is True but the checks say False"),
        (lambda d: {**d, "format": "junit"}, "not a fortify gate record"),
        (lambda d: {**d, "version": "9.9"}, "version '9.9' is not supported"),
        (lambda d: {**d, "checks": [{**d["checks"][0], "extra": 1}]}, "checks.0.extra"),
        (lambda d: {**d, "results": [{"path": "x", "sha256": "nope"}]}, "results.0.sha256"),
        (lambda d: [d], "not a fortify gate record"),
    ],
)
def test_a_malformed_verdict_is_one_line_and_exit_2(gated, tmp_path, capsys, edit, message):
    paths, verdict = gated
    verdict.write_text(json.dumps(edit(json.loads(verdict.read_text()))))
    out = tmp_path / "report.html"
    assert main(["report", *paths, "--gate", str(verdict), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err and not out.exists()
