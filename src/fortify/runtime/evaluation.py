"""The guard's own section of a Result: review rates, accepted accuracy, success naive vs adaptive, latency.

``ft.evaluate(guard, ...)`` is the adaptive number: the suite attacks ``guard.classifier`` with the whole
policy in the objective (BPDA / EOT where its parts need them) and counts a sample broken only by a
point that is misclassified and ACCEPTED. ``evaluate_guard`` adds the *naive* number beside it: points
made against the bare models (no preprocessing, no detectors), then judged by the guard, which is what
a guard that was only tested against yesterday's attacks would report. The gap between the two is
how much the guard's defence depends on the attacker not knowing it is there.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from fortify._validate import from_numpy
from fortify.attacks.catalog import lookup
from fortify.evaluation.evaluate import evaluate
from fortify.result import Result
from fortify.threat import Threat
from fortify.types import FortifyError

NAIVE_ATTACKS = ("fgsm", "pgd", "cw", "square")
LATENCY_REPEATS = 50
_BATCH = 64


def guard_section(
    guard: Any, result: Result, x: Tensor | np.ndarray, y: Tensor | np.ndarray
) -> dict[str, Any]:
    """The ``sections["guard"]`` record of an adaptive evaluation ``result`` of ``guard`` on ``(x, y)``
    (tensors, or NumPy arrays taken as ``ft.evaluate`` takes them: float ``x`` float32, ``y`` int64).

    ``clean_review_rate``: share of clean inputs not ACCEPTED; ``accepted_clean_accuracy``: accuracy
    among the ACCEPTED clean inputs; ``adaptive_success_rate``: share of clean-correct samples that an
    attack with the policy in its objective turned into a misclassified, ACCEPTED point.
    """
    x, y = _tensors(x, y)
    verdicts = guard(x)
    accepted = torch.tensor([v.accepted for v in verdicts])
    labels = torch.tensor([v.label for v in verdicts])
    correct = labels == y.cpu()
    n_accepted = int(accepted.sum())
    return {
        "description": guard.describe(),
        "clean_review_rate": 1.0 - n_accepted / len(verdicts),
        "clean_reject_rate": sum(v.status.value == "REJECTED" for v in verdicts) / len(verdicts),
        "clean_accuracy": float(correct.double().mean()),
        "accepted_clean_accuracy": float(correct[accepted].double().mean()) if n_accepted else None,
        "adaptive_success_rate": result.attack_success_rate,
        "adaptive_flag_rate": (result.detector or {}).get("adversarial_flag_rate"),
        "naive": None,
        "latency_ms": latency(guard, x),
    }


def latency(guard: Any, x: Tensor, *, repeats: int = LATENCY_REPEATS) -> dict[str, float]:
    """In-process wall time in milliseconds of ``guard(x)``: p50 / p99 for one input and for a batch of 64;
    and of the bare first model's ``predict`` on one input, timed interleaved with the guard's, with the
    difference of the p50s as ``added_single_p50``."""
    singles, bare, batches = [], [], []
    model = guard.models[0]
    for i in range(repeats):
        one = x[i % x.shape[0] : i % x.shape[0] + 1]
        t0 = time.perf_counter()
        guard(one)
        singles.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        model.predict(one)
        bare.append((time.perf_counter() - t0) * 1000)
    batch = (
        x[:_BATCH]
        if x.shape[0] >= _BATCH
        else x.repeat((_BATCH + x.shape[0] - 1) // x.shape[0], 1, 1, 1)[:_BATCH]
    )
    for _ in range(max(3, repeats // 10)):
        t0 = time.perf_counter()
        guard(batch)
        batches.append((time.perf_counter() - t0) * 1000)
    return {
        "bare_single_p50": _quantile(bare, 0.5),
        "bare_single_p99": _quantile(bare, 0.99),
        "added_single_p50": _quantile(singles, 0.5) - _quantile(bare, 0.5),
        "single_p50": _quantile(singles, 0.5),
        "single_p99": _quantile(singles, 0.99),
        "batch64_p50": _quantile(batches, 0.5),
        "batch64_p99": _quantile(batches, 0.99),
    }


def naive_points(
    bare: Any, x: Tensor, y: Tensor, threat: Threat, attacks: Sequence[str] = NAIVE_ATTACKS, *, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Adversarial points made against ``bare`` on its clean-correct samples, per attack (skipping those
    that do not support the threat's norm): ``x_adv``, ``y``, ``fooled`` (bool per point), ``time_s``."""
    with torch.no_grad():
        keep = bare.predict(x).cpu() == y.cpu()
    xc, yc = x[keep], y[keep].cpu()
    out: dict[str, dict[str, Any]] = {}
    for name in attacks:
        entry = lookup(name)
        if threat.norm not in entry.norms or xc.shape[0] == 0:
            continue
        t0 = time.perf_counter()
        x_adv = entry.build(seed=seed)(bare, xc, yc, threat)
        with torch.no_grad():
            fooled = bare.predict(x_adv).cpu() != yc
        out[name] = {"x_adv": x_adv, "y": yc, "fooled": fooled, "time_s": time.perf_counter() - t0}
    return out


