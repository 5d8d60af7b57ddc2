"""The typed sections of a Result: one shape each, kept as plain JSON mappings (schema 1.3).

A section is a ``TypedDict``: pydantic checks every key it knows (type, and no unknown key where the
section is closed) when a Result is built or read, while the value stays a plain ``dict`` that readers
index and ``json`` writes as is. Keys are optional, so a producer records what it measured.

- ``Sections``: ``Result.sections``; ``certification`` and ``training`` are typed, sections of later
  capabilities are kept as they come.
- ``CertificationSection``: written by ``fortify.certify``: the smoothing parameters, certified accuracy
  at each radius and one ``CertifiedSample`` per input. Results before 1.3 may hold the curve as
  ``"curve": [{"radius", "certified_accuracy"}, ...]``; reading turns it into ``radii`` /
  ``certified_accuracy``.
- ``TrainingSection``: ``fortify.training.TrainingHistory`` as JSON, with the DP budget spent
  (``privacy``, a ``fortify.result.identity.PrivacyBudget``; 1.6) for a differentially private run.
- ``InversionSection`` (1.6): a model-inversion audit (``fortify.audits.privacy.model_inversion``):
  one reconstructed representative per class with its similarity to every class mean of reference
  data. Its images are stored as the gallery stores them (``fortify.result.gallery``), and the report
  decodes them defensively (bounded inflation, checked shape and bounds).
- ``DetectorRecord``: ``Result.detector``: the detector's own description (its name, flags, threshold,
  calibration and detector-specific parameters such as feature squeezing's ``squeezers``) and how it
  did in the evaluation.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints, with_config
from typing_extensions import TypedDict

from fortify.result.gallery import MAX_VALUES
from fortify.result.identity import Label, PrivacyBudget


@with_config(ConfigDict(extra="forbid"))
class CertifiedSample(TypedDict, total=False):
    """One certified input: ``prediction`` -1 means the smoothed classifier abstained (radius 0,
    ``correct`` false); ``radius`` is the certified L2 radius, ``p_lower`` the lower confidence bound."""

    index: int
    label: int
    prediction: int
    radius: float | None
    p_lower: float | None
    correct: bool


@with_config(ConfigDict(extra="forbid"))
class CertificationSection(TypedDict, total=False):
    """Certified accuracy of a smoothed classifier: ``certified_accuracy[i]`` is the fraction of all
    samples predicted correctly with certified radius >= ``radii[i]`` (abstentions count as wrong)."""

    sigma: float
    n0: int
    n: int
    alpha: float
    max_radius: float
    radii: list[float]
    certified_accuracy: list[float]
    abstain_rate: float
    samples: list[CertifiedSample]


@with_config(ConfigDict(extra="forbid"))
class EpochSection(TypedDict, total=False):
    epoch: int
    loss: float
    accuracy: float
    time_s: float
    val_accuracy: float | None
    val_robust_accuracy: float | None
    lr: float | None
    eps: float | None


@with_config(ConfigDict(extra="forbid"))
class TrainingSection(TypedDict, total=False):
    """What ``ft.train`` did (``TrainingHistory``): method and options, per-epoch figures, events."""

    method: str
    options: dict[str, Any]
    seed: int
    epochs: list[EpochSection]
    total_s: float
    config: dict[str, Any]
    events: list[dict[str, Any]]
    co_checks: list[dict[str, float | int | bool]]
    best_epoch: int | None
    catastrophic_overfitting: bool
    privacy: PrivacyBudget | None


Pixels = Annotated[str, StringConstraints(max_length=8 * MAX_VALUES)]
"""An image as ``fortify.result.gallery.encode_pixels`` writes it (bounded before it is decoded)."""
Scores = Annotated[list[float], Field(max_length=100_000)]


@with_config(ConfigDict(extra="forbid"))
class InvertedClass(TypedDict, total=False):
    """One class's representative: ``label`` (and its ``name``), the model's ``confidence`` in that
    class at the representative, the ``image`` and the reference data's ``class_mean`` image (both
    ``(C, H, W)`` in the section's ``bounds``); ``cosine[k]`` / ``l2[k]``: its similarity to the mean
    of reference class ``k`` (cosine after subtracting the mean of all reference images; L2 distance
    in pixel units); ``nearest_class``: the class whose mean it is most similar to (by cosine)."""

    label: int
    name: Label
    confidence: float
    image: Pixels
    class_mean: Pixels
    cosine: Scores
    l2: Scores
    nearest_class: int


@with_config(ConfigDict(extra="forbid"))
class InversionSection(TypedDict, total=False):
    """Model inversion (Fredrikson, Jha & Ristenpart, CCS 2015): gradient descent on the input to the
    class's cost, from ``start``, for ``steps`` steps of ``lr`` (a fraction of the input range) with
    ``l2_weight`` / ``tv_weight`` regularisers. ``identified``: the fraction of inverted classes whose
    representative is nearest its own class mean; ``mean_true_cosine`` / ``mean_other_cosine``: the
    mean similarity to the own class mean and to the other class means (``n_reference`` images)."""

    attack: str
    steps: int
    lr: float
    l2_weight: float
    tv_weight: float
    start: str
    shape: list[int]
    bounds: tuple[float, float]
    n_reference: int
    identified: float | None
    mean_true_cosine: float | None
    mean_other_cosine: float | None
    classes: Annotated[list[InvertedClass], Field(max_length=10_000)]


@with_config(ConfigDict(extra="allow"))
class Sections(TypedDict, total=False):
    """``Result.sections``: the typed sections, and any section a later capability adds by name.

    ``guard`` (``fortify.runtime``), ``endpoint`` (``fortify evaluate --url``), ``poisoning``,
    ``membership`` and ``extraction`` (``fortify.audits``, 1.4; ``inversion`` is typed, 1.6) and
    ``streaming`` (an evaluation of batches merged from chunks: ``chunks``, ``chunk_size``,
    ``suite_chosen_on``, ``diagnostics``; ``fortify.evaluation.stream``) and ``scale`` (a job sharded
    over an executor: ``executor``, ``shards`` as ``[[start, stop], ...]``, ``workers``, ``retries``;
    ``fortify.evaluation.sharded``, ``fortify.scale``) are JSON mappings their
    producers describe; they get a typed shape here when their schemas settle."""

    certification: CertificationSection
    training: TrainingSection
    guard: dict[str, Any]
    endpoint: dict[str, Any]
    poisoning: dict[str, Any]
    membership: dict[str, Any]
    extraction: dict[str, Any]
    inversion: InversionSection
    streaming: dict[str, Any]
    scale: dict[str, Any]


@with_config(ConfigDict(extra="forbid"))
class CalibrationRecord(TypedDict, total=False):
    """Where a detector was calibrated: ``n`` clean images of ``split`` of ``dataset`` from ``start``."""

    dataset: str
    split: str
    start: int
    n: int


@with_config(ConfigDict(extra="allow"))
class DetectorRecord(TypedDict, total=False):
    """``Result.detector``: the detector's description (detector-specific parameters kept as given) and
    its flag rates in the evaluation: on the clean samples, and at the final attack points of the
    clean-correct ones. ``in_objective``: the attacks had the detector in their objective."""

    name: str
    differentiable: bool
    randomized: bool
    threshold: float | None
    fpr: float | None
    calibration: CalibrationRecord
    squeezers: list[dict[str, Any]]
    in_objective: bool
    clean_flag_rate: float
    adversarial_flag_rate: float | None


def normalised_sections(raw: Any) -> Any:
    """``sections`` of a document as read: a pre-1.3 certification ``curve`` becomes ``radii`` /
    ``certified_accuracy`` (sorted by radius); anything else is returned as it is, for validation."""
    if not isinstance(raw, dict) or not isinstance(raw.get("certification"), dict):
        return raw
    section = raw["certification"]
    curve = section.get("curve")
    if not isinstance(curve, list):
        return raw
    try:
        points = sorted((float(p["radius"]), float(p["certified_accuracy"])) for p in curve)
    except (KeyError, TypeError, ValueError):
        return raw
    rest = {k: v for k, v in section.items() if k != "curve"}
    converted = {**rest, "radii": [r for r, _ in points], "certified_accuracy": [a for _, a in points]}
    return {**raw, "certification": converted}
