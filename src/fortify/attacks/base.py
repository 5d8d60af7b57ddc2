"""The attack contract, held once for every attack.

Every attack is called as ``attack(clf, x, y, threat) -> x_adv``. The base class validates the inputs,
runs the subclass's algorithm only on samples that are not already misclassified (or already on target),
and then enforces the contract on whatever the algorithm returned:

- ``x_adv`` lies in the threat's ball around ``x`` and inside the classifier's bounds;
- shape, dtype and device are those of ``x``;
- a sample already adversarial on entry comes back unchanged;
- a sample the attack failed to break never comes back worse (lower loss) than the clean input.

Subclasses only write ``_run``. Attacks are stateless: configuration in a keyword-only ``__init__``,
the model and data at call time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, final

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fortify._validate import from_numpy
from fortify.attacks.oracle import Oracle, margin
from fortify.model import BlackBox, Classifier
from fortify.threat import Threat
from fortify.types import FortifyError


@dataclass
class AttackOutput:
    """What an attack's algorithm returns: the adversarial points and, optionally, per-sample costs.

    ``queries`` counts model evaluations per sample (black-box attacks report it). ``logits`` are the
    model's outputs ``(N, C)`` at the returned points, from the contract's own final check, so a caller
    needs no extra forward pass for the verdict (``None`` where the model gives labels only).
    """

    x_adv: Tensor
    queries: Tensor | None = None
    logits: Tensor | None = None


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Switch off weight gradients while attacking: attacks need input gradients only (~20% faster)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def is_success(logits: Tensor, y: Tensor, targeted: bool) -> Tensor:
    """Per-sample: untargeted, the prediction differs from ``y``; targeted, it equals the target ``y``."""
    pred = logits.argmax(dim=1)
    return pred == y if targeted else pred != y


def attack_loss(logits: Tensor, y: Tensor, targeted: bool) -> Tensor:
    """Per-sample loss the attacker maximises: CE to the label, or minus CE to the target."""
    logits = torch.nan_to_num(logits, nan=0.0, posinf=1e30, neginf=-1e30)
    ce = F.cross_entropy(logits, y, reduction="none")
    return -ce if targeted else ce


def input_gradient(loss_per_sample: Tensor, x: Tensor) -> Tensor:
    """Gradient of the summed per-sample loss with respect to ``x`` only, with non-finite entries zeroed."""
    (grad,) = torch.autograd.grad(loss_per_sample.sum(), x)
    return torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)


def check_labels(y: Tensor, n: int, num_classes: int) -> Tensor:
    """Validate labels ``(N,)`` of any integer dtype and return them as int64."""
    if not isinstance(y, Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() != 1 or y.shape[0] != n:
        raise FortifyError(f"labels must have shape ({n},) to match the inputs, got {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise FortifyError(f"labels must be integers, got {y.dtype}")
    y = y.long()
    if n and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise FortifyError(
            f"labels must lie in [0, {num_classes - 1}], got values in [{int(y.min())}, {int(y.max())}]"
        )
    return y


def _succeeded(output: Tensor, y: Tensor, targeted: bool) -> Tensor:
    """``is_success`` for scores ``(N, C)`` or labels ``(N,)``."""
    pred = output.argmax(dim=1) if output.dim() == 2 else output
    return pred == y if targeted else pred != y


PRECISIONS = ("fp32", "bf16")
"""The arithmetic an attack's iterations may run in; verdicts are always float32."""


def reduced_precision_available(device: torch.device) -> bool:
    """Whether bfloat16 is fast on ``device``: a CUDA GPU that supports it, or a CPU with native
    bfloat16 instructions (AVX-512 BF16 or AMX, as oneDNN reports)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"`` for ``precision`` in ``fp32 | bf16 | auto`` (auto: bf16 where it is
    fast, see ``reduced_precision_available``); ``FortifyError`` for anything else."""
    if precision == "auto":
        return "bf16" if reduced_precision_available(device) else "fp32"
    if precision not in PRECISIONS:
        raise FortifyError(f"unknown precision {precision!r}; choose one of {[*PRECISIONS, 'auto']}")
    return precision


def confirm_success(clf: Classifier, x: Tensor, hit: Tensor, y: Tensor, targeted: bool) -> Tensor:
    """``hit`` (a success mask an attack computed from its own logits) with every success re-checked in
    float32 when the attack iterates in reduced precision: an attack that stops on a sample because
    bfloat16 logits called it broken would otherwise report it unbroken, and robust accuracy too high."""
    if not bool(hit.any()) or not torch.is_autocast_enabled(x.device.type):
        return hit
    with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
        exact = is_success(clf(x[hit].detach()), y[hit], targeted)
    confirmed = hit.clone()
    confirmed[hit] = exact
    return confirmed


