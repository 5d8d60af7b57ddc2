"""Helpers for users' own test suites (pytest or unittest): robustness as an assertion.

>>> def test_model_is_robust(model, x, y):
...     ft.testing.assert_robust(model, x, y, ft.Linf(0.1), min_accuracy=0.4, suite="standard")
"""

from __future__ import annotations

from torch import Tensor

from fortify.evaluation.evaluate import evaluate
from fortify.model import Classifier
from fortify.result import Result
from fortify.threat import Threat
from fortify.types import FortifyError


def assert_robust(
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    *,
    min_accuracy: float,
    suite: str = "quick",
    min_clean_accuracy: float | None = None,
    require_reliable: bool = True,
    seed: int = 0,
) -> Result:
    """Evaluate ``clf`` and raise ``AssertionError`` unless it is robust enough; returns the Result.

    Fails when the per-sample worst-case robust accuracy under ``threat`` with ``suite`` is below
    ``min_accuracy`` (a fraction in [0, 1]), when the clean accuracy is below ``min_clean_accuracy``
    (if given), or, with ``require_reliable``, when a diagnostic of the evaluation failed (then the
    robust accuracy may be an overestimate, e.g. masked gradients). The message gives the numbers,
    the attack that did most damage and the failed diagnostics.
    """
    for name, value in (("min_accuracy", min_accuracy), ("min_clean_accuracy", min_clean_accuracy)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise FortifyError(f"{name} is a fraction in [0, 1], got {value!r}")
    result = evaluate(clf, x, y, threat, suite=suite, seed=seed, progress=False)
    problems = []
    robust = result.robust_accuracy or 0.0
    if robust < min_accuracy:
        problems.append(
            f"robust accuracy {100 * robust:.1f}% < required {100 * min_accuracy:.1f}%{_strongest(result)}"
        )
    clean = result.clean_accuracy or 0.0
    if min_clean_accuracy is not None and clean < min_clean_accuracy:
        problems.append(f"clean accuracy {100 * clean:.1f}% < required {100 * min_clean_accuracy:.1f}%")
    if require_reliable:
        problems += [
            f"unreliable evaluation: {d.name}: {d.evidence}" for d in result.diagnostics if not d.passed
        ]
    if problems:
        header = f"not robust enough under {threat!r} with suite {suite!r} on {result.n_samples} samples"
        raise AssertionError(header + ":\n  " + "\n  ".join(problems))
    return result


def _strongest(result: Result) -> str:
    broken: dict[str, int] = {}
    for sample in result.samples:
        if sample.broken_by is not None:
            broken[sample.broken_by] = broken.get(sample.broken_by, 0) + 1
    if not broken:
        return ""
    name = max(broken, key=lambda k: broken[k])
    return f" ({name} broke {broken[name]} of {result.n_samples} samples first)"
