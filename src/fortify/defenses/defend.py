"""Compose defenses into one ``Classifier``: preprocessing in front, optionally an ensemble behind.

``defend(clf, preprocess=[JPEG(75), BitDepth(5)], ensemble=[clf_b], ensemble_mode="mean_probs")``
returns a ``DefendedClassifier`` whose ``forward`` is ``model(p_k(...p_1(x)))``, where ``model`` is
``clf`` or ``Ensemble([clf, *ensemble])``. Every attack runs on it unchanged. Its flags reflect its
parts: ``differentiable`` only if every part is, ``randomized`` if any part is, so adaptive evaluation
knows to use BPDA (``forward_bpda``: non-differentiable parts replaced by their straight-through
approximation) and EOT (average gradients over several calls).

``defend(clf, ..., detector=det)`` adds a runtime detector (``fortify.detect``; any ``nn.Module`` with
the ``fortify.types.DetectorLike`` methods): the logits are unchanged, ``flagged(x)`` says which inputs
it rejects, so the result is ``fortify.types.Detected``, and evaluation counts an attack point as a
break only when it is misclassified and not flagged, with the detector in the attack objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from fortify.defenses.ensemble import Ensemble
from fortify.defenses.preprocess import Preprocessor
from fortify.model import Classifier
from fortify.types import DetectorLike, FortifyError, is_detector


class _Pipeline(nn.Module):
    model: Classifier

    def __init__(self, preprocess: Sequence[Preprocessor], model: Classifier) -> None:
        super().__init__()
        self.preprocess = nn.ModuleList(preprocess)
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        for step in self.preprocess:
            x = step(x)
        return self.model(x)


class DefendedClassifier(Classifier):
    """A classifier behind preprocessing components (see ``defend``); a ``Classifier`` like any other.

    ``preprocess`` (the components, in order) and ``model`` (the classifier or ensemble behind them) are
    exposed for adaptive attacks; ``forward_bpda(x)`` is the forward pass with every non-differentiable
    part replaced by its straight-through (identity-gradient) approximation. ``detector`` (or None) sees
    the raw inputs; it does not change the logits.
    """

    def __init__(
        self, model: Classifier, preprocess: Sequence[Preprocessor], detector: DetectorLike | None = None
    ) -> None:
        for step in preprocess:
            if not isinstance(step, Preprocessor):
                raise TypeError(
                    f"preprocess components must be fortify.defenses Preprocessors, got {type(step).__name__}"
                )
            step.bounds = model.bounds
        super().__init__(
            _Pipeline(list(preprocess), model),
            num_classes=model.num_classes,
            bounds=model.bounds,
            batch_size=model.batch_size,
        )
        self.differentiable = model.differentiable and all(step.differentiable for step in preprocess)
        self.randomized = model.randomized or any(step.randomized for step in preprocess)
        self.identity = dict(model.identity)  # the same weights, behind the components described beside
        if detector is not None and not is_detector(detector):
            raise TypeError(f"detector must be a fortify.detect Detector, got {type(detector).__name__}")
        if isinstance(detector, nn.Module):
            detector.eval()
        self.detector: DetectorLike | None = detector

    @property
    def preprocess(self) -> list[Preprocessor]:
        return [cast(Preprocessor, step) for step in cast(_Pipeline, self.module).preprocess]

    @property
    def model(self) -> Classifier:
        return cast(_Pipeline, self.module).model

    @torch.no_grad()
    def flagged(self, x: Tensor) -> Tensor:
        """Boolean ``(N,)`` on the model's device: which inputs the (calibrated) detector flags."""
        if self.detector is None:
            raise FortifyError("this defended classifier has no detector (defend(..., detector=det))")
        threshold = self.detector.threshold
        device = self.device
        return torch.cat([self.detector.score(c.to(device)) > threshold for c in x.split(self.batch_size)])

    def forward_bpda(self, x: Tensor) -> Tensor:
        """Logits with BPDA: each non-differentiable part contributes its value but the identity's
        (or, for a vote ensemble, its surrogate's) gradient."""
        for step in self.preprocess:
            x = step(x) if step.differentiable else step.straight_through(x)
        model = self.model
        if isinstance(model, DefendedClassifier):
            return model.forward_bpda(x)
        surrogate = getattr(model, "straight_through", None)
        if not model.differentiable and callable(surrogate):
            return surrogate(x)
        return model(x)

    def describe(self) -> dict[str, object]:
        info = super().describe()
        info.update(preprocess=[step.describe() for step in self.preprocess], model=self.model.describe())
        if self.detector is not None:
            info["detector"] = self.detector.describe()
        return info


def defend(
    clf: Classifier,
    preprocess: Sequence[Preprocessor] = (),
    ensemble: Sequence[Classifier] = (),
    *,
    ensemble_mode: str = "mean_logits",
    detector: DetectorLike | None = None,
) -> Classifier:
    """``clf`` behind ``preprocess`` components and averaged with ``ensemble`` members, as one Classifier.

    ``detector`` (a ``fortify.detect.Detector`` or any ``DetectorLike``, calibrated before evaluation) flags
    suspicious inputs:
    ``defended.flagged(x)``. With none of the three, returns ``clf`` itself. Bounds and class count come
    from ``clf``.
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"defend takes a fortify Classifier, got {type(clf).__name__}")
    model: Classifier = Ensemble([clf, *ensemble], mode=ensemble_mode) if ensemble else clf
    if not preprocess and detector is None:
        return model
    if isinstance(preprocess, Preprocessor):
        raise FortifyError("preprocess must be a list of components, e.g. preprocess=[ft.defenses.JPEG(75)]")
    return DefendedClassifier(model, preprocess, detector)
