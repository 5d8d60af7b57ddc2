"""The one result schema shared by evaluation, certification, training, report, MLflow and the gate.

A ``Result`` is versioned JSON (``MAJOR.MINOR``). Minor versions only add optional fields, so a reader
accepts any result with its own major version and a minor version no newer than its own; anything
else is refused with a clear error instead of being half-read.
Later capabilities add their own sections (``sweep``, ``certification``, ``training``...) as optional
fields, never by changing the meaning of an existing one. Since 1.3 the sections and the detector record
are typed, one shape each (``fortify.result.sections``); older documents are read and brought to it.
Since 1.5 ``model["identity"]`` says which model was evaluated (``fortify.result.identity``) and
``environment.threads`` records torch's CPU thread count. Since 1.6 a differentially private training
run records the budget it spent (``privacy``, in the training section and the model's training run)
and ``sections.inversion`` holds a model-inversion audit.
"""

from __future__ import annotations

import platform
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fortify._untrusted import guarded, load_json
from fortify._version import __version__
from fortify.result.gallery import GalleryEntry
from fortify.result.identity import IDENTITY
from fortify.result.sections import DetectorRecord, Sections, normalised_sections
from fortify.types import FortifyError

SCHEMA_VERSION = "1.7"


def _major(version: str) -> int:
    return int(version.split(".")[0])


_VERSION = re.compile(r"[0-9]{1,4}\.[0-9]{1,4}")
MAX_RESULT_BYTES = 128 * 2**20
"""Largest Result file read (a 10,000-sample evaluation with its gallery is a few MB)."""


def _readable(version: str) -> bool:
    if not _VERSION.fullmatch(version):
        return False
    major, minor = (int(part) for part in version.split("."))
    ours_major, ours_minor = (int(part) for part in SCHEMA_VERSION.split("."))
    return major == ours_major and minor <= ours_minor


def _problems(exc: ValidationError) -> str:
    """``N problem(s): field.path: message; ...`` on one line (the first five problems)."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in exc.errors()[:5]]
    return f"{exc.error_count()} problem(s): " + "; ".join(parts)


class SchemaVersionError(FortifyError):
    """The JSON was written by an incompatible version of the result schema."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ThreatSpec(_Model):
    norm: str
    eps: float


class AttackRecord(_Model):
    """How one attack of a suite did.

    ``ran_on`` is ``"all"`` when the attack was run on every clean-correct sample (then ``accuracy`` is
    the accuracy under this attack alone) or ``"remaining"`` when it only ran on samples no earlier
    attack had broken (then ``accuracy`` is ``None``). ``cumulative_accuracy`` is the per-sample worst
    case over this attack and every attack before it.
    """

    name: str
    config: dict[str, Any] = Field(default_factory=dict)
    ran_on: Literal["all", "remaining"]
    n_attacked: int
    n_succeeded: int
    accuracy: float | None
    cumulative_accuracy: float
    time_s: float
    forward_passes: float | None = Field(
        default=None, description="model forward passes per attacked sample (1.1; batch rows / n_attacked)"
    )
    backward_passes: float | None = Field(
        default=None, description="input-gradient passes per attacked sample (1.1)"
    )


class SampleRecord(_Model):
    """One evaluated sample. ``broken_by`` is the first attack (in suite order) that fooled the model."""

    index: int
    label: int
    clean_pred: int
    clean_correct: bool
    robust: bool
    broken_by: str | None = None
    adv_pred: int | None = None
    perturbation_norm: float | None = None
    queries: int | None = None
    group: str | None = None
    clean_confidence: float | None = Field(default=None, description="max softmax probability, clean (1.1)")
    adv_confidence: float | None = Field(
        default=None, description="max softmax probability at the strongest attack point found (1.1)"
    )
    iterations: int | None = Field(
        default=None, description="iterations the breaking attack used, if it counts them (1.1)"
    )
    min_distance: float | None = Field(
        default=None, description="smallest adversarial perturbation norm a minimum-norm attack found (1.1)"
    )


