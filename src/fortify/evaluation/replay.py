"""Adversarial images for the report's gallery, recomputed for the few samples the gallery shows.

Only for results that hold no gallery of their own (images larger than an evaluation keeps, results
older than schema 1.2): the gallery's samples are attacked again with the same suite and seed. Each
shown sample gets the first point (in suite order) that fools the model, or the last attack's point
when none does; other samples keep their clean input. This costs a handful of attacked samples, not a
second evaluation; because batches differ from the original run, a random attack may land on a
different (equally valid) point than the evaluation did, and a random model may judge it differently.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify.evaluation.suites import Evidence, build_suite
from fortify.model import Classifier
from fortify.result import Result
from fortify.result.readers import MAX_GALLERY, pick_samples
from fortify.threat import Threat


def gallery_adversarials(
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    result: Result,
    suite: str,
    *,
    seed: int = 0,
    limit: int = MAX_GALLERY,
) -> Tensor:
    """``x_adv`` shaped like ``x``: adversarial points for the samples the gallery shows, ``x`` elsewhere."""
    x_adv = x.detach().clone()
    shown = torch.tensor(pick_samples(result, x.shape[0], limit), dtype=torch.long)
    if shown.numel() == 0:
        return x_adv
    entries = build_suite(suite, threat, seed, Evidence(num_classes=clf.num_classes))
    pending = shown.clone()
    for entry in entries:
        if pending.numel() == 0:
            break
        found = entry.attack(clf, x[pending], y[pending], threat).detach()
        fooled = clf.predict(found, check=False).cpu() != y[pending].cpu()
        x_adv[pending] = found.to(x_adv.device)
        pending = pending[~fooled]
    return x_adv