class Attack(ABC):
    """Base class of all attacks. Subclasses implement ``_run`` and declare ``name``.

    Parameters common to every attack (keyword-only): ``targeted`` (``y`` then holds target labels) and
    ``seed`` (every random choice an attack makes comes from a generator seeded with it), and for the
    attacks that declare ``supports_precision`` (FGSM, PGD, APGD, APGD-T), ``precision``: ``"fp32"``
    (default) or ``"bf16"``, the arithmetic of the iterations (``torch.autocast``; on CPUs with bfloat16
    instructions about twice as fast). The clean check, the no-worse-than-clean check and the logits
    returned are always float32, and every success an iteration sees is confirmed in float32
    (``confirm_success``), so reduced precision can change which points an attack finds, never how a
    point is judged.
    """

    name: str = "attack"
    supports_targeted: bool = True
    requires: str = "gradients"
    """What the attack needs from the model: ``"gradients"`` (a ``Classifier``), or ``"scores"`` /
    ``"labels"`` (a ``Classifier`` or a ``BlackBox`` giving at least that; ``_run`` then receives an
    ``Oracle`` that counts queries per sample, reported in ``AttackOutput.queries``)."""

    supports_precision: bool = False
    """Whether the attack can iterate in reduced precision (``precision="bf16"``)."""

    def __init__(self, *, targeted: bool = False, seed: int = 0, precision: str = "fp32") -> None:
        if targeted and not self.supports_targeted:
            raise FortifyError(f"{type(self).__name__} has no targeted variant")
        self.targeted = bool(targeted)
        self.seed = int(seed)
        if precision != "fp32":
            self.set_precision(precision)

    def set_precision(self, precision: str) -> None:
        """Iterate in ``precision`` (``fp32`` or ``bf16``); ``FortifyError`` if the attack cannot."""
        if precision not in PRECISIONS:
            raise FortifyError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
        if precision != "fp32" and not self.supports_precision:
            raise FortifyError(f"{type(self).__name__} runs in float32 only (precision={precision!r})")
        if precision == "fp32":
            self.__dict__.pop("precision", None)
        else:
            self.precision = precision

    @property
    def reduced(self) -> bool:
        return self.__dict__.get("precision", "fp32") != "fp32"

    def config(self) -> dict[str, Any]:
        """The attack's configuration, JSON-ready (recorded in results)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    @final
    def __call__(
        self,
        clf: Classifier | BlackBox,
        x: Tensor,
        y: Tensor,
        threat: Threat,
        *,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Adversarial examples ``(N, ...)`` for inputs ``x`` in ``clf.bounds`` and labels ``y`` ``(N,)``.

        Targeted attacks take target labels as ``y``; give the true ``labels`` too and a target equal to
        its sample's label is refused instead of counting as already reached.
        """
        return self.attack(clf, x, y, threat, labels=labels).x_adv

    @final
    def attack(
        self,
        clf: Classifier | BlackBox,
        x: Tensor,
        y: Tensor,
        threat: Threat,
        *,
        labels: Tensor | None = None,
    ) -> AttackOutput:
        """Like calling the attack, but also returns per-sample query counts where the attack keeps them,
        and the model's logits at the returned points. NumPy ``x`` / ``y`` are taken as float32 / int64
        tensors (the points returned are tensors)."""
        x, y = from_numpy(x, y)
        if not isinstance(threat, Threat):
            raise TypeError(
                f"threat must be a fortify Threat (ft.Linf, ft.L2...), got {type(threat).__name__}"
            )
        if labels is not None:
            self._check_targets(y, labels)
        if self.requires != "gradients":
            return self._attack_by_queries(clf, x, y, threat)
        if not isinstance(clf, Classifier):
            raise TypeError(
                f"{type(self).__name__} needs gradients: give a fortify Classifier, got {type(clf).__name__}"
            )
        clf.check_input(x)
        y = check_labels(y, x.shape[0], clf.num_classes)
        device, dtype = x.device, x.dtype
        xd, yd = x.detach().to(clf.device), y.to(clf.device)
        reduced = self.reduced
        iterations = torch.autocast(xd.device.type, dtype=torch.bfloat16) if reduced else nullcontext()
        with frozen(clf):
            generator = torch.Generator(device=xd.device).manual_seed(self.seed)
            with torch.enable_grad():
                # reduced precision: the clean logits come from their own float32 pass, never fused
                fused = None if reduced else self._run_with_clean_logits(clf, xd, yd, threat, generator)
            if fused is None:
                with torch.no_grad():
                    clean_logits = clf(xd)
            else:
                clean_logits, fused_points = fused[0].detach(), fused[1]
            clf.check_output(clean_logits, xd.shape[0])
            already = is_success(clean_logits, yd, self.targeted)
            out, logits = xd.clone(), clean_logits.clone()
            queries = torch.zeros(x.shape[0], dtype=torch.long, device=clf.device)
            active = (~already).nonzero().squeeze(1)
            if active.numel():
                x_act, y_act = xd[active], yd[active]
                if fused is None:
                    with torch.enable_grad(), iterations:
                        produced = self._run(clf, x_act, y_act, threat, generator)
                else:
                    produced = fused_points[active]
                if isinstance(produced, Tensor):
                    produced = AttackOutput(produced)
                x_adv = threat.clip(torch.nan_to_num(produced.x_adv.detach().to(xd.dtype)), x_act, clf.bounds)
                out[active], logits[active] = self._no_worse_than_clean(
                    clf, x_adv, x_act, y_act, clean_logits[active]
                )
                if produced.queries is not None:
                    queries[active] = produced.queries.to(queries.device, torch.long)
        return AttackOutput(out.to(device=device, dtype=dtype), queries.to(device), logits.to(device))

    def _attack_by_queries(
        self, model: Classifier | BlackBox, x: Tensor, y: Tensor, threat: Threat
    ) -> AttackOutput:
        """The contract for score- and decision-based attacks; queries (clean check, the algorithm's,
        final check) are counted per sample. "No worse" compares the loss for a ``Classifier``, the
        score margin for a score ``BlackBox``; a labels-only model keeps only points it misclassifies."""
        if not isinstance(model, (Classifier, BlackBox)):
            raise TypeError(f"attacks take a fortify Classifier or BlackBox, got {type(model).__name__}")
        if isinstance(model, BlackBox) and self.requires == "scores" and model.output == "labels":
            raise TypeError(f"{type(self).__name__} needs scores; this BlackBox returns labels only")
        model.check_input(x)
        y = check_labels(y, x.shape[0], model.num_classes)
        device, dtype = x.device, x.dtype
        oracle = Oracle(model, x.shape[0], model.device)
        xd, yd = x.detach().to(model.device), y.to(model.device)
        with frozen(model) if isinstance(model, Classifier) else nullcontext():
            clean = oracle.raw(xd).clone()
            out = xd.clone()
            active = (~_succeeded(clean, yd, self.targeted)).nonzero().squeeze(1)
            if active.numel():
                x_act, y_act = xd[active], yd[active]
                sub = Oracle(model, active.numel(), model.device)
                generator = torch.Generator(device=xd.device).manual_seed(self.seed)
                with torch.enable_grad():
                    produced = self._run(sub, x_act, y_act, threat, generator)
                x_new = produced.x_adv if isinstance(produced, AttackOutput) else produced
                x_adv = threat.clip(torch.nan_to_num(x_new.detach().to(xd.dtype)), x_act, model.bounds)
                adv = oracle.raw(x_adv, active)
                keep = _succeeded(adv, y_act, self.targeted)
                if adv.dim() == 2:
                    loss = attack_loss if oracle.classifier is not None else margin
                    keep |= loss(adv, y_act, self.targeted) >= loss(clean[active], y_act, self.targeted)
                out[active] = torch.where(keep.reshape((-1,) + (1,) * (x.dim() - 1)), x_adv, x_act)
                clean[active] = torch.where(keep.reshape((-1,) + (1,) * (adv.dim() - 1)), adv, clean[active])
                oracle.counts[active] += sub.counts
        logits = clean.to(device) if clean.dim() == 2 else None
        return AttackOutput(out.to(device=device, dtype=dtype), oracle.counts.to(device), logits)

    def _no_worse_than_clean(
        self, clf: Classifier, x_adv: Tensor, x: Tensor, y: Tensor, clean_logits: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The points to return (``x_adv`` where it broke the sample or raised its loss, else ``x``) and
        the logits at them."""
        with torch.no_grad():
            adv_logits = clf(x_adv)
        keep = is_success(adv_logits, y, self.targeted) | (
            attack_loss(adv_logits, y, self.targeted) >= attack_loss(clean_logits, y, self.targeted)
        )
        points = torch.where(keep.reshape((-1,) + (1,) * (x.dim() - 1)), x_adv, x)
        return points, torch.where(keep[:, None], adv_logits, clean_logits)

    def _check_targets(self, targets: Tensor, labels: Tensor) -> None:
        if not self.targeted:
            raise FortifyError(
                "labels= is for targeted attacks (y then holds the targets); untargeted, y are the labels"
            )
        if not isinstance(labels, Tensor) or labels.shape != getattr(targets, "shape", None):
            raise FortifyError(
                f"labels must be a tensor shaped like the targets {tuple(getattr(targets, 'shape', ()))}"
            )
        same = (labels.to(targets.device).long() == targets.long()).nonzero().squeeze(1)
        if same.numel():
            raise FortifyError(
                f"{same.numel()} target(s) equal the sample's own label (first at index {int(same[0])}): "
                "a targeted attack needs a target class different from the true one"
            )

    def _run_with_clean_logits(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> tuple[Tensor, Tensor] | None:
        """Optional fast path for attacks whose first pass is a forward on the clean input itself (FGSM):
        the clean logits ``(N, C)`` and the points for *every* sample, so the contract's clean check
        costs no extra forward. ``None`` (the default) means: run ``_run`` on the samples to attack."""
        return None

    @abstractmethod
    def _run(
        self, clf: Any, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor | AttackOutput:
        """The algorithm: adversarial points for samples that are not yet adversarial.

        ``clf`` is a ``Classifier`` for gradient attacks and an ``Oracle`` (counting queries) for
        attacks that need only ``"scores"`` or ``"labels"``.

        ``x`` is detached and on the classifier's device; weight gradients are off. The returned points
        are projected and clipped by the caller, so the algorithm may overshoot slightly.
        """
