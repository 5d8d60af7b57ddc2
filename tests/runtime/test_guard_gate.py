"""The release gate on guard Results: review rate, accuracy ratio, the guard's own added latency."""

from __future__ import annotations

from fortify.gate import Policy, check
from tests.report.factories import make_result


def guarded(review: float, added_ms: float, **fields):
    result = make_result(**fields)
    result.sections["guard"] = {
        "clean_review_rate": review,
        "latency_ms": {"added_single_p50": added_ms, "single_p50": added_ms + 1.0},
    }
    return result


def verdicts(policy: Policy, results, baseline=None) -> dict[str, bool]:
    return {c.name: c.passed for c in check(policy, results, baseline).checks}


def test_review_rate_and_guard_latency_need_no_baseline():
    policy = Policy(max_review_rate=0.10, max_added_latency_ms=5.0, require_reliable=False)
    assert verdicts(policy, [guarded(0.08, 2.0)]) == {
        "max clean review rate through the guard": True,
        "max added latency of the guard": True,
        "evidence from a full attack suite": True,
    }
    assert not all(verdicts(policy, [guarded(0.08, 2.0), guarded(0.12, 7.0)]).values())


def test_a_review_rate_not_measured_fails():
    outcome = check(Policy(max_review_rate=0.5, require_reliable=False), [make_result()])
    assert not outcome.passed and outcome.checks[0].measured == "not measured"


def test_clean_accuracy_ratio_against_the_baseline():
    policy = Policy(min_clean_accuracy_ratio=0.95, require_reliable=False)
    base = make_result(clean=1.0)
    assert check(policy, [make_result(clean=0.95)], base).passed
    assert not check(policy, [make_result(clean=0.9)], base).passed
