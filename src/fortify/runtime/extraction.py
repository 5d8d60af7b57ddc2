"""Per-client query patterns that look like model extraction (PRADA: Juuti, Szyller, Marchal & Asokan,
"PRADA: Protecting against DNN Model Stealing Attacks", EuroS&P 2019, arXiv:1805.02628).

Benign clients send natural inputs, whose distances to their own earlier inputs are roughly normally
distributed; an extraction attack sends synthetic queries (small perturbations of seeds, points walked
towards the boundary), whose distances are not. For each client, every new query's smallest L2
distance to that client's earlier queries *of the same predicted class* joins the client's distance
set (the paper's growing set, with a new class's first query starting its own group); once it holds
``min_queries`` values, the Shapiro-Wilk statistic ``W`` of the set is the client's score, and an alert
rule fires when ``W`` falls below a threshold (the paper's ``delta``, about 0.9).

Approximations: each client keeps at most ``max_history`` earlier queries per class (the oldest are
dropped), and Shapiro-Wilk runs on the latest ``max_distances`` distances.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats
from torch import Tensor

DEFAULT_MIN_QUERIES = 30
DEFAULT_MAX_HISTORY = 500
DEFAULT_MAX_DISTANCES = 2000


@dataclass
class ClientStream:
    """One client's earlier queries (per predicted class, flattened) and distance set."""

    history: dict[int, deque[Tensor]] = field(default_factory=dict)
    distances: deque[float] = field(default_factory=lambda: deque(maxlen=DEFAULT_MAX_DISTANCES))


class Prada:
    """PRADA's Shapiro-Wilk score per client: ``observe(client, x, labels)``, ``score(client)``."""

    def __init__(
        self, *, min_queries: int = DEFAULT_MIN_QUERIES, max_history: int = DEFAULT_MAX_HISTORY
    ) -> None:
        self.min_queries = min_queries
        self.max_history = max_history
        self.clients: dict[str, ClientStream] = {}

    def observe(self, client: str, x: Tensor, labels: Tensor) -> None:
        """Add a batch of one client's queries ``(N, ...)`` with their predicted labels ``(N,)``."""
        stream = self.clients.setdefault(client, ClientStream())
        flat = x.detach().flatten(1).float().cpu()
        for row, label in zip(flat, labels.tolist(), strict=True):
            earlier = stream.history.setdefault(int(label), deque(maxlen=self.max_history))
            if earlier:
                stream.distances.append(float(torch.cdist(row[None], torch.stack(list(earlier))).min()))
            earlier.append(row)

    def score(self, client: str) -> float | None:
        """Shapiro-Wilk ``W`` in ``(0, 1]`` of the client's distances; None below ``min_queries`` of them."""
        stream = self.clients.get(client)
        if stream is None or len(stream.distances) < self.min_queries:
            return None
        values = np.asarray(stream.distances, dtype=np.float64)
        if np.ptp(values) == 0:
            return 0.0  # identical distances: as far from normal as a stream gets
        return float(stats.shapiro(values).statistic)
