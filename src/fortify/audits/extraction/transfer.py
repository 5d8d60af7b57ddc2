"""Steal, then evade: adversarial points made on a stolen (or substitute) model, judged on the victim.

``transfer(surrogate, victim, x, y, threat, attack)`` attacks ``surrogate`` (white-box) on the samples
the victim classifies correctly and reports the share of those points that fool the *victim* — one
query per point, beside the surrogate's own success. Compare it with a query-based attack on the victim
at the same query count (the extraction curve says how many queries the surrogate cost).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify.attacks.catalog import lookup
from fortify.model import BlackBox, Classifier
from fortify.threat import Threat
from fortify.types import FortifyError


@torch.no_grad()
def _labels(model: BlackBox | Classifier, x: Tensor) -> Tensor:
    return model.predict(x).cpu()


def transfer(
    surrogate: Classifier,
    victim: BlackBox | Classifier,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    attack: str = "di-mi-fgsm",
    *,
    seed: int = 0,
) -> dict[str, float | int | str]:
    """``{"attack", "n", "surrogate_success", "victim_success"}`` over the victim's clean-correct samples."""
    if not isinstance(surrogate, Classifier):
        raise FortifyError("the surrogate must be a white-box Classifier (e.g. the stolen model)")
    entry = lookup(attack)
    if entry.access != "gradients" or threat.norm not in entry.norms:
        raise FortifyError(f"{attack} is not a gradient attack for {threat.norm}")
    keep = _labels(victim, x) == y.cpu()
    xc, yc = x[keep], y[keep].cpu()
    if xc.shape[0] == 0:
        raise FortifyError("the victim classifies none of the inputs correctly")
    x_adv = entry.build(seed=seed)(surrogate, xc, yc, threat)
    return {
        "attack": attack,
        "n": int(xc.shape[0]),
        "surrogate_success": float((_labels(surrogate, x_adv) != yc).double().mean()),
        "victim_success": float((_labels(victim, x_adv) != yc).double().mean()),
    }