class Diagnostic(_Model):
    """A check recorded with a Result.

    ``scope="evaluation"`` (the default): a sanity check of the evaluation itself (e.g. 'gradients are
    informative'); a failure means the robust accuracy may be an overestimate. ``scope="model"`` (1.5): a
    finding about the model that the evaluation compensated for (e.g. 'the model masks gradients:
    attacked with BPDA'); a failure says the model's defense hides gradients, not that the number is
    untrustworthy.
    """

    name: str
    passed: bool
    evidence: str
    details: dict[str, Any] = Field(default_factory=dict)
    scope: Literal["evaluation", "model"] = "evaluation"


class Slice(_Model):
    """Accuracy on one slice of the data: one true class (``kind="class"``) or one user group (1.1)."""

    kind: Literal["class", "group"]
    key: str
    n: int
    clean_accuracy: float
    robust_accuracy: float


class Calibration(_Model):
    """Expected calibration error and confidence histograms, clean and at the attack points (1.1).

    ``bin_edges`` has ``bins + 1`` entries over [0, 1]; the histograms count samples by max softmax
    probability. The adversarial side takes every clean-correct sample at the strongest attack point
    found (misclassified samples stay at their clean point), judged by per-sample worst-case correctness.
    """

    bins: int
    bin_edges: list[float]
    ece_clean: float
    ece_adversarial: float | None = None
    clean_histogram: list[int]
    adversarial_histogram: list[int] = Field(default_factory=list)


class Sweep(_Model):
    """Robust accuracy as a function of eps for one norm (1.1).

    ``method`` is ``"min-norm"`` (from per-sample minimal distances of one minimum-norm run),
    ``"min-norm+suite"`` (those distances, then the suite on the samples they left unbroken at each eps)
    or ``"per-eps"`` (the suite at each eps on the samples still unbroken).
    """

    norm: str
    epsilons: list[float]
    robust_accuracy: list[float]
    clean_accuracy: float
    method: Literal["min-norm", "min-norm+suite", "per-eps"]
    min_norm_attack: str | None = None
    time_s: list[float] = Field(default_factory=list)


class Environment(_Model):
    fortify: str
    torch: str
    python: str
    platform: str
    device: str
    threads: int | None = Field(default=None, ge=1)
    """torch's intra-op CPU threads for the run: floating-point sums, hence some figures, depend on it
    (absent in Results written before it was recorded)."""

    @classmethod
    def capture(cls, device: str = "cpu") -> Environment:
        import torch

        return cls(
            fortify=__version__,
            torch=torch.__version__,
            python=platform.python_version(),
            platform=platform.platform(),
            device=device,
            threads=torch.get_num_threads(),
        )


