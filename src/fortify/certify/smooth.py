"""Randomized smoothing: PREDICT and CERTIFY of Cohen, Rosenfeld & Kolter, "Certified Adversarial
Robustness via Randomized Smoothing", ICML 2019 (arXiv:1902.02918), Section 3.2 and Pseudocode.

The smoothed classifier ``g(x) = argmax_c P(f(x + eps) = c)``, ``eps ~ N(0, sigma^2 I)``, is robust in an
L2 ball of radius ``sigma * Phi^-1(pA)`` around ``x`` whenever its top class has probability ``pA > 1/2``
(Theorem 1 with ``pB = 1 - pA``). ``pA`` is unknown, so it is bounded from Monte Carlo samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from fortify._validate import integer, number, positive_int
from fortify.certify.statistics import binomial_pvalue, certified_radius, lower_confidence_bound
from fortify.model import Classifier
from fortify.types import FortifyError

ABSTAIN = -1
"""The label ``predict`` and ``certify`` return when they decline to decide."""

DEFAULT_BATCH_SIZE = 1000
NOISE_CHUNK = 512
"""Noise is drawn in chunks of this many copies, each from its own seeded generator, so the draws do not
depend on ``batch_size``."""

# Independent noise streams, so selection, estimation and prediction never share a draw.
_STREAMS = {"predict": 0, "select": 1, "estimate": 2}


class Certificate(NamedTuple):
    """What ``Smooth.certify`` returns for a batch of ``N`` inputs (tensors on the input's device).

    ``prediction`` ``(N,)`` int64, ``ABSTAIN`` (-1) where nothing is certified; ``radius`` ``(N,)`` float64,
    the certified L2 radius (0.0 where abstained); ``p_lower`` ``(N,)`` float64, the lower confidence
    bound on the top class's probability under noise.
    """

    prediction: Tensor
    radius: Tensor
    p_lower: Tensor


def check_sigma(sigma: float) -> float:
    """``sigma`` as a float if it is a finite number > 0."""
    return number("sigma", sigma, low=0, open_low=True, finite=True)


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float if it lies in (0, 1)."""
    return number("alpha", alpha, low=0, high=1, open_low=True, open_high=True)


class Smooth:
    """The Gaussian-smoothed version of a classifier, with PREDICT and CERTIFY (Cohen et al., 2019).

    ``Smooth(clf, sigma, *, batch_size=1000, seed=0)``: ``clf`` is the base ``Classifier`` (called on
    noisy inputs, which may leave its bounds: the noise is not clipped, as in the paper); ``sigma > 0``
    is the noise level in input units; ``batch_size`` noisy copies go through ``clf`` per forward pass
    (copies of several inputs share a batch when ``n`` is small).

    Both methods take a batch ``x`` ``(N, ...)`` inside ``clf.bounds`` and treat each row separately.
    Noise is drawn on the classifier's device (the input's when the classifier has no parameters) from
    generators keyed by ``(seed, index of the row, purpose, chunk)``: the same seed on the same kind of
    device gives the same draws whatever ``batch_size``, and a row certified inside a shard
    (``indices=`` its position in the whole set) gets the same noise as in a full run (the answers then
    agree up to floating-point differences between batch compositions). Results come back on the
    input's device.

    >>> smooth = ft.certify.Smooth(clf, sigma=0.25)
    >>> labels = smooth.predict(x, n=1000, alpha=0.001)
    >>> prediction, radius, _ = smooth.certify(x, n0=100, n=10_000, alpha=0.001)
    """

    def __init__(
        self, clf: Classifier, sigma: float, *, batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0
    ) -> None:
        if not isinstance(clf, Classifier):
            raise TypeError(f"Smooth takes a fortify Classifier, got {type(clf).__name__}")
        integer("seed", seed, low=0)
        self.clf = clf
        self.sigma = check_sigma(sigma)
        self.batch_size = positive_int("batch_size", batch_size)
        self.seed = seed

    def __repr__(self) -> str:
        return f"Smooth(sigma={self.sigma:g}, batch_size={self.batch_size}, seed={self.seed})"

    def predict(self, x: Tensor, n: int, alpha: float, *, indices: Sequence[int] | None = None) -> Tensor:
        """PREDICT: the smoothed classifier's label for each row of ``x``, or ``ABSTAIN``.

        Draws ``n`` noisy copies per row, takes the two most frequent classes and abstains unless a
        two-sided binomial test rejects "they are equally likely" at level ``alpha``. Guarantee: for each
        row, with probability at least ``1 - alpha`` over the noise, the answer is either ``ABSTAIN`` or
        the smoothed classifier's true prediction ``g(x)``. Returns ``(N,)`` int64.
        """
        n = positive_int("n", n)
        alpha = check_alpha(alpha)
        counts = self.sample_counts(x, n, stream="predict", indices=indices).cpu()
        top = counts.topk(2, dim=1)
        labels = []
        for (count_a, count_b), label in zip(top.values.tolist(), top.indices[:, 0].tolist(), strict=True):
            labels.append(label if binomial_pvalue(count_a, count_b) <= alpha else ABSTAIN)
        return torch.tensor(labels, dtype=torch.long, device=x.device)

    def certify(
        self, x: Tensor, n0: int, n: int, alpha: float, *, indices: Sequence[int] | None = None
    ) -> Certificate:
        """CERTIFY: a label and a certified L2 radius for each row of ``x``, or ``ABSTAIN``.

        The top class ``cA`` is guessed from ``n0`` selection draws; ``pA`` is then bounded from ``n``
        fresh estimation draws by the one-sided Clopper–Pearson bound ``pA_lower`` (never from the
        selection draws, which would bias it). Abstains when ``pA_lower < 1/2``; otherwise returns ``cA``
        with radius ``sigma * Phi^-1(pA_lower)``. Guarantee: for each row, with probability at least
        ``1 - alpha`` over the noise, if the answer is ``cA`` with radius ``R`` then the smoothed
        classifier ``g`` returns ``cA`` at every point within L2 distance ``R`` of ``x``.
        """
        n0 = positive_int("n0", n0)
        n = positive_int("n", n)
        alpha = check_alpha(alpha)
        selected = self.sample_counts(x, n0, stream="select", indices=indices).argmax(dim=1)
        counts = self.sample_counts(x, n, stream="estimate", indices=indices)
        votes = counts.gather(1, selected[:, None]).squeeze(1).tolist()
        p_lower = [lower_confidence_bound(k, n, alpha) for k in votes]
        certified = torch.tensor([p >= 0.5 for p in p_lower], dtype=torch.bool)
        prediction = torch.where(certified, selected.cpu(), torch.full_like(selected.cpu(), ABSTAIN))
        radius = torch.tensor([certified_radius(self.sigma, p) for p in p_lower], dtype=torch.float64)
        return Certificate(
            prediction.to(x.device),
            radius.to(x.device),
            torch.tensor(p_lower, dtype=torch.float64, device=x.device),
        )

    @torch.inference_mode()
    def sample_counts(
        self, x: Tensor, num: int, *, stream: str = "predict", indices: Sequence[int] | None = None
    ) -> Tensor:
        """How often the base classifier predicts each class on ``num`` noisy copies of each row.

        Returns ``(N, num_classes)`` int64 on the classifier's device. ``stream`` (``"predict"``,
        ``"select"`` or ``"estimate"``) picks an independent noise stream; ``indices`` (default
        ``0..N-1``) are the rows' positions in the whole data set, which key their noise.
        """
        self.clf.check_input(x)
        num = positive_int("num", num)
        if stream not in _STREAMS:
            raise FortifyError(f"stream must be one of {sorted(_STREAMS)}, got {stream!r}")
        keys = self._keys(indices, x.shape[0])
        device = self._device(x)
        x = x.to(device)
        batcher = _VoteBatcher(self.clf, x.shape[0], self.batch_size, device)
        for row, key in enumerate(keys):
            for chunk, start in enumerate(range(0, num, NOISE_CHUNK)):
                size = min(NOISE_CHUNK, num - start)
                generator = torch.Generator(device=device).manual_seed(self._seed_for(key, stream, chunk))
                noise = torch.randn((size, *x.shape[1:]), generator=generator, device=device, dtype=x.dtype)
                batcher.add(row, noise.mul_(self.sigma).add_(x[row]))
        return batcher.finish()

    def _seed_for(self, key: int, stream: str, chunk: int) -> int:
        entropy = [self.seed, key, _STREAMS[stream], chunk]
        return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])

    def _device(self, x: Tensor) -> torch.device:
        for parameter in self.clf.parameters():
            return parameter.device
        for buffer in self.clf.buffers():
            return buffer.device
        return x.device

    @staticmethod
    def _keys(indices: Sequence[int] | None, rows: int) -> list[int]:
        if indices is None:
            return list(range(rows))
        keys = [int(i) for i in indices]
        if len(keys) != rows:
            raise FortifyError(f"indices must name one position per input row ({rows}), got {len(keys)}")
        if any(k < 0 for k in keys):
            raise FortifyError("indices must be >= 0")
        return keys


