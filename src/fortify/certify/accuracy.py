"""Certified accuracy of a smoothed classifier on a labelled set, as a ``Result`` (kind "certification").

The work splits into a map and a reduce so it scales out unchanged: ``certify_samples`` certifies any
shard of rows (keyed by their positions in the whole set, so the noise does not depend on the sharding)
and ``certification_result`` turns the concatenated per-sample records into the curve. A Ray job maps
``certify_samples`` over shards of indices and reduces with ``certification_result``:
``certified_accuracy(..., executor=ft.scale.Ray())`` is that job (shard boundaries fall on the rows a
forward batch packs together, so every record equals the unsharded run's); without an executor it runs
on one machine.

``Result.sections["certification"]`` holds::

    {
      "sigma": 0.25, "n0": 100, "n": 10000, "alpha": 0.001,
      "max_radius": 0.80,                  # largest radius n estimation draws can certify
      "radii": [0.0, 0.25, 0.5, ...],
      "certified_accuracy": [0.81, ...],   # per radius: fraction of ALL samples predicted correctly
                                           #   with certified radius >= r (abstentions count as wrong)
      "abstain_rate": 0.05,
      "samples": [{"index": 0, "label": 3, "prediction": 3, "radius": 0.41, "p_lower": 0.95,
                   "correct": true}, ...]  # prediction -1 = ABSTAIN (radius 0.0, correct false)
    }

``Result.clean_accuracy`` is the certified accuracy at radius 0 (the smoothed classifier's accuracy with
abstentions counted as errors); ``robust_accuracy`` stays empty because there is no single radius.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from torch import Tensor

from fortify._validate import positive_int
from fortify.attacks.base import check_labels
from fortify.certify.smooth import ABSTAIN, Smooth, check_alpha
from fortify.certify.statistics import max_certifiable_radius
from fortify.model import Classifier
from fortify.result import CertificationSection, CertifiedSample, Environment, Result
from fortify.types import Executor, FortifyError, ProgressOption, reporting

DEFAULT_RADII = (0.0, 0.25, 0.5, 0.75, 1.0)


def certify_samples(
    smooth: Smooth,
    x: Tensor,
    y: Tensor,
    *,
    n0: int,
    n: int,
    alpha: float,
    indices: Sequence[int] | None = None,
    progress: ProgressOption = None,
) -> list[dict[str, Any]]:
    """Certify each row of ``x`` (labels ``y``) and return one JSON-ready record per row.

    ``indices`` are the rows' positions in the whole set (default ``0..N-1``); they are recorded and key
    the noise, so certifying a shard gives the records a full run would. This is the unit of work to
    map over a cluster.
    """
    n0, n, alpha = positive_int("n0", n0), positive_int("n", n), check_alpha(alpha)
    smooth.clf.check_input(x)
    y = check_labels(y, x.shape[0], smooth.clf.num_classes).cpu()
    keys = list(range(x.shape[0])) if indices is None else [int(i) for i in indices]
    if len(keys) != x.shape[0]:
        raise FortifyError(f"indices must name one position per input row ({x.shape[0]}), got {len(keys)}")
    rows_per_step = max(1, smooth.batch_size // (n0 + n))
    records: list[dict[str, Any]] = []
    with reporting(progress, "certifying", x.shape[0]) as ticker:
        for start in range(0, x.shape[0], rows_per_step):
            stop = min(start + rows_per_step, x.shape[0])
            cert = smooth.certify(x[start:stop], n0, n, alpha, indices=keys[start:stop])
            for offset, (pred, radius, p_lower) in enumerate(
                zip(cert.prediction.tolist(), cert.radius.tolist(), cert.p_lower.tolist(), strict=True)
            ):
                label = int(y[start + offset])
                records.append(
                    {
                        "index": keys[start + offset],
                        "label": label,
                        "prediction": int(pred),
                        "radius": float(radius),
                        "p_lower": float(p_lower),
                        "correct": pred == label,
                    }
                )
            ticker.advance(stop - start)
    return records


def accuracy_at(samples: Sequence[dict[str, Any]], radius: float) -> float:
    """Fraction of samples predicted correctly with a certified radius of at least ``radius``."""
    if not samples:
        return 0.0
    return sum(1 for s in samples if s["correct"] and s["radius"] >= radius) / len(samples)


def certification_result(
    samples: Sequence[dict[str, Any]],
    smooth: Smooth,
    *,
    n0: int,
    n: int,
    alpha: float,
    radii: Sequence[float] = DEFAULT_RADII,
    dataset: str | None = None,
    total_s: float | None = None,
) -> Result:
    """The reduce step: per-sample records (from one or many shards) -> a certification ``Result``."""
    radii = _check_radii(radii)
    ordered = sorted(samples, key=lambda s: s["index"])
    section: CertificationSection = {
        "sigma": smooth.sigma,
        "n0": n0,
        "n": n,
        "alpha": alpha,
        "max_radius": max_certifiable_radius(smooth.sigma, n, alpha),
        "radii": radii,
        "certified_accuracy": [accuracy_at(ordered, r) for r in radii],
        "abstain_rate": sum(s["prediction"] == ABSTAIN for s in ordered) / max(1, len(ordered)),
        "samples": cast(list[CertifiedSample], ordered),
    }
    timing: dict[str, float] = {}
    if total_s is not None:
        timing = {"total_s": total_s, "noise_samples_per_s": len(ordered) * (n0 + n) / max(total_s, 1e-9)}
    return Result(
        kind="certification",
        model={**smooth.clf.describe(), "smoothing_sigma": smooth.sigma},
        dataset=dataset,
        seed=smooth.seed,
        n_samples=len(ordered),
        clean_accuracy=accuracy_at(ordered, 0.0),
        timing=timing,
        environment=Environment.capture(str(smooth.clf.device)),
        sections={"certification": section},
    )


def certified_accuracy(
    smooth: Smooth,
    x: Tensor,
    y: Tensor,
    *,
    radii: Sequence[float] = DEFAULT_RADII,
    n0: int = 100,
    n: int = 10_000,
    alpha: float = 0.001,
    dataset: str | None = None,
    progress: ProgressOption = None,
    executor: Executor | None = None,
) -> Result:
    """Certify every row of ``x`` and report certified accuracy at each of ``radii`` (Cohen et al. 2019).

    ``x`` ``(N, ...)`` in the classifier's bounds, ``y`` ``(N,)`` labels. Each certificate holds with
    probability at least ``1 - alpha``; see ``Smooth.certify``. ``executor`` (``ft.scale.Ray(...)``)
    certifies shards of the rows on its workers, with the same records. Returns a ``Result`` whose
    ``sections["certification"]`` is described in this module's docstring (and ``sections["scale"]``
    how the shards ran, with an executor).
    """
    radii = _check_radii(radii)
    started = time.perf_counter()
    if executor is None:
        samples = certify_samples(smooth, x, y, n0=n0, n=n, alpha=alpha, progress=progress)
    else:
        samples = _certify_sharded(smooth, x, y, n0, n, alpha, executor, progress)
    result = certification_result(
        samples,
        smooth,
        n0=n0,
        n=n,
        alpha=alpha,
        radii=radii,
        dataset=dataset,
        total_s=time.perf_counter() - started,
    )
    if executor is not None:
        result.sections["scale"] = executor.describe()
    return result


@dataclass(frozen=True)
class CertifyShard:
    """``certify_samples`` of one shard: ``task(clf, (start, x, y))``, records keyed by global index."""

    sigma: float
    batch_size: int
    seed: int
    n0: int
    n: int
    alpha: float

    def __call__(self, clf: Classifier, payload: tuple[int, Tensor, Tensor]) -> list[dict[str, Any]]:
        start, x, y = payload
        smooth = Smooth(clf, self.sigma, batch_size=self.batch_size, seed=self.seed)
        indices = range(start, start + x.shape[0])
        return certify_samples(smooth, x, y, n0=self.n0, n=self.n, alpha=self.alpha, indices=indices)


def _certify_sharded(
    smooth: Smooth,
    x: Tensor,
    y: Tensor,
    n0: int,
    n: int,
    alpha: float,
    executor: Executor,
    progress: ProgressOption,
) -> list[dict[str, Any]]:
    """The records of every row, certified shard by shard on ``executor``."""
    n0, n, alpha = positive_int("n0", n0), positive_int("n", n), check_alpha(alpha)
    smooth.clf.check_input(x)
    y = check_labels(y, x.shape[0], smooth.clf.num_classes).cpu()
    task = CertifyShard(smooth.sigma, smooth.batch_size, smooth.seed, n0, n, alpha)
    shards = executor.plan(x.shape[0], max(1, smooth.batch_size // (n0 + n)))
    with reporting(progress, "certifying (sharded)", x.shape[0]) as ticker:

        def done(shard: int, count: int) -> None:
            start, stop = shards[shard]
            ticker.advance(stop - start, status=f"shard {shard + 1} of {count} done")

        parts = executor.map_shards(task, smooth.clf, shards, lambda a, b: (a, x[a:b], y[a:b]), done=done)
    return [record for part in parts for record in part]


def _check_radii(radii: Sequence[float]) -> list[float]:
    values = [float(r) for r in radii]
    if not values or any(not (r >= 0) or r == float("inf") for r in values):
        raise FortifyError(f"radii must be a non-empty list of finite numbers >= 0, got {list(radii)!r}")
    return sorted(values)


__all__ = [
    "DEFAULT_RADII",
    "accuracy_at",
    "certification_result",
    "certified_accuracy",
    "certify_samples",
]
