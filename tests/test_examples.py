"""Every file in examples/ runs: the scripts (on small sizes, through their own options), the policies
(through the gate's reader), and the GitHub Actions workflow (its steps, but the pip installs, run as
written in a copy of the repository's layout)."""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import fortify as ft
from tests import readme_blocks as R

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

SCRIPTS = {
    "your_model.py": ["--epochs", "3"],
    "evaluate_your_model.py": ["--n", "40", "--suite", "quick"],
    "harden_your_model.py": ["--n", "30", "--epochs", "1"],
    "guard_your_model.py": ["--n", "20", "--suite", "quick"],
}
"""Each script with the options that make it small; every one also takes ``--out``."""
WRITES = {
    "your_model.py": ["weights.safetensors", "digits.npz"],
    "evaluate_your_model.py": ["eval.json", "report.html"],
    "harden_your_model.py": ["hardened.safetensors", "eval-before.json", "eval-after.json"],
    "guard_your_model.py": ["bundle/manifest.json"],
}
SLOW = {"harden_your_model.py", "guard_your_model.py"}
WORKFLOW_SIZES = {"N": "40"}
"""The workflow's job environment, made small for the test."""


def test_every_file_in_examples_is_run_by_a_test():
    files = {p.name for p in EXAMPLES.iterdir() if p.is_file()}
    covered = (
        set(SCRIPTS) | {p.name for p in EXAMPLES.glob("*.yaml")} | {p.name for p in EXAMPLES.glob("*.yml")}
    )
    assert files == covered, f"not run by tests/test_examples.py: {sorted(files - covered)}"
    assert set(WRITES) == set(SCRIPTS)


@pytest.mark.parametrize(
    "script", [pytest.param(s, marks=[pytest.mark.slow] if s in SLOW else []) for s in SCRIPTS]
)
def test_an_example_script_runs_and_writes_what_it_says(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as `python examples/SCRIPT` puts its folder first
    monkeypatch.setattr(sys, "argv", [script, *SCRIPTS[script], "--out", "out"])
    try:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    finally:
        sys.modules.pop("your_model", None)
    missing = [name for name in WRITES[script] if not (tmp_path / "out" / name).is_file()]
    assert not missing, missing
    for result in (tmp_path / "out").glob("eval*.json"):
        ft.Result.load(str(result))


@pytest.mark.parametrize("policy", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_an_example_policy_is_a_valid_release_policy(policy):
    ft.gate.load_policy(EXAMPLES / policy)


WORKFLOWS = sorted(p.name for p in EXAMPLES.glob("*.yml"))


def _job(workflow: str) -> dict:
    (job,) = yaml.safe_load((EXAMPLES / workflow).read_text(encoding="utf-8"))["jobs"].values()
    return job


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_the_workflow_names_real_commands_options_and_files(workflow):
    from tests.test_readme import _check_command, _command_tree

    group, problems, commands = _command_tree(), [], 0
    for step in _job(workflow)["steps"]:
        for line in step.get("run", "").replace("\\\n", " ").splitlines():
            for command in R._commands_in(line, f"{workflow}: {step.get('name')}"):
                commands += 1
                problems += _check_command(group, command)
        folder = step.get("working-directory")
        assert folder is None or (ROOT / folder).is_dir(), folder
    text = (EXAMPLES / workflow).read_text(encoding="utf-8")
    problems += [
        f"{workflow}: no {p}" for p in re.findall(r"examples/[\w.-]+", text) if not (ROOT / p).is_file()
    ]
    assert commands >= 2 and not problems, problems


@pytest.mark.slow
@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_the_github_actions_workflow_passes_as_written(workflow, tmp_path):
    job = _job(workflow)
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, **{k: str(v) for k, v in job.get("env", {}).items()}, **WORKFLOW_SIZES}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # this venv's python, fortify
    ran = []
    for step in job["steps"]:
        commands = [line for line in step.get("run", "").splitlines() if not line.strip().startswith("pip ")]
        if not any(line.strip() for line in commands):
            continue
        cwd = tmp_path / step.get("working-directory", ".")
        done = subprocess.run(
            ["bash", "-e", "-c", "\n".join(commands)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (
            f"step {step.get('name')!r}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        ran.append(step.get("name"))
    out = tmp_path / env["OUT"]
    assert len(ran) >= 3 and (out / "gate.xml").is_file() and (out / "report.html").is_file()
    assert ft.Result.load(str(out / "eval.json")).n_samples == int(WORKFLOW_SIZES["N"])
