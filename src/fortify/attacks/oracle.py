"""What a score- or decision-based attack sees of a model: outputs only, each query counted per sample.

An ``Oracle`` wraps a white-box ``Classifier`` or a ``BlackBox`` for attacks that declare
``requires = "scores"`` or ``"labels"``. The attack says, for every row it sends, which of its samples
the row belongs to (``rows``); the oracle adds one query to that sample. The attack base reads the
counts back into ``AttackOutput.queries``, so no attack keeps its own books.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify.model import BlackBox, Classifier
from fortify.types import Bounds


def margin(scores: Tensor, y: Tensor, targeted: bool) -> Tensor:
    """Per-sample margin the attacker maximises: ``max_{j != y} s_j - s_y`` (untargeted), or
    ``s_t - max_{j != t} s_j`` for target ``t``; positive exactly when the attack has succeeded.
    ``scores`` ``(N, C)`` (infinite entries are clamped), ``y`` ``(N,)`` -> ``(N,)``."""
    scores = torch.nan_to_num(scores.float(), nan=0.0, posinf=1e30, neginf=-1e30)
    own = scores.gather(1, y[:, None])[:, 0]
    others = scores.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return own - others if targeted else others - own


class Oracle:
    """Scores or labels of ``model`` for a batch of ``n`` samples, counting queries per sample.

    ``output`` is what the attack may use: ``"scores"`` (then ``labels`` is their argmax) or
    ``"labels"``. ``classifier`` is the white-box model when there is one (attacks may use its gradients
    when it is given), else ``None``.
    """

    def __init__(self, model: Classifier | BlackBox, n: int, device: torch.device) -> None:
        self.model = model
        self.classifier = model if isinstance(model, Classifier) else None
        self.output = "scores" if self.classifier is not None else model.output
        self.num_classes: int = model.num_classes
        self.bounds: Bounds = model.bounds
        self.device = device
        self.counts = torch.zeros(n, dtype=torch.long, device=device)

    def _count(self, x: Tensor, rows: Tensor | None) -> None:
        if rows is None:
            if x.shape[0] != self.counts.shape[0]:
                raise ValueError(
                    f"{x.shape[0]} rows queried without rows= for {self.counts.shape[0]} samples"
                )
            self.counts += 1
        else:
            self.counts.index_add_(0, rows.to(self.device), torch.ones_like(rows, device=self.device))

    @torch.no_grad()
    def raw(self, x: Tensor, rows: Tensor | None = None) -> Tensor:
        """The model's output for ``x``: logits / scores ``(n, C)`` or labels ``(n,)``.

        ``rows`` ``(n,)`` says which sample each row of ``x`` belongs to; ``None`` means row ``i`` is
        sample ``i`` (all samples, in order).
        """
        self._count(x, rows)
        if self.classifier is not None:
            return self.classifier.logits(x, check=False)
        return self.model(x, check=False).to(x.device)

    def differentiable(self, x: Tensor, rows: Tensor | None = None) -> Tensor:
        """Differentiable logits ``(n, C)`` of the white-box classifier (counted like any query)."""
        if self.classifier is None:
            raise TypeError("a black box has no gradients")
        self._count(x, rows)
        return self.classifier(x)

    def scores(self, x: Tensor, rows: Tensor | None = None) -> Tensor:
        """Scores ``(n, C)``: the classifier's logits or the black box's scores."""
        if self.output != "scores":
            raise TypeError("this model returns labels only")
        return self.raw(x, rows)

    def labels(self, x: Tensor, rows: Tensor | None = None) -> Tensor:
        """Predicted labels ``(n,)`` int64."""
        out = self.raw(x, rows)
        return out.argmax(dim=1) if out.dim() == 2 else out
