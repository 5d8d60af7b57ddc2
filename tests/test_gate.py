"""The release gate: policy parsing, each threshold's verdict, JUnit XML, and the CLI's exit codes."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fortify as ft
from fortify.gate import Policy, check, junit_xml, load_policy
from fortify.result import Diagnostic
from tests.report.factories import make_result

GOOD_POLICY = """
min_clean_accuracy: 0.85
max_attack_success_rate: 0.6
norm: linf
min_robust_accuracy: {0.1: 0.35}
require_reliable: true
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_policy_reads_yaml_with_numeric_eps_keys(tmp_path):
    policy = load_policy(write(tmp_path, "p.yaml", GOOD_POLICY))
    assert policy.min_robust_accuracy == {0.1: 0.35} and policy.norm == "linf"
    assert load_policy(write(tmp_path, "empty.yaml", "")) == Policy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("min_clean_acuracy: 0.9", "min_clean_acuracy: unknown key (allowed keys: min_clean_accuracy,"),
        ("min_clean_accuracy: 85", "min_clean_accuracy: Input should be less than or equal to 1"),
        ("min_robust_accuracy: {0.1: 40}", "needs a radius >= 0 and an accuracy in [0, 1]"),
        ("min_robust_accuracy: [0.1, 0.4]", "min_robust_accuracy: Input should be a valid dictionary"),
        ("- 0.9", "must be a mapping of thresholds, got list"),
        ("min_clean_accuracy: [unclosed", "is not valid YAML at line 1"),
    ],
)
def test_bad_policies_are_refused_naming_the_field(tmp_path, text, message):
    with pytest.raises(ft.FortifyError, match="policy") as info:
        load_policy(write(tmp_path, "p.yaml", text))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_good_result_passes_every_check():
    outcome = check(
        Policy(
            **{"min_clean_accuracy": 0.85, "max_attack_success_rate": 0.6, "min_robust_accuracy": {0.1: 0.35}}
        ),
        [make_result()],
    )
    assert outcome.passed and [c.name for c in outcome.checks] == [
        "min clean accuracy",
        "max attack success rate",
        "min robust accuracy at eps 0.1",
        "all diagnostics passed",
        "evidence from a full attack suite",
    ]


@pytest.mark.parametrize(
    ("policy", "failing"),
    [
        ({"min_clean_accuracy": 0.95}, "min clean accuracy"),
        ({"max_attack_success_rate": 0.5}, "max attack success rate"),
        ({"min_robust_accuracy": {0.1: 0.45}}, "min robust accuracy at eps 0.1"),
        ({"min_robust_accuracy": {0.3: 0.0}}, "min robust accuracy at eps 0.3"),  # never measured: fails
        ({"norm": "l2", "min_robust_accuracy": {0.1: 0.0}}, "min robust accuracy at l2 0.1"),
        ({"min_certified_accuracy": {0.25: 0.1}}, "min certified accuracy at L2 0.25"),  # no certification
    ],
)
def test_each_threshold_fails_when_the_result_misses_it(policy, failing):
    outcome = check(Policy(**policy), [make_result()])
    assert [c.name for c in outcome.failures] == [failing]


def test_sweep_points_and_per_sample_certified_radii_are_used():
    result = make_result(full=True)
    policy = Policy(min_robust_accuracy={0.05: 0.7, 0.2: 0.1}, min_certified_accuracy={0.2: 0.45})
    assert check(policy, [result]).passed
    # radius >= 0.3 for i % 6 in {3, 4, 5} (9 samples), minus the wrong ones i = 5, 10, 15: 6 of 20
    outcome = check(Policy(min_certified_accuracy={0.3: 0.5}), [result])
    assert outcome.failures[0].measured == "30.0%"


def test_unreliable_or_undiagnosed_results_fail_with_the_reason():
    outcome = check(Policy(), [make_result(reliable=False)])
    assert not outcome.passed and "gradient masking" in outcome.failures[0].detail
    assert not check(Policy(), [make_result(diagnostics=[])]).passed
    assert check(Policy(require_reliable=False), [make_result(diagnostics=[])]).passed


def test_a_smoke_test_suite_is_not_release_evidence_unless_the_policy_allows_it():
    quick = make_result(suite="quick", smoke_test=True)
    outcome = check(Policy(), [quick, make_result()])
    assert [c.name for c in outcome.failures] == ["evidence from a full attack suite"]
    assert "quick" in outcome.failures[0].measured and "--suite standard" in outcome.failures[0].detail
    assert check(Policy(), [make_result(suite="quick")]).failures  # a 1.4 quick result, no flag
    assert check(Policy(allow_smoke_tests=True), [quick]).passed


