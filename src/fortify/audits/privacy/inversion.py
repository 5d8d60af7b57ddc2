"""Model inversion: a representative of each class, reconstructed from the model alone.

Fredrikson, Jha & Ristenpart, "Model Inversion Attacks that Exploit Confidence Information and Basic
Countermeasures", CCS 2015 (Algorithm 1, MI-Face): gradient descent on the input from a blank image
to the cost ``1 - p_c(x)`` of the target class ``c``, keeping the best iterate. We descend on
``-log p_c(x)`` instead (the same minimiser; its gradient does not vanish where ``p_c`` is tiny, as at
the blank start), with Adam steps of ``lr`` times the input range, every iterate projected into the
classifier's bounds, and two optional image priors: ``l2_weight`` (mean squared distance to the
start) and ``tv_weight`` (mean absolute difference of neighbouring pixels, total variation).

What it shows: how much of a class's typical appearance the model gives away through its confidence
scores. The similarity to reference data makes that a number: the cosine between the representative
and each class mean, both taken relative to the mean of all reference images (raw images share a
positive mean, which makes uncentred cosines all close to 1), and the L2 distance to each class mean.
A representative nearest its own class mean means the model leaks what that class looks like.

>>> inv = privacy.model_inversion(clf, reference=(x_train[:2000], y_train[:2000]), steps=300)
>>> inv.images.shape, inv.confidence, inv.identified, inv.cosine  # (K, C, H, W) in clf.bounds
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify import _validate as check
from fortify.attacks.base import check_labels, frozen
from fortify.model import Classifier
from fortify.result.gallery import MAX_VALUES, encode_pixels
from fortify.result.sections import InversionSection, InvertedClass
from fortify.types import FortifyError

STARTS = ("low", "mid")
"""Where the descent starts: every pixel at the lower bound (the paper's blank image), or mid-range."""


@dataclass(frozen=True)
class Inversion:
    """The representatives of ``classes``: ``images`` ``(K, C, H, W)`` inside ``bounds`` and the
    model's ``confidence`` in each one's class. With reference data: ``class_means``
    ``(num_classes, C, H, W)``, ``cosine`` and ``l2`` ``(K, num_classes)`` (see the module docstring)
    over ``n_reference`` images."""

    classes: list[int]
    images: Tensor
    confidence: list[float]
    bounds: tuple[float, float]
    settings: dict[str, Any]
    class_means: Tensor | None = None
    cosine: Tensor | None = None
    l2: Tensor | None = None
    n_reference: int = 0

    @property
    def nearest_class(self) -> list[int] | None:
        """For each representative, the class whose mean it is most similar to (by cosine)."""
        return None if self.cosine is None else self.cosine.argmax(dim=1).tolist()

    @property
    def identified(self) -> float | None:
        """The fraction of representatives nearest their own class mean."""
        nearest = self.nearest_class
        if nearest is None:
            return None
        return sum(n == c for n, c in zip(nearest, self.classes, strict=True)) / len(self.classes)

    def _own_and_other(self) -> tuple[Tensor, Tensor] | None:
        if self.cosine is None:
            return None
        own = torch.zeros_like(self.cosine, dtype=torch.bool)
        own[torch.arange(len(self.classes)), torch.tensor(self.classes)] = True
        return self.cosine[own], self.cosine[~own]

    @property
    def mean_true_cosine(self) -> float | None:
        """Mean cosine of each representative to its own class mean."""
        split = self._own_and_other()
        return None if split is None else float(split[0].mean())

    @property
    def mean_other_cosine(self) -> float | None:
        """Mean cosine of each representative to the means of the other classes."""
        split = self._own_and_other()
        return None if split is None or split[1].numel() == 0 else float(split[1].mean())

    def to_dict(self, class_names: Sequence[str] | None = None) -> InversionSection:
        """The Result section (``fortify.result.sections.InversionSection``); images are kept when they
        are greyscale or RGB images of at most ``MAX_VALUES`` values, as in the gallery."""
        keep_images = self.images.dim() == 4 and self.images.shape[1] in (1, 3)
        keep_images = keep_images and math.prod(self.images.shape[1:]) <= MAX_VALUES
        rows: list[InvertedClass] = []
        nearest = self.nearest_class
        for k, label in enumerate(self.classes):
            row: InvertedClass = {"label": label, "confidence": self.confidence[k]}
            if class_names is not None and 0 <= label < len(class_names):
                row["name"] = str(class_names[label])[:300]
            if keep_images:
                row["image"] = encode_pixels(self.images[k])
                if self.class_means is not None:
                    row["class_mean"] = encode_pixels(self.class_means[label])
            if self.cosine is not None and self.l2 is not None and nearest is not None:
                row["cosine"] = self.cosine[k].tolist()
                row["l2"] = self.l2[k].tolist()
                row["nearest_class"] = nearest[k]
            rows.append(row)
        section = {
            "attack": "model-inversion (Fredrikson et al. 2015)",
            **self.settings,
            "shape": list(self.images.shape[1:]),
            "bounds": self.bounds,
            "n_reference": self.n_reference,
            "identified": self.identified,
            "mean_true_cosine": self.mean_true_cosine,
            "mean_other_cosine": self.mean_other_cosine,
            "classes": rows,
        }
        return cast(InversionSection, section)


def _total_variation(x: Tensor) -> Tensor:
    """Per-sample mean absolute difference between neighbouring pixels, ``(N,)``."""
    if x.dim() < 4:
        return torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
    down = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().flatten(1).mean(1)
    right = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().flatten(1).mean(1)
    return down + right


def _cost(clf: Classifier, x: Tensor, target: Tensor, start: Tensor, l2: float, tv: float) -> Tensor:
    """Per-sample cost ``(K,)``: cross-entropy to the target class plus the priors."""
    cost = F.cross_entropy(clf(x), target, reduction="none")
    if l2:
        cost = cost + l2 * (x - start).pow(2).flatten(1).mean(1)
    if tv:
        cost = cost + tv * _total_variation(x)
    return cost


def _classes(clf: Classifier, classes: Sequence[int] | None) -> list[int]:
    chosen = list(range(clf.num_classes)) if classes is None else list(classes)
    if not chosen:
        raise FortifyError("classes must name at least one class")
    for c in chosen:
        if not check.is_integer(c) or not 0 <= c < clf.num_classes:
            raise FortifyError(f"classes must be integers in [0, {clf.num_classes - 1}], got {c!r}")
    return [int(c) for c in chosen]


def _reference(clf: Classifier, reference: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The reference images ``(N, ...)`` and labels, checked, with every class present."""
    if not isinstance(reference, tuple) or len(reference) != 2:
        raise FortifyError("reference must be a pair (x, y)")
    x, y = check.from_numpy(*reference)
    clf.check_input(x)
    y = check_labels(y, x.shape[0], clf.num_classes)
    missing = sorted(set(range(clf.num_classes)) - set(y.tolist()))
    if missing:
        raise FortifyError(f"reference data has no sample of class {missing[0]} (a class mean needs one)")
    return x, y


def similarity(
    images: Tensor, x_ref: Tensor, y_ref: Tensor, num_classes: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Class means of the reference data ``(num_classes, ...)``, and each image's cosine similarity
    ``(K, num_classes)`` to them (both centred on the mean of all reference images; 0 for an image
    equal to that mean) and L2 distance ``(K, num_classes)`` to them."""
    flat = x_ref.detach().cpu().flatten(1).double()
    labels = y_ref.cpu()
    means = torch.stack([flat[labels == k].mean(0) for k in range(num_classes)])
    centre = flat.mean(0)
    inverted = images.detach().cpu().flatten(1).double()
    a, b = inverted - centre, means - centre
    norms = a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True).T
    cosine = torch.where(norms > 0, (a @ b.T) / norms.clamp_min(1e-300), torch.zeros_like(norms))
    l2 = torch.cdist(inverted, means)
    shape = (num_classes, *x_ref.shape[1:])
    return means.float().reshape(shape), cosine.float(), l2.float()


def model_inversion(
    clf: Classifier,
    classes: Sequence[int] | None = None,
    *,
    shape: Sequence[int] | None = None,
    reference: tuple[Tensor, Tensor] | None = None,
    steps: int = 300,
    lr: float = 0.05,
    l2_weight: float = 0.0,
    tv_weight: float = 0.0,
    start: str = "low",
) -> Inversion:
    """One representative per class of ``classes`` (default: every class) by gradient descent on the
    input (Fredrikson et al. 2015; see the module docstring).

    ``shape`` is one input's shape ``(C, H, W)`` (default: ``reference``'s); ``reference = (x, y)``
    (e.g. the model's training images) gives the class means the representatives are compared with;
    it must hold every class. ``steps`` descent steps of ``lr`` (a fraction of the input range),
    priors ``l2_weight`` and ``tv_weight``, from ``start`` (``"low"``: every pixel at the lower bound,
    the paper's blank image; ``"mid"``). Deterministic (no randomness); the model's weights are not
    touched. Returns an ``Inversion``; ``inv.to_dict()`` is the Result section ``inversion``.
    """
    chosen = _classes(clf, classes)
    check.integer("steps", steps, low=1)
    check.number("lr", lr, low=0, open_low=True, finite=True)
    check.number("l2_weight", l2_weight, low=0, finite=True)
    check.number("tv_weight", tv_weight, low=0, finite=True)
    start = check.choice("start", start, STARTS)
    ref = _reference(clf, reference) if reference is not None else None
    if shape is not None:
        dims = tuple(int(s) for s in shape)
    elif ref is not None:
        dims = tuple(ref[0].shape[1:])
    else:
        raise FortifyError("model_inversion needs the input shape: pass shape=(C, H, W) or reference=(x, y)")
    if ref is not None and dims != tuple(ref[0].shape[1:]):
        raise FortifyError(f"shape {list(dims)} differs from the reference inputs' {list(ref[0].shape[1:])}")
    low, high = clf.bounds
    value = low if start == "low" else (low + high) / 2
    device = clf.device
    dtype = clf.weight_dtype or torch.float32
    origin = torch.full((len(chosen), *dims), value, device=device, dtype=dtype)
    target = torch.tensor(chosen, device=device)
    images = _descend(clf, origin, target, steps, lr * (high - low), l2_weight, tv_weight)
    with torch.no_grad():
        probs = clf.predict_proba(images, check=False)
    confidence = probs[torch.arange(len(chosen)), target].tolist()
    settings = {
        "steps": steps,
        "lr": float(lr),
        "l2_weight": float(l2_weight),
        "tv_weight": float(tv_weight),
        "start": start,
    }
    bounds = (float(low), float(high))
    if ref is None:
        return Inversion(chosen, images.cpu(), confidence, bounds, settings)
    means, cosine, l2 = similarity(images, ref[0], ref[1], clf.num_classes)
    return Inversion(chosen, images.cpu(), confidence, bounds, settings, means, cosine, l2, ref[0].shape[0])


def _descend(
    clf: Classifier, origin: Tensor, target: Tensor, steps: int, step: float, l2: float, tv: float
) -> Tensor:
    """Projected Adam descent on the cost from ``origin``; the lowest-cost iterate of each sample."""
    low, high = clf.bounds
    x = origin.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=step)
    best = origin.clone()
    best_cost = torch.full((origin.shape[0],), math.inf, device=origin.device)
    was_training = clf.module.training
    clf.module.eval()
    try:
        with frozen(clf), torch.enable_grad():
            for done in range(steps + 1):  # the last pass only scores the final iterate
                cost = _cost(clf, x, target, origin, l2, tv)
                with torch.no_grad():
                    better = cost < best_cost
                    best[better], best_cost[better] = x[better], cost[better]
                if done == steps:
                    break
                optimizer.zero_grad(set_to_none=True)
                cost.sum().backward()
                optimizer.step()
                with torch.no_grad():
                    x.clamp_(low, high)
    finally:
        clf.module.train(was_training)
    return best.detach()