class _VoteBatcher:
    """Packs noisy copies of several rows into full forward batches and tallies the predicted classes."""

    def __init__(self, clf: Classifier, rows: int, batch_size: int, device: torch.device) -> None:
        self.clf = clf
        self.batch_size = batch_size
        self.counts = torch.zeros(rows, clf.num_classes, dtype=torch.long, device=device)
        self.pending: list[Tensor] = []
        self.owners: list[Tensor] = []
        self.filled = 0

    def add(self, row: int, noisy: Tensor) -> None:
        start = 0
        while start < noisy.shape[0]:
            take = min(noisy.shape[0] - start, self.batch_size - self.filled)
            self.pending.append(noisy[start : start + take])
            self.owners.append(torch.full((take,), row, dtype=torch.long, device=noisy.device))
            self.filled += take
            start += take
            if self.filled == self.batch_size:
                self._flush()

    def finish(self) -> Tensor:
        self._flush()
        return self.counts

    def _flush(self) -> None:
        if not self.pending:
            return
        batch = self.pending[0] if len(self.pending) == 1 else torch.cat(self.pending)
        owners = self.owners[0] if len(self.owners) == 1 else torch.cat(self.owners)
        logits = self.clf(batch)
        if logits.dim() != 2 or logits.shape[1] != self.clf.num_classes:
            raise FortifyError(
                f"the model returned shape {tuple(logits.shape)}; expected (N, {self.clf.num_classes}) logits"
            )
        ones = torch.ones_like(owners)
        self.counts.index_put_((owners, logits.argmax(dim=1)), ones, accumulate=True)
        self.pending, self.owners, self.filled = [], [], 0