class Result(_Model):
    """Outcome of one evaluation (or certification / training run, or single attack) of one model.

    ``robust_accuracy`` is the per-sample worst case: a sample counts as robust only if it is classified
    correctly clean and under every attack of the suite. ``attack_success_rate`` is the fraction of
    clean-correct samples that some attack broke.
    """

    schema_version: str = SCHEMA_VERSION
    kind: Literal["evaluation", "certification", "training", "attack", "audit"] = Field(
        default="evaluation",
        description="'attack' (1.3): one attack run by `fortify attack`; 'audit' (1.4): a poisoning "
        "audit (`fortify poison audit`, sections['poisoning'])",
    )
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    model: dict[str, Any] = Field(
        default_factory=dict,
        description="the model's own description (``Classifier.describe``); its 'identity' (1.5) is typed: "
        "architecture, source, parameters, weights_file, weights_sha256, training_run",
    )
    dataset: str | None = None
    threat: ThreatSpec | None = None
    suite: str | None = None
    smoke_test: bool = Field(
        default=False,
        description="the suite is a smoke test, not evidence of robustness (``quick``; 1.5): the gate "
        "refuses it as release evidence unless its policy sets allow_smoke_tests",
    )
    precision: Literal["fp32", "bf16"] = Field(
        default="fp32",
        description="the arithmetic the attacks' iterations ran in (1.7); verdicts are always float32",
    )
    seed: int | None = None
    n_samples: int = 0
    clean_accuracy: float | None = None
    robust_accuracy: float | None = None
    attack_success_rate: float | None = None
    per_attack: list[AttackRecord] = Field(default_factory=list)
    samples: list[SampleRecord] = Field(default_factory=list)
    diagnostics: list[Diagnostic] = Field(default_factory=list)
    timing: dict[str, float] = Field(default_factory=dict)
    environment: Environment | None = None
    slices: list[Slice] = Field(default_factory=list)
    calibration: Calibration | None = None
    sweep: Sweep | None = None
    gallery: list[GalleryEntry] | None = Field(
        default=None,
        description="adversarial examples the evaluation found, for the report (1.2; None: not kept)",
    )
    detector: DetectorRecord | None = Field(
        default=None,
        description="the model's detector (1.2; typed 1.3): its description (with where it was "
        "calibrated), in_objective, clean_flag_rate and adversarial_flag_rate (clean-correct samples at "
        "their final attack points); None: no detector",
    )
    sections: Sections = Field(
        default_factory=lambda: Sections(),
        description="Optional sections added by later capabilities (certification, training...; typed 1.3)",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_shape(cls, data: Any) -> Any:
        """Bring sections written before 1.3 to their one shape (see ``fortify.result.sections``)."""
        if isinstance(data, dict) and "sections" in data:
            return {**data, "sections": normalised_sections(data["sections"])}
        return data

    @field_validator("model")
    @classmethod
    def _typed_identity(cls, model: dict[str, Any]) -> dict[str, Any]:
        """``model["identity"]``, when present, has the one shape of ``ModelIdentity`` (1.5)."""
        if "identity" not in model:
            return model
        try:
            identity = IDENTITY.validate_python(model["identity"])
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(["identity", *(str(part) for part in first["loc"])])
            raise ValueError(f"{where}: {first['msg']}") from None
        return {**model, "identity": identity}

    @property
    def reliable(self) -> bool:
        """False when any check of the evaluation failed: the robust accuracy may be an overestimate.

        Findings about the model (``scope="model"``, e.g. gradient masking the evaluation worked
        around) do not make a result unreliable; they are reported as failed checks all the same."""
        return all(d.passed for d in self.diagnostics if d.scope == "evaluation")

    def attack(self, name: str) -> AttackRecord:
        for record in self.per_attack:
            if record.name == name:
                return record
        raise KeyError(f"no attack named {name!r} in this result; have {[r.name for r in self.per_attack]}")

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "result") -> Result:
        """Parse a result, refusing other major schema versions, malformed documents and impossible
        evidence (``fortify.result.evidence``) with a one-line ``FortifyError`` naming ``source``."""
        from fortify.result.evidence import check_evidence

        raw = load_json(text, f"{source}: not a fortify result", max_bytes=MAX_RESULT_BYTES)
        if not isinstance(raw, dict) or "schema_version" not in raw:
            raise FortifyError(f"{source}: not a fortify result: no 'schema_version' field")
        version = raw["schema_version"]
        if not isinstance(version, str) or not _VERSION.fullmatch(version):
            raise SchemaVersionError(
                f"{source}: result schema version must be a string MAJOR.MINOR such as {SCHEMA_VERSION!r}, "
                f"got {str(version)[:40]!r}"
            )
        if not _readable(version):
            raise SchemaVersionError(
                f"{source}: result schema version {version!r} is not supported by this fortify (it reads "
                f"{_major(SCHEMA_VERSION)}.0 to {SCHEMA_VERSION}); use a fortify release that wrote it"
            )
        try:
            result = guarded(source, lambda: cls.model_validate(raw))
        except ValidationError as exc:
            raise FortifyError(f"{source}: not a valid fortify result: {_problems(exc)}") from exc
        return check_evidence(result, source)

    def save(self, path: str) -> None:
        """Write the result to ``path`` atomically: a failed write leaves the previous file intact."""
        from fortify._files import atomic_write_text

        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str) -> Result:
        from fortify._files import read_limited

        return cls.from_json(
            read_limited(path, "result file", MAX_RESULT_BYTES), source=f"result file {path}"
        )