def judge_points(guard: Any, points: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    """Per attack of ``naive_points``: ``fooled`` (share misclassified by the bare model), ``detected``
    (share of those points the guard does not ACCEPT: its detection rate), ``success`` (share
    misclassified *and* ACCEPTED by the guard: the attack's success through it)."""
    out: dict[str, dict[str, float | int]] = {}
    for name, made in points.items():
        verdicts = guard(made["x_adv"])
        labels = torch.tensor([v.label for v in verdicts])
        accepted = torch.tensor([v.accepted for v in verdicts])
        fooled, n = made["fooled"], made["y"].shape[0]
        out[name] = {
            "n": int(n),
            "fooled": float(fooled.double().mean()),
            "detected": float((~accepted[fooled]).double().mean()) if bool(fooled.any()) else 0.0,
            "success": float(((labels != made["y"]) & accepted).double().mean()),
            "time_s": made["time_s"],
        }
    return out


def bare_model(guard: Any) -> Any:
    """The guard's models without preprocessing or detectors (its ensemble, for several)."""
    if len(guard.models) == 1:
        return guard.models[0]
    return getattr(guard.pipeline, "model", guard.pipeline)


def naive_through_guard(
    guard: Any,
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    threat: Threat,
    attacks: Sequence[str] = NAIVE_ATTACKS,
    *,
    seed: int = 0,
) -> dict[str, dict[str, float | int]]:
    """Points made against the bare models (``naive_points``), judged by the guard (``judge_points``);
    ``x``, ``y`` tensors or NumPy arrays (as ``ft.evaluate`` takes them)."""
    x, y = _tensors(x, y)
    return judge_points(guard, naive_points(bare_model(guard), x, y, threat, attacks, seed=seed))


def evaluate_guard(
    guard: Any,
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    threat: Threat,
    suite: str = "standard",
    *,
    naive_attacks: Sequence[str] = NAIVE_ATTACKS,
    seed: int = 0,
    **evaluate_options: Any,
) -> Result:
    """``ft.evaluate(guard, ...)`` (adaptive) plus the naive attacks of ``naive_through_guard`` in its
    ``sections["guard"]["naive"]``; ``naive_attacks=()`` skips them. ``x``, ``y`` may be NumPy arrays
    (float ``x`` taken as float32, integer ``y`` as int64, as ``ft.evaluate`` takes them)."""
    if not getattr(guard, "calibrated", False):
        raise FortifyError("the guard is not calibrated: call guard.calibrate(x_clean, fpr=0.05) first")
    x, y = _tensors(x, y)
    result = evaluate(guard, x, y, threat, suite, seed=seed, **evaluate_options)
    if naive_attacks:
        result.sections["guard"]["naive"] = naive_through_guard(guard, x, y, threat, naive_attacks, seed=seed)
    return result


def _quantile(values: list[float], q: float) -> float:
    return float(torch.tensor(values, dtype=torch.float64).quantile(q))


def _tensors(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """``(x, y)`` as tensors (``fortify._validate.from_numpy``); anything else is refused by name."""
    x, y = from_numpy(x, y)
    for what, value in (("x", x), ("y", y)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{what} must be a tensor or NumPy array, got {type(value).__name__}")
    return cast("tuple[Tensor, Tensor]", (x, y))
