"""Red-team a deployed endpoint: a black-box attack through its auth, limits and guard, as a Result.

``evaluate_endpoint(bb, x, y, threat)`` queries the clean inputs, attacks the clean-correct ones with
Square (a score endpoint) or HopSkipJump (labels only) through ``bb`` (``from_url``), then asks the
endpoint for its verdict on every final point. A sample is broken only when the endpoint misclassifies
it *and* ACCEPTS it: a point the guard sends to review or rejects is caught, not broken. The Result's
``endpoint`` section records what the endpoint saw: HTTP requests and codes, retries, verdict counts,
review rates clean and adversarial, and the alerts it fired during the run (read from ``GET /alerts``
when the key has the ``review`` role; otherwise ``None`` with the reason).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from fortify.result import AttackRecord, Environment, Result, SampleRecord, ThreatSpec
from fortify.service.client import EndpointError, RemoteBlackBox
from fortify.threat import Threat
from fortify.types import FortifyError


def evaluate_endpoint(
    bb: RemoteBlackBox,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    *,
    n_queries: int = 500,
    seed: int = 0,
    dataset: str | None = None,
) -> Result:
    """Robust accuracy of the endpoint behind ``bb`` under ``threat`` (see the module docstring)."""
    from fortify.attacks import HopSkipJump, Square

    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise FortifyError(
            f"x and y must be non-empty and of the same length, got {x.shape[0]} and {y.shape[0]}"
        )
    started = time.time()
    t0 = time.perf_counter()
    clean_labels, clean_status = bb.endpoint.judge(x, bb.batch_size)
    correct = clean_labels == y
    attack = (Square if bb.output == "scores" else HopSkipJump)(n_queries=n_queries, seed=seed)
    rows = correct.nonzero().squeeze(1)
    x_adv = x.clone()
    queries = torch.zeros(x.shape[0], dtype=torch.long)
    t_attack = time.perf_counter()
    if rows.numel():
        before = bb.queries
        out = attack.attack(bb, x[rows], y[rows], threat)
        x_adv[rows] = out.x_adv
        if out.queries is not None:
            queries[rows] = out.queries.long()
        elif rows.numel():
            queries[rows] = (bb.queries - before) // rows.numel()
    attack_s = time.perf_counter() - t_attack
    adv_labels, adv_status = bb.endpoint.judge(x_adv, bb.batch_size)
    broken = correct & (adv_labels != y) & torch.tensor([s == "ACCEPTED" for s in adv_status])
    robust = correct & ~broken
    n, n_correct = x.shape[0], int(correct.sum())
    samples = [
        SampleRecord(
            index=i,
            label=int(y[i]),
            clean_pred=int(clean_labels[i]),
            clean_correct=bool(correct[i]),
            robust=bool(robust[i]),
            broken_by=attack.name if bool(broken[i]) else None,
            adv_pred=int(adv_labels[i]),
            perturbation_norm=float(threat.norm_of(x_adv[i : i + 1] - x[i : i + 1])[0]),
            queries=int(queries[i]),
        )
        for i in range(n)
    ]
    record = AttackRecord(
        name=attack.name,
        config={"n_queries": n_queries, "seed": seed, "output": bb.output},
        ran_on="remaining",
        n_attacked=int(rows.numel()),
        n_succeeded=int(broken.sum()),
        accuracy=float(robust.sum()) / n_correct if n_correct else None,
        cumulative_accuracy=float(robust.float().mean()),
        time_s=attack_s,
    )
    section = bb.endpoint.stats()
    section["clean_review_rate"] = _flag_rate(clean_status)
    section["adversarial_review_rate"] = _flag_rate(
        [s for s, c in zip(adv_status, correct.tolist(), strict=True) if c]
    )
    section["alerts"], section["alerts_note"] = _alerts(bb, started)
    return Result(
        model={**bb.describe(), "endpoint": bb.endpoint.infer_url},
        dataset=dataset,
        threat=ThreatSpec(norm=threat.norm, eps=float(threat.eps)),
        suite=f"endpoint-{attack.name}",
        seed=seed,
        n_samples=n,
        clean_accuracy=n_correct / n,
        robust_accuracy=float(robust.float().mean()),
        attack_success_rate=float(broken.sum()) / n_correct if n_correct else 0.0,
        per_attack=[record],
        samples=samples,
        timing={"total_s": time.perf_counter() - t0, "attack_s": attack_s},
        environment=Environment.capture("cpu"),  # this side's attack arithmetic; the model is remote
        sections={"endpoint": section},
    )


def _flag_rate(statuses: list[str]) -> float | None:
    return sum(s != "ACCEPTED" for s in statuses) / len(statuses) if statuses else None


def _alerts(bb: RemoteBlackBox, since: float) -> tuple[list[dict[str, Any]] | None, str | None]:
    try:
        return bb.endpoint.alerts(since), None
    except EndpointError as exc:
        return None, str(exc)
