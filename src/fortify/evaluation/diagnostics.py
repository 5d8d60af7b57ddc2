"""Sanity checks of an evaluation itself, run on a few samples and recorded in every Result.

From Athalye, Carlini & Wagner, "Obfuscated Gradients Give a False Sense of Security" (ICML 2018) and
Carlini et al., "On Evaluating Adversarial Robustness" (arXiv:1902.06705, 2019), section 5:

- ``outputs_are_logits``: the clean outputs are finite, and not probabilities (a softmax inside the
  model squashes gradients; evaluation then attacks their logarithm, so a probability failure is a
  finding about the model, ``scope="model"``, and non-finite outputs one about the evaluation);
- ``gradient_masking`` (``scope="model"``): the model's own gradients are zero, non-finite, vanishing
  for cross-entropy (saturated logits), uninformative (shattered) or random. It fails whenever the
  model hides its gradients, even when the evaluation compensated (BPDA, DLR losses, EOT), so a masked
  model never comes back with every check passed; ``Result.reliable`` ignores it, since the other
  checks say whether the compensation worked;
- ``randomness``: two forward passes on the same inputs agree, or the model declares it is random;
- ``gradients``: input gradients are finite, non-zero and informative (a small step along them raises
  the loss), for the gradients the attacks actually use;
- ``iterative_vs_single_step``: an iterative attack is at least as strong as a single-step one;
- ``unbounded_attack``: with an unbounded radius the attack reaches ~0% accuracy;
- ``white_box_vs_black_box``: black-box attacks find (almost) nothing that white-box ones missed;
- ``monotone_in_eps``: robust accuracy does not increase with eps (sweeps).

Each check costs a few forward/backward passes on ``PROBE_SAMPLES`` samples (the output check, one
clean forward pass over the inputs); its time is in ``details``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify.attacks import FGSM, PGD, Attack
from fortify.attacks.runner import accuracy
from fortify.model import Classifier
from fortify.result import Diagnostic
from fortify.threat import Threat

PROBE_SAMPLES = 16
"""Samples used by the gradient, randomness and unbounded-attack checks."""
COMPARE_SAMPLES = 32
"""Samples used by the single-step vs iterative comparison."""
UNBOUNDED_MAX_ACCURACY = 0.1
INFORMATIVE_STEPS = (0.01, 0.05, 0.25)
"""Step lengths (fractions of the input range, along the gradient's sign) tried by the gradient check."""


def margin_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Per-sample ``max_{j != y} z_j - z_y``: scale-free, so it survives saturated softmax outputs."""
    other = logits.clone()
    other.scatter_(1, y[:, None], -torch.inf)
    return other.amax(dim=1) - logits.gather(1, y[:, None]).squeeze(1)


def _timed(
    name: str,
    passed: bool,
    evidence: str,
    started: float,
    scope: Literal["evaluation", "model"] = "evaluation",
    **details: object,
) -> Diagnostic:
    return Diagnostic(
        name=name,
        passed=passed,
        evidence=evidence,
        details={**details, "time_s": time.perf_counter() - started},
        scope=scope,
    )


def check_randomness(clf: Classifier, x: Tensor) -> tuple[Diagnostic, bool]:
    """Two forward passes on the same ``x``; returns the diagnostic and whether outputs differed.

    Fails when the model is random but does not declare it (``randomized = False``): such a result does
    not reproduce from its seed and needed EOT it was not told about.
    """
    started = time.perf_counter()
    xs = x[:PROBE_SAMPLES].to(clf.device)
    with torch.no_grad():
        first, second = clf(xs), clf(xs)
    gap = float((first - second).abs().max())
    detected = gap > 1e-5 * max(1.0, float(first.abs().max()))
    declared = bool(clf.randomized) or any(getattr(m, "randomized", False) for m in clf.modules())
    if detected and not declared:
        evidence = (
            f"two forward passes differ by up to {gap:.3g} but the model does not declare randomized=True"
        )
    elif detected:
        evidence = f"declared random, and two forward passes differ by up to {gap:.3g}: attacked with EOT"
    elif declared:
        evidence = "declared random but two forward passes agreed; attacked with EOT anyway"
    else:
        evidence = "deterministic: two forward passes agree"
    diag = _timed(
        "randomness",
        not (detected and not declared),
        evidence,
        started,
        detected=detected,
        declared=declared,
        max_difference=gap,
        samples=int(xs.shape[0]),
    )
    return diag, detected


def check_outputs(clf: Classifier, x: Tensor) -> Diagnostic:
    """The model's clean outputs on ``x`` are finite logits, not NaN / infinite and not probabilities.

    Fails when any output is non-finite (attacks then follow zeroed gradients and the robust accuracy
    means nothing), or when most rows lie in [0, 1] and sum to 1: a softmax inside the model squashes
    the gradients the attacks need (Carlini et al. 2019, section 5), so its robustness is overstated.
    """
    started = time.perf_counter()
    outputs = clf.logits(x, check=False)
    nonfinite = int((~torch.isfinite(outputs)).any(dim=1).sum())
    sums = outputs.sum(dim=1)
    probability_like = ((outputs >= 0) & (outputs <= 1)).all(dim=1) & ((sums - 1).abs() < 1e-3)
    share = float(probability_like.float().mean())
    n = int(outputs.shape[0])
    if nonfinite:
        evidence = f"{nonfinite} of {n} clean inputs give NaN or infinite outputs"
    elif share > 0.5:
        evidence = (
            f"{share:.0%} of {n} outputs are probabilities (in [0, 1], summing to 1), which squash the "
            "gradients: attacked through their logarithm; give the Classifier the logits before softmax"
        )
    else:
        evidence = f"finite logits on all {n} clean inputs"
    return _timed(
        "outputs_are_logits",
        not nonfinite and share <= 0.5,
        evidence,
        started,
        "model" if not nonfinite and share > 0.5 else "evaluation",
        nonfinite=nonfinite,
        probability_like=share,
        samples=n,
    )


def outputs_are_probabilities(diag: Diagnostic) -> bool:
    """Did ``check_outputs`` find finite probability outputs (to be attacked through their log)?"""
    return diag.details.get("nonfinite") == 0 and float(diag.details.get("probability_like", 0.0)) > 0.5


def _gradient_stats(view: Classifier, x: Tensor, y: Tensor, loss_name: str) -> dict[str, float]:
    """Finite / non-zero / informative fractions of the input gradient of one loss."""
    loss_fn = margin_loss if loss_name == "margin" else lambda z, t: F.cross_entropy(z, t, reduction="none")
    x_var = x.clone().requires_grad_(True)
    loss = loss_fn(view(x_var), y)
    (grad,) = torch.autograd.grad(loss.sum(), x_var)
    flat = grad.flatten(1)
    finite = torch.isfinite(flat).all(dim=1)
    nonzero = finite & (torch.nan_to_num(flat).abs().amax(dim=1) > 0)
    low, high = view.bounds
    direction = torch.nan_to_num(grad).sign()
    rises = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    with torch.no_grad():
        for step in INFORMATIVE_STEPS:  # several scales: quantising defenses ignore the smallest steps
            stepped = (x + step * (high - low) * direction).clamp(low, high)
            rises |= loss_fn(view(stepped), y) > loss.detach()
    n = float(x.shape[0])
    return {
        "finite": float(finite.sum()) / n,
        "nonzero": float(nonzero.sum()) / n,
        "informative": float((rises & nonzero).sum()) / n,
    }


def check_gradients(clf: Classifier, view: Classifier, x: Tensor, y: Tensor, how: str) -> Diagnostic:
    """Are the gradients the attacks use (``view``) finite, non-zero and informative?

    Checked for cross-entropy and for the logit margin; passes when every gradient is finite and one
    loss gives informative gradients on at least half the probe samples. When ``view`` is not ``clf``
    (BPDA / EOT), the raw gradients are reported beside them, which is the evidence of masking.
    """
    started = time.perf_counter()
    xs, ys = x[:PROBE_SAMPLES].to(view.device), y[:PROBE_SAMPLES].to(view.device)
    with torch.enable_grad():
        used = {loss: _gradient_stats(view, xs, ys, loss) for loss in ("ce", "margin")}
        raw = (
            {loss: _gradient_stats(clf, xs, ys, loss) for loss in ("ce", "margin")}
            if view is not clf
            else used
        )
    finite = all(s["finite"] == 1.0 for s in used.values())
    best = max(used, key=lambda k: used[k]["informative"])
    passed = finite and used[best]["informative"] >= 0.5
    raw_best = max(s["informative"] for s in raw.values())
    parts = [f"{best} gradients informative on {used[best]['informative']:.0%} of {xs.shape[0]} samples"]
    if used["ce"]["nonzero"] < 0.5 <= used["margin"]["nonzero"]:
        parts.append("cross-entropy gradients vanish (saturated softmax): margin-based losses are needed")
    if view is not clf:
        parts.append(
            f"raw gradients informative on only {raw_best:.0%}; attacked with {how}"
            if raw_best < 0.5
            else f"attacked with {how}"
        )
    if not finite:
        parts.append("some gradients are NaN or infinite")
    return _timed("gradients", passed, "; ".join(parts), started, used=used, raw=raw, attacked_with=how)


def check_gradient_masking(gradients: Diagnostic | None, randomized: bool, how: str) -> Diagnostic:
    """Does the model itself hide its gradients? A finding about the model (``scope="model"``).

    Read from the raw gradients of ``check_gradients`` (the model's, not the attack view's) and the
    randomness plan: zero or non-finite gradients (non-differentiable parts), cross-entropy gradients
    that vanish while the margin's do not (saturated logits), gradients that do not raise the loss
    (shattered), and random outputs. ``how`` says what the evaluation did about it.
    """
    started = time.perf_counter()
    seen: list[str] = []
    raw = gradients.details.get("raw", {}) if gradients is not None else {}
    ce, margin = raw.get("ce"), raw.get("margin")
    if ce and margin:
        if min(ce["finite"], margin["finite"]) < 1.0:
            seen.append("NaN or infinite input gradients")
        if max(ce["nonzero"], margin["nonzero"]) < 0.5:
            seen.append(f"zero input gradients on {1 - max(ce['nonzero'], margin['nonzero']):.0%} of samples")
        elif ce["nonzero"] < 0.5 <= margin["nonzero"]:
            seen.append(
                f"cross-entropy gradients vanish on {1 - ce['nonzero']:.0%} of samples (saturated logits)"
            )
        if (
            max(ce["informative"], margin["informative"]) < 0.5
            and max(ce["nonzero"], margin["nonzero"]) >= 0.5
        ):
            seen.append("gradients that do not raise the loss (shattered)")
    if randomized:
        seen.append("random outputs")
    evidence = (
        f"the model masks its gradients: {', '.join(seen)}; the evaluation compensated with {how}"
        if seen
        else "the model's own gradients are finite, non-zero and informative, and it is deterministic"
    )
    return _timed("gradient_masking", not seen, evidence, started, "model", seen=seen, compensated_with=how)


def _accuracy_under(
    attack: Attack, clf: Classifier, view: Classifier, x: Tensor, y: Tensor, threat: Threat
) -> float:
    return accuracy(clf, attack(view, x, y, threat), y, check=False)


def check_iterative_vs_single_step(
    clf: Classifier,
    view: Classifier,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    seed: int,
    *,
    randomized: bool = False,
) -> Diagnostic:
    """PGD-10 must break at least as many samples as FGSM (one sample of slack).

    On random models PGD runs all its steps (``early_stop=False``): stopping at the first point that is
    adversarial on average leaves points that single draws often still classify correctly.
    """
    started = time.perf_counter()
    xs, ys = x[:COMPARE_SAMPLES], y[:COMPARE_SAMPLES]
    single = _accuracy_under(FGSM(seed=seed), clf, view, xs, ys, threat)
    iterative = _accuracy_under(
        PGD(steps=10, early_stop=not randomized, seed=seed), clf, view, xs, ys, threat
    )
    slack = 1.0 / max(1, xs.shape[0])
    passed = iterative <= single + slack
    evidence = f"on {xs.shape[0]} samples: FGSM {single:.1%}, PGD-10 {iterative:.1%} accuracy" + (
        "" if passed else ": the iterative attack is weaker, so the loss surface misleads it"
    )
    return _timed(
        "iterative_vs_single_step",
        passed,
        evidence,
        started,
        fgsm=single,
        pgd=iterative,
        samples=int(xs.shape[0]),
    )


def unbounded_radius(threat: Threat, x: Tensor, bounds: tuple[float, float]) -> float:
    """A radius that covers the whole input box: the norm of a full-range perturbation."""
    full = torch.full_like(x[:1], bounds[1] - bounds[0])
    return float(threat.norm_of(full)[0])


def check_unbounded(
    clf: Classifier, view: Classifier, x: Tensor, y: Tensor, threat: Threat, attacks: Sequence[Attack]
) -> Diagnostic:
    """With a radius covering the whole input box, the worst case over ``attacks`` must reach ~0% accuracy."""
    started = time.perf_counter()
    xs, ys = x[:PROBE_SAMPLES], y[:PROBE_SAMPLES]
    big = threat.with_eps(unbounded_radius(threat, xs, clf.bounds))
    still = torch.ones(xs.shape[0], dtype=torch.bool)
    for attack in attacks:
        if bool(still.any()):
            x_adv = attack(view, xs[still], ys[still], big)
            still[still.clone()] = clf.predict(x_adv, check=False).cpu() == ys[still].cpu()
    accuracy = float(still.float().mean())
    passed = accuracy <= UNBOUNDED_MAX_ACCURACY
    names = " + ".join(type(a).__name__ for a in attacks)
    evidence = f"{names} at {big!r} leaves {accuracy:.0%} accuracy on {xs.shape[0]} samples"
    if not passed:
        evidence += ": an unbounded attack should reach ~0%, so the attacks are not working on this model"
    return _timed(
        "unbounded_attack",
        passed,
        evidence,
        started,
        accuracy=accuracy,
        eps=big.eps,
        attacks=names,
        samples=int(xs.shape[0]),
    )


def check_white_vs_black_box(n_white_broken: int, n_black_only: int, n_correct: int) -> Diagnostic:
    """Black-box attacks should not break many samples that every white-box attack missed."""
    started = time.perf_counter()
    allowed = max(1, math.ceil(0.02 * n_correct))
    passed = n_black_only <= allowed
    evidence = (
        f"white-box attacks broke {n_white_broken} samples; black-box attacks broke {n_black_only} more "
        f"that white-box attacks missed (allowed {allowed})"
    )
    if not passed:
        evidence += ": gradients are misleading the white-box attacks (gradient masking)"
    return _timed(
        "white_box_vs_black_box",
        passed,
        evidence,
        started,
        white_box_broken=n_white_broken,
        black_box_only=n_black_only,
        allowed=allowed,
    )


def check_monotone(
    epsilons: Sequence[float], accuracies: Sequence[float], *, slack: float = 0.0
) -> Diagnostic:
    """Accuracy must not rise with eps by more than ``slack`` (a bigger ball contains the smaller one).

    ``accuracies`` should come from independent runs per eps (a curve built by carrying broken samples
    over is monotone by construction and proves nothing about the attack).
    """
    started = time.perf_counter()
    rises = [
        (epsilons[i], epsilons[i + 1])
        for i in range(len(accuracies) - 1)
        if accuracies[i + 1] > accuracies[i] + slack + 1e-12
    ]
    evidence = (
        "accuracy under independent PGD runs is non-increasing in eps"
        if not rises
        else "accuracy under independent PGD runs rises between eps "
        + ", ".join(f"{a:g}->{b:g}" for a, b in rises)
    )
    return _timed(
        "monotone_in_eps",
        not rises,
        evidence,
        started,
        epsilons=list(epsilons),
        robust_accuracy=list(accuracies),
    )
