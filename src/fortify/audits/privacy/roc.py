"""ROC summaries of a membership attack: AUC and the true-positive rate at low false-positive rates.

Carlini et al. (S&P 2022) argue that AUC alone misleads: an attack can have a fair AUC and still identify
almost no member confidently. The numbers that matter are the TPR at 0.1% and 1% FPR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

LOW_FPRS = (0.001, 0.01)
ROC_POINTS = 200


@dataclass(frozen=True)
class MembershipScore:
    """``auc``, ``tpr_at_fpr`` (at 0.1% and 1%), a downsampled ``roc`` ``(fpr, tpr)``, the counts."""

    attack: str
    auc: float
    tpr_at_fpr: dict[float, float]
    roc: tuple[list[float], list[float]]
    n_members: int
    n_non_members: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "auc": self.auc,
            "tpr_at_fpr": {str(k): v for k, v in self.tpr_at_fpr.items()},
            "roc": {"fpr": self.roc[0], "tpr": self.roc[1]},
            "n_members": self.n_members,
            "n_non_members": self.n_non_members,
            **self.details,
        }


def summarise(
    attack: str, member_scores: np.ndarray, non_member_scores: np.ndarray, **details: Any
) -> MembershipScore:
    """The ROC summary of scores where higher means "member"."""
    labels = np.concatenate([np.ones(len(member_scores)), np.zeros(len(non_member_scores))])
    scores = np.concatenate([member_scores, non_member_scores]).astype(np.float64)
    scores = np.nan_to_num(scores, nan=-np.inf)
    fpr, tpr, _ = roc_curve(labels, scores)
    at = {f: float(tpr[fpr <= f].max()) if bool((fpr <= f).any()) else 0.0 for f in LOW_FPRS}
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(ROC_POINTS, len(fpr))).astype(int))
    return MembershipScore(
        attack,
        float(roc_auc_score(labels, scores)),
        at,
        (fpr[keep].tolist(), tpr[keep].tolist()),
        len(member_scores),
        len(non_member_scores),
        details,
    )
