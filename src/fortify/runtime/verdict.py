"""What the guard says about one input: its label, how sure the model is, and what to do with it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """``ACCEPTED``: serve the label. ``REVIEW``: hold for a human. ``REJECTED``: refuse the input."""

    ACCEPTED = "ACCEPTED"
    REVIEW = "REVIEW"
    REJECTED = "REJECTED"


UNSCORED = -1
"""The ``label`` of an input that was never scored (non-finite or out of bounds)."""


@dataclass(frozen=True)
class Verdict:
    """The guard's decision on one input.

    ``label`` is the guarded model's prediction (``UNSCORED``, -1, for an input refused before scoring)
    and ``confidence`` its softmax probability; ``status`` what to do with it and ``reasons`` why (empty
    for an ACCEPTED input). ``scores`` holds each detector's score and ``thresholds`` its review
    threshold (``reject_thresholds`` its reject threshold, where the policy has one). ``latency_ms`` is the
    wall time of the ``guard(x)`` call that judged it (the whole batch: what the caller waited).
    ``probabilities`` are the guarded model's class probabilities (empty for an unscored input).
    """

    label: int
    confidence: float
    status: Status
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    reject_thresholds: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    probabilities: list[float] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status is Status.ACCEPTED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``status`` as its string value."""
        out = asdict(self)
        out["status"] = self.status.value
        return out
