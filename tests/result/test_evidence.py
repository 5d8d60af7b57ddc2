"""A Result is evidence: impossible numbers are refused on read (naming the field), and the gate is a
total, order-independent function of valid Results that never passes on NaN, infinity or > 100%."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fortify as ft
from fortify.gate import Policy, check
from fortify.result.evidence import BadEvidenceError, check_evidence, problems
from tests.report.factories import make_result


def document(**changes: object) -> dict:
    data = json.loads(make_result(full=True).to_json())
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return data


def test_a_full_result_from_the_factories_is_valid_evidence():
    result = make_result(full=True)
    assert problems(result) == []
    assert ft.Result.from_json(result.to_json()) == result


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"clean_accuracy": 7.5}, "clean_accuracy"),
        ({"clean_accuracy": -0.1}, "clean_accuracy"),
        ({"robust_accuracy": 1.5}, "robust_accuracy"),
        ({"robust_accuracy": 0.95, "clean_accuracy": 0.9}, "robust_accuracy"),
        ({"attack_success_rate": 2.0}, "attack_success_rate"),
        ({"n_samples": -1}, "n_samples"),
        ({"per_attack__0__n_attacked": 10_000}, "per_attack[0].n_attacked"),
        ({"per_attack__1__n_succeeded": 19}, "per_attack[1].n_succeeded"),
        ({"per_attack__0__accuracy": 1.01}, "per_attack[0].accuracy"),
        ({"per_attack__0__time_s": -3}, "per_attack[0].time_s"),
        ({"samples__0__clean_correct": False, "samples__0__robust": True}, "samples[0].robust"),
        ({"samples__3__clean_confidence": 3.0}, "samples[3].clean_confidence"),
        ({"n_samples": 5}, "n_attacked"),
        ({"sweep__robust_accuracy": [0.5]}, "sweep.robust_accuracy"),
        ({"sweep__epsilons__1": -0.01}, "sweep.epsilons[1]"),
        ({"slices__0__clean_accuracy": 1.2}, "slices[0].clean_accuracy"),
        ({"calibration__ece_clean": 1.5}, "calibration.ece_clean"),
        ({"sections__certification__samples__1__radius": -0.5}, "certification.samples[1].radius"),
        ({"sections__certification__sigma": -1}, "certification.sigma"),
        ({"threat__eps": -0.1}, "threat.eps"),
        ({"timing__clean_s": -1.0}, "timing.clean_s"),
    ],
)
def test_impossible_evidence_is_refused_on_read_naming_the_field(changes, field):
    text = json.dumps(document(**changes))
    with pytest.raises(BadEvidenceError, match="impossible evidence: ") as info:
        ft.Result.from_json(text)
    assert field in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_never_reach_a_reader(literal):
    text = json.dumps(document()).replace('"clean_accuracy": 0.9', f'"clean_accuracy": {literal}')
    assert literal in text
    with pytest.raises(ft.FortifyError, match="not a finite number"):
        ft.Result.from_json(text)


def test_the_gate_refuses_impossible_results_built_in_python():
    bad = make_result(clean_accuracy=float("nan"))
    with pytest.raises(BadEvidenceError, match="result 2: impossible evidence: clean_accuracy"):
        check(Policy(min_clean_accuracy=0.5), [make_result(), bad])
    with pytest.raises(BadEvidenceError, match="baseline"):
        check(Policy(max_clean_accuracy_drop=0.1), [make_result()], make_result(clean_accuracy=7.5))


@settings(max_examples=20)
@given(st.sampled_from([float("nan"), float("inf"), 7.5, -0.5]), st.integers(0, 3))
def test_nan_or_impossible_accuracy_can_never_pass_the_gate_in_any_position(value, position):
    results = [make_result(clean=0.9, robust=0.5) for _ in range(3)]
    results.insert(position, make_result(clean_accuracy=value))
    with pytest.raises(BadEvidenceError):
        check(Policy(min_clean_accuracy=0.0), results)


def _valid_result(clean_n: int, robust_n: int, eps: float, review: float | None, reliable: bool):
    n = 20
    robust_n = min(robust_n, clean_n)
    extra = {} if review is None else {"sections": {"guard": {"clean_review_rate": review}}}
    return make_result(clean=clean_n / n, robust=robust_n / n, eps=eps, reliable=reliable, n=n, **extra)


results_strategy = st.lists(
    st.builds(
        _valid_result,
        st.integers(0, 20),
        st.integers(0, 20),
        st.sampled_from([0.05, 0.1, 0.3]),
        st.one_of(st.none(), st.floats(0, 1)),
        st.booleans(),
    ),
    min_size=1,
    max_size=4,
)
policy_strategy = st.builds(
    Policy,
    min_clean_accuracy=st.one_of(st.none(), st.floats(0, 1)),
    max_attack_success_rate=st.one_of(st.none(), st.floats(0, 1)),
    min_robust_accuracy=st.dictionaries(st.sampled_from([0.05, 0.1, 0.3]), st.floats(0, 1), max_size=2),
    max_review_rate=st.one_of(st.none(), st.floats(0, 1)),
    require_reliable=st.booleans(),
)


@settings(max_examples=60)
@given(results_strategy, policy_strategy, st.randoms(use_true_random=False))
def test_the_gate_is_total_and_independent_of_the_order_of_its_results(results, policy, rng):
    outcome = check(policy, results)
    shuffled = list(results)
    rng.shuffle(shuffled)
    again = check(policy, shuffled)
    assert [(c.name, c.passed, c.measured) for c in again.checks] == [
        (c.name, c.passed, c.measured) for c in outcome.checks
    ]
    assert again.passed == outcome.passed
    if policy.min_clean_accuracy is not None:
        lowest = min(r.clean_accuracy for r in results)
        assert outcome.checks[0].passed == (lowest >= policy.min_clean_accuracy - 1e-12)
    for item in outcome.checks:
        assert "nan" not in item.measured.lower() and "inf" not in item.measured.lower()


def test_check_evidence_returns_the_result_itself():
    result = make_result()
    assert check_evidence(result) is result
    assert math.isclose(result.clean_accuracy or 0, 0.9)


@pytest.mark.parametrize("version", ["1.3.0", " 1.3", "-1.3", "1.-1", "", "1.3\n", 1.3, None, ["1", "3"]])
def test_malformed_schema_versions_are_refused_in_one_line(version):
    data = document(schema_version=version)
    with pytest.raises(ft.FortifyError, match="schema version") as info:
        ft.Result.from_json(json.dumps(data))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested"),
        ('{"schema_version": "1.3", "n_samples": ' + "9" * 5000 + "}", "integer of 5000 digits"),
        ('{"schema_version": "1.3", "schema_version": "1.3"}', "repeats the key 'schema_version'"),
        (b"\x00\xff\xfe binary", "not UTF-8"),
    ],
)
def test_hostile_documents_are_refused_before_the_schema(text, message):
    with pytest.raises(ft.FortifyError, match=message):
        ft.Result.from_json(text)
