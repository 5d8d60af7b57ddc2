"""The per-sample ledger of an evaluation: who is still robust, what broke whom, and at what cost."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from fortify.attacks.runner import batches
from fortify.evaluation.detection import flags
from fortify.evaluation.gallery import Gallery
from fortify.evaluation.suites import SuiteEntry
from fortify.model import Classifier
from fortify.result import AttackRecord, SampleRecord
from fortify.threat import Threat


@dataclass
class PassCounter:
    """Counts the rows the model is run on (forward) and the rows run with input gradients (backward)."""

    forward: int = 0
    backward: int = 0

    def hook(self, module: nn.Module, inputs: tuple[object, ...]) -> None:
        x = inputs[0] if inputs else None
        if isinstance(x, Tensor):
            self.forward += x.shape[0]
            self.backward += x.shape[0] if x.requires_grad and torch.is_grad_enabled() else 0


@contextmanager
def counting(clf: Classifier, counter: PassCounter) -> Iterator[PassCounter]:
    """Count ``clf``'s forward passes into ``counter`` while inside the block."""
    handle = clf.register_forward_pre_hook(counter.hook)
    try:
        yield counter
    finally:
        handle.remove()


@dataclass
class Ledger:
    """Per-sample outcome of an evaluation so far (CPU tensors of length ``n``)."""

    y: Tensor
    clean_pred: Tensor
    clean_conf: Tensor
    correct: Tensor
    robust: Tensor
    adv_pred: Tensor
    adv_conf: Tensor
    worst_true_prob: Tensor
    pert_norm: Tensor
    queries: Tensor
    iterations: Tensor
    broken_by: list[str | None]
    clf: Classifier
    x: Tensor
    adv_flagged: Tensor  # the detector's flag at each sample's recorded point (all False without one)
    clean_s: float = 0.0
    records: list[AttackRecord] = field(default_factory=list)
    gallery: Gallery = field(default_factory=lambda: Gallery((0.0, 1.0), limit=0))

    @classmethod
    def start(cls, clf: Classifier, x: Tensor, y: Tensor) -> Ledger:
        """Clean predictions and confidences; every clean-correct sample starts out robust."""
        t0 = time.perf_counter()
        probs = clf.logits(x, check=False).cpu().softmax(dim=1)
        conf, pred = probs.max(dim=1)
        n = x.shape[0]
        correct = pred == y
        return cls(
            y=y,
            clean_pred=pred,
            clean_conf=conf,
            correct=correct,
            robust=correct.clone(),
            adv_pred=torch.full((n,), -1, dtype=torch.long),
            adv_conf=conf.clone(),
            worst_true_prob=probs.gather(1, y[:, None]).squeeze(1),
            pert_norm=torch.full((n,), float("nan")),
            queries=torch.zeros(n, dtype=torch.long),
            iterations=torch.zeros(n, dtype=torch.long),
            broken_by=[None] * n,
            clf=clf,
            x=x,
            adv_flagged=flags(clf, x),
            clean_s=time.perf_counter() - t0,
            gallery=Gallery.for_inputs(x, clf.bounds),
        )

    @property
    def n(self) -> int:
        return self.y.shape[0]

    def run(
        self, entry: SuiteEntry, view: Classifier, x: Tensor, threat: Threat, batch_size: int
    ) -> AttackRecord:
        """Run one suite entry (through ``view``, judged by the real classifier) and record it."""
        t0 = time.perf_counter()
        targets = self.targets(entry)
        fooled = torch.zeros(self.n, dtype=torch.bool)
        passes = PassCounter()
        attacked = batches(
            entry.attack,
            view,
            x,
            self.y,
            threat,
            batch_size=batch_size,
            indices=targets,
            around=lambda: counting(self.clf, passes),
        )
        for chunk, out in attacked:
            fooled[chunk] = self._judge(
                entry.name, chunk, out.x_adv, out.queries, threat, getattr(out, "iterations", None)
            )
        n_attacked = int(targets.numel())
        record = AttackRecord(
            name=entry.name,
            config=jsonable(entry.attack.config()),
            ran_on=entry.ran_on,
            n_attacked=n_attacked,
            n_succeeded=int(fooled.sum()),
            accuracy=float((self.correct & ~fooled).float().mean()) if entry.ran_on == "all" else None,
            cumulative_accuracy=float(self.robust.float().mean()),
            time_s=time.perf_counter() - t0,
            forward_passes=passes.forward / n_attacked if n_attacked else 0.0,
            backward_passes=passes.backward / n_attacked if n_attacked else 0.0,
        )
        self.records.append(record)
        return record

    def run_entry(
        self, entry: SuiteEntry, view: Classifier, x: Tensor, threat: Threat, batch_size: int
    ) -> list[AttackRecord]:
        """Run ``entry``, then its escalation (recursively) if it broke any sample; their records."""
        records = [self.run(entry, view, x, threat, batch_size)]
        if entry.escalation is not None and records[-1].n_succeeded:
            records += self.run_entry(entry.escalation, view, x, threat, batch_size)
        return records

    def targets(self, entry: SuiteEntry) -> Tensor:
        """Indices ``entry`` attacks: all clean-correct or the remaining samples, narrowed to the close
        calls and to an evenly spread probe when the entry asks for them."""
        chosen = self.correct if entry.ran_on == "all" else self.robust
        if entry.close_calls is not None:
            chosen = chosen & (self.worst_true_prob < entry.close_calls)
        targets = chosen.nonzero().squeeze(1)
        if entry.probe is not None and targets.numel() > entry.probe:
            spread = torch.linspace(0, targets.numel() - 1, entry.probe).round().long().unique()
            targets = targets[spread]
        return targets

    def _judge(
        self,
        name: str,
        chunk: Tensor,
        x_adv: Tensor,
        queries: Tensor | None,
        threat: Threat,
        iterations: Tensor | None,
    ) -> Tensor:
        """Judge attack points with the real classifier (fooled: misclassified and not flagged by its
        detector, if it has one); update the ledger; return which were fooled."""
        probs = self.clf.logits(x_adv, check=False).cpu().softmax(dim=1)
        conf, pred = probs.max(dim=1)
        flagged = flags(self.clf, x_adv)
        hit = (pred != self.y[chunk]) & ~flagged
        true_prob = probs.gather(1, self.y[chunk][:, None]).squeeze(1)
        first = hit & self.robust[chunk]
        stronger = ~hit & self.robust[chunk] & (true_prob < self.worst_true_prob[chunk])
        update = first | stronger
        self.adv_conf[chunk[update]] = conf[update]
        self.worst_true_prob[chunk[update]] = true_prob[update]
        self.adv_flagged[chunk[update]] = flagged[update]
        newly = chunk[first]
        for i in newly.tolist():
            self.broken_by[i] = name
        self.adv_pred[newly] = pred[first]
        delta = x_adv[first] - self.x[newly].to(x_adv.device)
        self.pert_norm[newly] = threat.norm_of(delta).cpu().to(self.pert_norm.dtype)
        if queries is not None:
            self.queries[newly] = queries[first].cpu()
        if iterations is not None:
            self.iterations[newly] = iterations[first].cpu()
        self.gallery.offer(newly, self.y[newly], x_adv[first])
        self.robust[newly] = False
        return hit

    def mark_broken(self, name: str, idx: Tensor, x_adv: Tensor, norms: Tensor) -> None:
        """Record samples ``idx`` (still robust) as broken by ``name`` at the points ``x_adv``."""
        probs = self.clf.logits(x_adv, check=False).cpu().softmax(dim=1)
        conf, pred = probs.max(dim=1)
        for i in idx.tolist():
            self.broken_by[i] = name
        self.adv_pred[idx] = pred
        self.adv_conf[idx] = conf
        self.worst_true_prob[idx] = probs.gather(1, self.y[idx][:, None]).squeeze(1)
        self.pert_norm[idx] = norms.to(self.pert_norm.dtype)
        self.adv_flagged[idx] = False  # callers only mark points that are not flagged
        self.gallery.offer(idx, self.y[idx], x_adv)
        self.robust[idx] = False

    def samples(self, groups: Sequence[str] | None) -> list[SampleRecord]:
        """One record per sample, in input order."""
        out = []
        for i in range(self.n):
            broken = self.broken_by[i] is not None
            out.append(
                SampleRecord(
                    index=i,
                    label=int(self.y[i]),
                    clean_pred=int(self.clean_pred[i]),
                    clean_correct=bool(self.correct[i]),
                    robust=bool(self.robust[i]),
                    broken_by=self.broken_by[i],
                    adv_pred=int(self.adv_pred[i]) if broken else None,
                    perturbation_norm=float(self.pert_norm[i]) if broken else None,
                    queries=int(self.queries[i]) if broken and self.queries[i] > 0 else None,
                    group=groups[i] if groups is not None else None,
                    clean_confidence=float(self.clean_conf[i]),
                    adv_confidence=float(self.adv_conf[i]) if self.correct[i] else None,
                    iterations=int(self.iterations[i]) if broken and self.iterations[i] > 0 else None,
                )
            )
        return out


def jsonable(config: dict[str, object]) -> dict[str, object]:
    return {
        k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v) for k, v in config.items()
    }
