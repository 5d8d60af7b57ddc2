"""Which model a Result is about (schema 1.5): ``Result.model["identity"]``, one shape, checked on read.

- ``ModelIdentity``: the architecture (a zoo name, the import path ``pkg.module:factory`` of the
  user's code, or ``onnx:FILE``), where it came from (``source``), its parameter count, the weights
  file it was loaded from with that file's SHA-256, and the training run that produced it when the
  file records one.
- ``TrainingRun``: written into a model file by ``ft.zoo.save`` (and ``fortify train``) when the
  file carries a training history: a random run id, when it ran, the SHA-256 of its configuration,
  its method and data set, and (1.6) the differential-privacy budget the run spent when it was
  trained with DP-SGD. ``fortify train --mlflow`` logs the same id, so a model's training and
  evaluation runs can be found side by side.
- ``PrivacyBudget``: that budget, as ``fortify.training`` records it (``TrainingHistory.privacy``).

Both are closed ``TypedDict``s: a Result or model file with an unknown key, a malformed digest or an
overlong string is refused when it is read, like any other field.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, with_config
from typing_extensions import TypedDict

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A lowercase hex SHA-256 digest."""
RunId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
"""A training-run id: 32 lowercase hex digits (a UUID4 without dashes)."""
Label = Annotated[str, StringConstraints(max_length=300)]
"""A short free-text field (architecture, method, data set) as recorded: bounded, never trusted."""
_Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


@with_config(ConfigDict(extra="forbid"))
class PrivacyBudget(TypedDict, total=False):
    """What a DP-SGD run spent (Abadi et al., CCS 2016; computed by Opacus's accountant).

    The trained model is ``(epsilon, delta)``-differentially private with respect to one training
    sample, by the ``accountant`` (``rdp``: Mironov 2017; ``prv``: Gopi, Lee & Wutschitz 2021) over
    ``steps`` noisy steps, each drawing a Poisson sample of rate ``sample_rate``, clipping every
    per-sample gradient to L2 norm ``max_grad_norm`` and adding Gaussian noise of standard deviation
    ``noise_multiplier * max_grad_norm``. ``target_epsilon`` is the budget asked for over the
    ``epochs`` planned (the noise multiplier was found for it); ``epsilon`` is what was spent, lower
    when training stopped early. ``secure_rng``: noise and sampling came from a cryptographically
    secure generator (without it the guarantee holds only against attackers who cannot predict
    torch's generator). The guarantee covers the weights: the training history's per-epoch loss and
    training accuracy are measured on training samples without noise and are not private."""

    epsilon: _NonNegative
    delta: Annotated[float, Field(gt=0, lt=1)]
    accountant: Literal["rdp", "prv"]
    noise_multiplier: _NonNegative
    max_grad_norm: _Positive
    sample_rate: Annotated[float, Field(gt=0, le=1)]
    steps: Annotated[int, Field(ge=0)]
    target_epsilon: _Positive
    epochs: Annotated[int, Field(ge=1)]
    secure_rng: bool


@with_config(ConfigDict(extra="forbid"))
class TrainingRun(TypedDict, total=False):
    """The training run a model file came from: ``id``, ``created_at`` (ISO 8601, UTC),
    ``config_sha256`` (``config_digest`` of its ``training_settings``), ``method`` and ``dataset``;
    ``privacy`` (1.6) when it was trained with differential privacy."""

    id: RunId
    created_at: Annotated[str, StringConstraints(max_length=40)]
    config_sha256: Sha256
    method: Label
    dataset: Label
    privacy: PrivacyBudget


@with_config(ConfigDict(extra="forbid"))
class ModelIdentity(TypedDict, total=False):
    """The evaluated model: ``architecture``; ``source`` (``zoo``: a fortify architecture rebuilt by
    name, ``factory``: the user's ``pkg.module:factory``, ``onnx``: an ONNX file converted, ``module``:
    a module built in memory); ``parameters`` (the count); ``weights_file`` (as the user named it) and
    ``weights_sha256`` (of that file's bytes when it was loaded); ``training_run`` when recorded."""

    architecture: Label
    source: Literal["zoo", "factory", "onnx", "module"]
    parameters: Annotated[int, Field(ge=0)]
    weights_file: Annotated[str, StringConstraints(max_length=1000)]
    weights_sha256: Sha256
    training_run: TrainingRun


IDENTITY = TypeAdapter(ModelIdentity)
TRAINING_RUN = TypeAdapter(TrainingRun)
PRIVACY_BUDGET = TypeAdapter(PrivacyBudget)


def training_settings(training: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting of a training run from its history (``TrainingHistory`` as JSON): ``method``,
    ``seed``, ``method_options`` and the loop's ``config`` (epochs, lr, batch size...), flat."""
    config = training.get("config")
    options = training.get("options")
    return {
        "method": training.get("method"),
        "seed": training.get("seed"),
        **(dict(config) if isinstance(config, Mapping) else {}),
        "method_options": dict(options) if isinstance(options, Mapping) else {},
    }


def config_digest(config: Mapping[str, Any]) -> str:
    """SHA-256 of ``config`` as canonical JSON (sorted keys, no spaces): equal settings, equal digest."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_training_run(
    config: Mapping[str, Any],
    *,
    method: str | None = None,
    dataset: str | None = None,
    privacy: Mapping[str, Any] | None = None,
) -> TrainingRun:
    """A fresh ``TrainingRun`` record for a run with settings ``config`` (a new random id, now);
    ``privacy`` is the run's ``PrivacyBudget`` (checked: ``pydantic.ValidationError`` when malformed)."""
    record: TrainingRun = {
        "id": uuid.uuid4().hex,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_sha256": config_digest(config),
    }
    if method is not None:
        record["method"] = method[:300]
    if dataset is not None:
        record["dataset"] = dataset[:300]
    if privacy is not None:
        record["privacy"] = PRIVACY_BUDGET.validate_python(dict(privacy))
    return record