def test_a_bf16_evaluation_is_not_release_evidence_unless_the_policy_allows_it():
    fast = make_result().model_copy(update={"precision": "bf16"})
    outcome = check(Policy(), [fast, make_result()])
    assert [c.name for c in outcome.failures] == ["evidence from float32 attacks"]
    assert "bf16" in outcome.failures[0].measured and "--precision fp32" in outcome.failures[0].detail
    assert check(Policy(allow_reduced_precision=True), [fast]).passed
    assert "evidence from float32 attacks" not in [c.name for c in check(Policy(), [make_result()]).checks]


def test_a_model_finding_is_named_but_does_not_make_the_evaluation_unreliable():
    masking = Diagnostic(
        name="gradient_masking",
        passed=False,
        evidence="zero input gradients: attacked with BPDA",
        scope="model",
    )
    result = make_result()
    result = result.model_copy(update={"diagnostics": [*result.diagnostics, masking]})
    assert result.reliable
    reliability = next(c for c in check(Policy(), [result]).checks if c.name == "all diagnostics passed")
    assert reliability.passed and "BPDA" in reliability.detail and reliability.measured == "2/2 passed"
    broken = result.model_copy(update={"diagnostics": [masking.model_copy(update={"scope": "evaluation"})]})
    assert not broken.reliable and not check(Policy(), [broken]).passed


def test_certificates_are_not_asked_for_attack_diagnostics():
    full = make_result(full=True)
    certificate = full.model_copy(update={"kind": "certification", "diagnostics": []})
    outcome = check(Policy(min_certified_accuracy={0.2: 0.45}), [certificate])
    assert outcome.passed and all("diagnostics" not in c.name for c in outcome.checks)
    # ...but an evaluation gated beside it still must carry passing diagnostics
    assert not check(Policy(), [certificate, make_result(diagnostics=[])]).passed


def test_relative_thresholds_compare_with_the_baseline():
    baseline = make_result(clean=0.95, robust=0.45, timing={"clean_s": 0.02})  # 1 ms/sample over 20 samples
    candidate = make_result(clean=0.9, robust=0.4, timing={"clean_s": 0.08})  # 4 ms/sample
    policy = Policy(max_clean_accuracy_drop=0.02, max_robust_accuracy_drop=0.1, max_added_latency_ms=2.0)
    outcome = check(policy, [candidate], baseline)
    assert {c.name for c in outcome.failures} == {
        "max clean accuracy drop vs baseline",
        "max added latency vs baseline",
    }
    assert next(c for c in outcome.checks if c.name.startswith("max added")).measured == "+3.000 ms/sample"
    with pytest.raises(ft.FortifyError, match="pass --baseline"):
        check(policy, [candidate])


@given(robust=st.integers(0, 20), required=st.floats(0.0, 1.0))
def test_the_robust_accuracy_verdict_is_exactly_the_comparison(robust, required):
    result = make_result(robust=robust / 20, clean=1.0)
    outcome = check(Policy(min_robust_accuracy={0.1: required}, require_reliable=False), [result])
    assert outcome.passed == (robust / 20 >= required - 1e-12)


def test_junit_xml_has_one_testcase_per_check_and_failures_with_messages():
    outcome = check(Policy(min_clean_accuracy=0.95, max_attack_success_rate=0.9), [make_result()])
    suite = ElementTree.fromstring(junit_xml(outcome)).find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='min clean accuracy']/failure")
    assert failure is not None and failure.get("message") == "measured 90.0%, required >= 95.0%"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"min_clean_accuracy: 0.5\nmin_clean_accuracy: 0.9\n", "the key 'min_clean_accuracy' is repeated"),
        (b"min_clean_accuracy: true\n", "min_clean_accuracy: must be a number (not a boolean or a string)"),
        (b'min_clean_accuracy: "0.5"\n', "min_clean_accuracy: must be a number"),
        (b"require_reliable: maybe\n", "require_reliable: Input should be a valid boolean"),
        (b"min_clean_accuracy: yes\n", "min_clean_accuracy: must be a number"),
        (b"require_reliable: 1\n", "require_reliable: Input should be a valid boolean"),
        (b"min_clean_accuracy: .nan\n", "not a finite number"),
        (b"min_robust_accuracy: {.inf: 0.5}\n", "not a finite number"),
        (b"min_clean_accuracy: 0.5 \xff\xfe\n", "not UTF-8 text"),
        (b"min_clean_accuracy: 1" + b"0" * 5000 + b"\n", "cannot be read"),
        (b"a: " + b"[" * 200 + b"]" * 200 + b"\n", "nested"),
    ],
)
def test_policies_are_read_strictly(tmp_path, data, message):
    path = tmp_path / "p.yaml"
    path.write_bytes(data)
    with pytest.raises(ft.FortifyError, match="policy ") as info:
        load_policy(path)
    assert message in str(info.value) and "\n" not in str(info.value)
