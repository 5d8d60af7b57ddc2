"""A release gate's verdict as a file (``fortify gate --out gate.json``), for the report to show.

The gate (``fortify.gate``) checks Results against a policy; ``GateRecord`` is what it decided, the
policy's name and which Result files it read (by SHA-256), so ``fortify report ... --gate gate.json``
can show the verdict beside the numbers and refuse a verdict about other files. Like every file
fortify reads, a gate record is untrusted: size-limited, strict JSON, a closed schema, and a verdict
that contradicts its own checks is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from fortify._files import atomic_write_text, read_limited
from fortify._untrusted import guarded, load_json
from fortify.result.identity import Sha256
from fortify.types import FortifyError

GATE_FORMAT: Literal["fortify-gate"] = "fortify-gate"
GATE_VERSION: Literal["1.0"] = "1.0"
MAX_GATE_BYTES = 4 * 2**20
"""Largest gate record read (a policy has a few dozen checks)."""
Text = Annotated[str, StringConstraints(max_length=2000)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatedFile(_Closed):
    """One file the gate read: the path as given and the SHA-256 of its bytes."""

    path: Text
    sha256: Sha256


class CheckRecord(_Closed):
    """One threshold: its name, whether it passed, the measured and required values, any detail."""

    name: Text
    passed: bool
    measured: Text
    required: Text
    detail: Text = ""


class GateRecord(_Closed):
    """The gate's verdict: ``passed`` is true exactly when every check passed."""

    format: Literal["fortify-gate"] = GATE_FORMAT
    version: Literal["1.0"] = GATE_VERSION
    created_at: Annotated[str, StringConstraints(max_length=40)] = Field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )
    policy: Text
    passed: bool
    results: list[GatedFile] = Field(min_length=1, max_length=1000)
    baseline: GatedFile | None = None
    checks: list[CheckRecord] = Field(max_length=1000)

    @model_validator(mode="after")
    def _consistent(self) -> GateRecord:
        if self.passed != all(c.passed for c in self.checks):
            raise ValueError(f"passed is {self.passed} but the checks say {not self.passed}")
        return self

    @property
    def failures(self) -> list[CheckRecord]:
        return [c for c in self.checks if not c.passed]

    def covers(self, digests: list[str]) -> bool:
        """Whether the gate read exactly the Result files with these SHA-256 digests (in any order)."""
        return sorted(f.sha256 for f in self.results) == sorted(digests)

    def save(self, path: str | Path) -> Path:
        """Write the record as JSON, atomically."""
        return atomic_write_text(path, self.model_dump_json(indent=2))

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "gate record") -> GateRecord:
        """Parse a record, refusing anything malformed with a one-line ``FortifyError`` naming ``source``."""
        raw = load_json(text, f"{source}: not a fortify gate record", max_bytes=MAX_GATE_BYTES)
        if not isinstance(raw, dict) or raw.get("format") != GATE_FORMAT:
            raise FortifyError(f"{source}: not a fortify gate record (written by `fortify gate --out`)")
        if raw.get("version") != GATE_VERSION:
            raise FortifyError(
                f"{source}: gate record version {str(raw.get('version'))[:20]!r} is not supported "
                f"(this fortify reads {GATE_VERSION})"
            )
        try:
            return guarded(source, lambda: cls.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "record"
            raise FortifyError(f"{source}: not a valid gate record: {where}: {first['msg']}") from exc

    @classmethod
    def load(cls, path: str | Path) -> GateRecord:
        return cls.from_json(read_limited(path, "gate record", MAX_GATE_BYTES), source=f"gate record {path}")
