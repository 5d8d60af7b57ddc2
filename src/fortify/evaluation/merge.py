"""One Result from the Results of consecutive chunks of a data set (``fortify.evaluation.stream``).

``Merger.add(start, part)`` takes the Result of the chunk whose first sample has global index
``start``; ``Merger.result()`` returns the Result of the whole. What is exact and what is not:

- exact (the same numbers a Result over the whole would hold, given the same per-sample outcomes):
  ``n_samples``, clean and robust accuracy and attack success rate (counted from the per-sample
  records); per-sample records (``index`` made global); per attack ``n_attacked`` / ``n_succeeded``
  (summed), ``accuracy`` and ``cumulative_accuracy`` (the chunks' counts added up; a chunk in which an
  attack did not run, e.g. an escalation its probe did not trigger, contributes its cumulative
  accuracy as it stood after the attacks it did run), forward / backward passes per attacked sample
  (weighted by ``n_attacked``); slices and calibration (recomputed from the per-sample records);
  the detector's flag rates (weighted by the chunk's samples, and clean-correct samples);
- summed: ``timing`` key by key;
- conservative: a diagnostic passes only if it passed on every chunk it ran on; its evidence is that
  of the first chunk where it failed (else of the first chunk), and ``details`` say on which chunks
  it ran and failed;
- first chunk's: model description, environment, attack configurations, ``precision`` (every chunk
  must have run in the same one: chunks of different precision are refused);
- the gallery: entries of the first chunks with a broken sample, up to the limit one chunk has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from fortify.evaluation.summaries import calibration, slices
from fortify.result import AttackRecord, Diagnostic, Result, SampleRecord
from fortify.result.gallery import GalleryEntry
from fortify.types import FortifyError


@dataclass
class _AttackSum:
    first: AttackRecord
    n_attacked: int = 0
    n_succeeded: int = 0
    time_s: float = 0.0
    forward: float = 0.0
    backward: float = 0.0
    correct_unfooled: int = 0
    chunks: int = 0


@dataclass
class _DiagnosticSum:
    first: Diagnostic
    failed_on: list[int] = field(default_factory=list)
    ran_on: list[int] = field(default_factory=list)
    failing: Diagnostic | None = None


@dataclass
class Merger:
    """Adds up the Results of consecutive chunks (see the module docstring)."""

    gallery_limit: int = 0
    class_names: list[str] | None = None
    grouped: bool = False
    parts: int = 0
    n: int = 0
    first: Result | None = None
    samples: list[SampleRecord] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    attacks: dict[str, _AttackSum] = field(default_factory=dict)
    cumulative: dict[str, float] = field(default_factory=dict)  # name -> robust count after it
    clean_count: int = 0
    diagnostics: dict[str, _DiagnosticSum] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    gallery: list[GalleryEntry] | None = None
    flags: dict[str, float] = field(default_factory=dict)

    def add(self, start: int, part: Result) -> None:
        """Add the Result of the chunk of ``part.n_samples`` samples starting at global index ``start``."""
        if start != self.n:
            raise FortifyError(f"chunks must be added in order: expected start {self.n}, got {start}")
        if len(part.samples) != part.n_samples:
            raise FortifyError("a chunk's Result must hold one record per sample to be merged")
        first = self.first
        if first is not None and part.precision != first.precision:
            raise FortifyError(
                f"chunks of different precision cannot be merged: {first.precision} then {part.precision}"
            )
        self.first = self.first or part
        self.samples += [s.model_copy(update={"index": s.index + start}) for s in part.samples]
        self._add_attacks(part)
        self._add_diagnostics(part)
        for key, seconds in part.timing.items():
            self.timing[key] = self.timing.get(key, 0.0) + seconds
        self._add_gallery(start, part.gallery)
        self._add_detector(part)
        self.n += part.n_samples
        self.parts += 1

    def _add_attacks(self, part: Result) -> None:
        n = part.n_samples
        ran = {r.name: r for r in part.per_attack}
        self._place([r.name for r in part.per_attack])
        clean_count = sum(s.clean_correct for s in part.samples)
        carry_earlier, carry_this = float(self.clean_count), float(clean_count)
        updated: dict[str, float] = {}
        for name in self.order:
            # a chunk that did not run ``name`` stands where the attack before it left it
            carry_earlier = self.cumulative.get(name, carry_earlier)
            record = ran.get(name)
            if record is not None:
                carry_this = float(round(record.cumulative_accuracy * n))
                total = self.attacks.setdefault(name, _AttackSum(first=record))
                total.n_attacked += record.n_attacked
                total.n_succeeded += record.n_succeeded
                total.time_s += record.time_s
                total.forward += (record.forward_passes or 0.0) * record.n_attacked
                total.backward += (record.backward_passes or 0.0) * record.n_attacked
                if record.accuracy is not None:
                    total.correct_unfooled += round(record.accuracy * n)
                    total.chunks += 1
            updated[name] = carry_earlier + carry_this
        self.cumulative = updated
        self.clean_count += clean_count

    def _place(self, names: list[str]) -> None:
        """Insert a chunk's attack names into the running order, keeping every chunk's own order."""
        at = -1
        for name in names:
            if name in self.order:
                at = self.order.index(name)
            else:
                at += 1
                self.order.insert(at, name)

    def _add_diagnostics(self, part: Result) -> None:
        for diag in part.diagnostics:
            total = self.diagnostics.setdefault(diag.name, _DiagnosticSum(first=diag))
            total.ran_on.append(self.parts + 1)  # chunks are numbered from 1
            if not diag.passed:
                total.failed_on.append(self.parts + 1)
                total.failing = total.failing or diag

    def _add_gallery(self, start: int, entries: list[GalleryEntry] | None) -> None:
        if entries is None or self.gallery_limit == 0:
            return
        kept = self.gallery if self.gallery is not None else []
        room = self.gallery_limit - len(kept)
        kept += [e.model_copy(update={"index": e.index + start}) for e in entries[: max(room, 0)]]
        self.gallery = kept

    def _add_detector(self, part: Result) -> None:
        if part.detector is None:
            return
        n_correct = sum(s.clean_correct for s in part.samples)
        adversarial = part.detector.get("adversarial_flag_rate")
        self.flags["clean"] = self.flags.get("clean", 0.0) + part.detector["clean_flag_rate"] * part.n_samples
        if adversarial is not None:
            self.flags["adversarial"] = self.flags.get("adversarial", 0.0) + adversarial * n_correct
            self.flags["correct"] = self.flags.get("correct", 0.0) + n_correct

    def result(self, **updates: Any) -> Result:
        """The Result of every chunk added, with ``updates`` (e.g. ``suite``, ``sections``) applied."""
        if self.first is None or self.n == 0:
            raise FortifyError("the data yielded no samples")
        n = self.n
        correct = torch.tensor([s.clean_correct for s in self.samples])
        robust = torch.tensor([s.robust for s in self.samples])
        n_correct = int(correct.sum())
        return self.first.model_copy(
            update={
                "n_samples": n,
                "clean_accuracy": n_correct / n,
                "robust_accuracy": int(robust.sum()) / n,
                "attack_success_rate": int((correct & ~robust).sum()) / n_correct if n_correct else 0.0,
                "per_attack": [self._record(name) for name in self.order],
                "samples": self.samples,
                "diagnostics": [self._diagnostic(d) for d in self.diagnostics.values()],
                "timing": dict(self.timing),
                "slices": self._slices(correct, robust),
                "calibration": self._calibration(correct, robust),
                "gallery": self.gallery if self.first.gallery is not None else None,
                "detector": self._detector(),
                **updates,
            }
        )

    def _record(self, name: str) -> AttackRecord:
        total = self.attacks[name]
        attacked = total.n_attacked
        return total.first.model_copy(
            update={
                "n_attacked": attacked,
                "n_succeeded": total.n_succeeded,
                "accuracy": total.correct_unfooled / self.n if total.chunks == self.parts else None,
                "cumulative_accuracy": self.cumulative[name] / self.n,
                "time_s": total.time_s,
                "forward_passes": total.forward / attacked if attacked else 0.0,
                "backward_passes": total.backward / attacked if attacked else 0.0,
            }
        )

    def _diagnostic(self, total: _DiagnosticSum) -> Diagnostic:
        shown = total.failing or total.first
        details = {**shown.details, "chunks_run": len(total.ran_on), "chunks_failed": total.failed_on}
        evidence = shown.evidence
        if total.failing is not None and self.parts > 1:
            evidence = f"chunk {total.failed_on[0]}: {evidence}"
        return shown.model_copy(
            update={"passed": not total.failed_on, "evidence": evidence, "details": details}
        )

    def _slices(self, correct: torch.Tensor, robust: torch.Tensor) -> list[Any]:
        labels = torch.tensor([s.label for s in self.samples], dtype=torch.long)
        groups = [s.group or "" for s in self.samples] if self.grouped else None
        return slices(labels, correct, robust, groups, self.class_names)

    def _calibration(self, correct: torch.Tensor, robust: torch.Tensor) -> Any:
        if self.first is None or self.first.calibration is None:
            return None
        clean = torch.tensor([s.clean_confidence or 0.0 for s in self.samples], dtype=torch.float32)
        adv = torch.tensor(
            [
                s.adv_confidence if s.adv_confidence is not None else s.clean_confidence or 0.0
                for s in self.samples
            ],
            dtype=torch.float32,
        )
        adv = torch.where(correct, adv, clean)
        return calibration(clean, correct, adv, robust, self.first.calibration.bins)

    def _detector(self) -> Any:
        if self.first is None or self.first.detector is None:
            return None
        record = dict(self.first.detector)
        record["clean_flag_rate"] = self.flags.get("clean", 0.0) / self.n
        correct = self.flags.get("correct", 0.0)
        record["adversarial_flag_rate"] = self.flags["adversarial"] / correct if correct else None
        return record
