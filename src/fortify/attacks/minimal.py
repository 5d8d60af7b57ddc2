"""Minimum-norm attacks: "how far is the nearest adversarial example?"

A minimum-norm attack searches, for each sample, the smallest perturbation (in a norm) that changes the
prediction, with no radius given in advance. Such an attack is an ordinary ``Attack`` too: called with a
threat of radius ``eps`` it returns its point projected into that ball (a point found inside the ball
is returned as is, so it stays adversarial). ``min_norm`` (or ``minimal_distances``) gives
the unbounded answer: per-sample distances that one run turns into a whole accuracy-vs-epsilon curve
(a sample counts as robust at ``eps`` exactly when its distance exceeds ``eps``).

The norm enters only through the threat's hooks: ``norm_of``, ``dual_norm`` and ``project_radius``
(``fortify.threat``). ``_search`` receives a threat of the requested norm (its radius is unused).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar, final

import torch
from torch import Tensor

from fortify.attacks.base import Attack, check_labels, frozen, is_success
from fortify.model import Classifier
from fortify.threat import Threat, make_threat
from fortify.types import FortifyError


def norm_threat(norm: str | Threat) -> Threat:
    """A threat of ``norm`` (a norm name such as ``"l2"``, or a threat itself): what ``_search`` receives."""
    if isinstance(norm, Threat):
        return norm
    if not isinstance(norm, str):
        raise TypeError(f"norm must be a norm name such as 'l2' or a Threat, got {type(norm).__name__}")
    return make_threat(norm, 1.0)


@dataclass
class MinNormOutput:
    """Per-sample result of a minimum-norm search.

    ``x_adv`` ``(N, ...)``: the smallest adversarial example found (``x`` itself where none was found or
    where ``x`` was adversarial already). ``distances`` ``(N,)``: the norm of ``x_adv - x``; 0 for samples
    adversarial on entry, ``inf`` where the attack found nothing. ``success`` ``(N,)``: whether ``x_adv``
    is adversarial (checked by re-running the model, not taken from the algorithm's word).
    """

    x_adv: Tensor
    distances: Tensor
    success: Tensor


class MinNormAttack(Attack):
    """Base of attacks that minimise the perturbation norm instead of working inside a fixed ball.

    Subclasses implement ``_search(clf, x, y, threat, generator) -> x_adv`` (the smallest adversarial
    point they found per sample under ``threat``'s norm; anything for samples they could not break) and
    list their ``norms``.
    """

    norms: ClassVar[tuple[str, ...]] = ("linf", "l2")

    def _check_norm(self, threat: Threat) -> Threat:
        if threat.norm not in self.norms:
            raise FortifyError(
                f"{type(self).__name__} supports the norms {list(self.norms)}, got {threat.norm!r}"
            )
        return threat

    def _run(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor:
        return self._search(clf, x, y, self._check_norm(threat), generator)

    @final
    def min_norm(self, clf: Classifier, x: Tensor, y: Tensor, norm: str | Threat = "l2") -> MinNormOutput:
        """Smallest adversarial examples and their per-sample distances, unbounded by any eps.

        ``x`` ``(N, ...)`` in ``clf.bounds``; ``y`` ``(N,)`` labels (targets when ``targeted``); ``norm``
        a name (``"l2"``, ``"linf"``) or a threat (only its norm is used). Returns ``MinNormOutput`` on
        the device and in the dtype of ``x``.
        """
        if not isinstance(clf, Classifier):
            raise TypeError(f"attacks take a fortify Classifier, got {type(clf).__name__}")
        threat = self._check_norm(norm_threat(norm))
        clf.check_input(x)
        y = check_labels(y, x.shape[0], clf.num_classes)
        xd, yd = x.detach().to(clf.device), y.to(clf.device)
        with frozen(clf):
            with torch.no_grad():
                success = is_success(clf(xd), yd, self.targeted)
            x_adv = xd.clone()
            active = (~success).nonzero().squeeze(1)
            if active.numel():
                generator = torch.Generator(device=xd.device).manual_seed(self.seed)
                with torch.enable_grad():
                    found = self._search(clf, xd[active], yd[active], threat, generator).detach()
                low, high = clf.bounds
                found = torch.nan_to_num(found.to(xd.dtype)).clamp(low, high)
                with torch.no_grad():
                    ok = is_success(clf(found), yd[active], self.targeted)
                x_adv[active[ok]] = found[ok]
                success[active[ok]] = True
            distances = threat.norm_of(x_adv - xd)
            distances = torch.where(success, distances, torch.full_like(distances, torch.inf))
        dev, dtype = x.device, x.dtype
        return MinNormOutput(x_adv.to(dev, dtype), distances.to(dev), success.to(dev))

    @abstractmethod
    def _search(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor:
        """Per sample, the smallest adversarial point found under ``threat``'s norm (its radius unused);
        ``x`` is detached, on the model's device."""


def minimal_distances(
    attack: MinNormAttack, clf: Classifier, x: Tensor, y: Tensor, norm: str | Threat = "l2"
) -> Tensor:
    """Per-sample distance ``(N,)`` to the nearest adversarial example ``attack`` finds.

    0 where ``x`` is misclassified already, ``inf`` where the attack found nothing; an upper bound on the
    true minimal distance. Robust accuracy at radius ``eps`` (for this attack) is ``(d > eps).mean()``.

    >>> d = ft.attacks.minimal_distances(ft.attacks.FMN(), clf, x, y, "l2")
    """
    if not isinstance(attack, MinNormAttack):
        raise TypeError(
            f"minimal_distances needs a minimum-norm attack (CW, DeepFool, FMN), got {type(attack).__name__}"
        )
    return attack.min_norm(clf, x, y, norm).distances
