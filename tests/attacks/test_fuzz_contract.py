"""Property-based fuzz of the whole attack contract: every attack in ``cases.py`` x random tiny models x
random input bounds x dtypes x norms x targets.

For every returned point: shape, dtype and device of the input; ``threat.contains(x_adv, x)`` (with its
default tolerance, and exactly: ``norm_of(x_adv - x) <= eps`` with none); inside the bounds; samples
already adversarial on entry come back bit-identical; a sample not broken is no worse (lower attack
loss) than its clean input. A mismatch of input and weight dtype is a ``FortifyError``.

``make test`` runs a few examples per attack; ``-m slow`` runs the long profile
(``FORTIFY_FUZZ_EXAMPLES`` per attack and norm, 150 by default; see BENCHMARKS.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import fortify as ft
from fortify.attacks.base import attack_loss, is_success
from tests.attacks.cases import CASES, AttackCase

PAIRS = [(case, norm) for case in CASES for norm in case.threats]
IDS = [f"{case.id}-{norm}" for case, norm in PAIRS]
NEED_THREE_CLASSES = {"apgd-dlr-no-early-stop", "apgd-t", "apgd-t-bf16", "evade-detector"}
"""Cases using the DLR loss, which needs three classes (the attack refuses two, tested in test_apgd)."""
FAST = settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
LONG = settings(
    max_examples=int(os.environ.get("FORTIFY_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Draw:
    """One random situation: the model, its data, the threat and the targets."""

    clf: ft.Classifier
    x: torch.Tensor
    y: torch.Tensor
    threat: ft.Threat
    targeted: bool


def _module(shape: tuple[int, ...], classes: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if len(shape) == 1:
        return nn.Sequential(nn.Linear(shape[0], 8), nn.ReLU(), nn.Linear(8, classes))
    c, h, w = shape
    return nn.Sequential(
        nn.Conv2d(c, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * h * w, classes)
    )


@st.composite
def draws(draw: st.DrawFn, case: AttackCase, norm: str) -> Draw:
    seed = draw(st.integers(0, 2**16))
    tabular = case.model == "tiny_mlp"
    guarded = case.model == "tiny_guarded"
    shape = (draw(st.integers(3, 8)),) if tabular else (draw(st.sampled_from([1, 3])), 4, 4)
    classes = draw(st.integers(3 if case.id in NEED_THREE_CLASSES else 2, 5))
    low, span = (
        (0.0, 1.0)
        if guarded
        else (draw(st.sampled_from([-1.0, 0.0, 0.5])), draw(st.sampled_from([0.5, 1.0, 3.0])))
    )
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    n = draw(st.integers(1, 6))
    generator = torch.Generator().manual_seed(seed)
    x = (low + span * torch.rand((n, *shape), generator=generator)).to(dtype)
    if draw(st.booleans()):  # some coordinates exactly on the bounds
        x = torch.where(torch.rand(x.shape, generator=generator) < 0.2, torch.full_like(x, low + span), x)
    y = torch.randint(0, classes, (n,), generator=generator)
    clf = ft.Classifier(_module(shape, classes, seed), num_classes=classes, bounds=(low, low + span)).to(
        dtype
    )
    if guarded:
        detector = ft.detect.FeatureSqueezing(clf, [ft.defenses.BitDepth(2)])
        calibration = torch.rand((32, *shape), generator=generator).to(dtype)
        clf = ft.defenses.defend(clf, detector=detector.calibrate(calibration, fpr=0.1))
    scale = draw(st.floats(0.001, 1.5))
    eps = case.eps[norm] * scale * (span if norm != "l0" else 1.0)
    threat = ft.L0(max(1, round(eps))) if norm == "l0" else ft.make_threat(norm, eps)
    targeted = case.make().supports_targeted and classes > 2 and draw(st.booleans()) and not guarded
    if targeted:
        y = (y + torch.randint(1, classes, (n,), generator=generator)) % classes
    return Draw(clf, x, y, threat, targeted)


def _build(case: AttackCase, targeted: bool) -> ft.attacks.Attack:
    attack = case.make()
    attack.targeted = attack.targeted or targeted  # attacks read their configuration at call time
    return attack


def _check_contract(case: AttackCase, d: Draw) -> None:
    attack = _build(case, d.targeted)
    x_adv = attack(d.clf, d.x, d.y, d.threat)
    assert x_adv.shape == d.x.shape and x_adv.dtype == d.x.dtype and x_adv.device == d.x.device
    assert bool(d.threat.contains(x_adv, d.x).all()), "contains() disagrees with the attack"
    assert bool((d.threat.norm_of(x_adv - d.x) <= d.threat.eps).all()), "outside the ball exactly"
    low, high = d.clf.bounds
    assert float(x_adv.min()) >= low and float(x_adv.max()) <= high
    if case.model == "tiny_guarded":
        return  # broken means misclassified and unflagged there; the ball and bounds are what we fuzz
    with torch.no_grad():
        clean, adv = d.clf(d.x), d.clf(x_adv)
    already = is_success(clean, d.y, d.targeted)
    assert torch.equal(x_adv[already], d.x[already]), "an already-adversarial sample was moved"
    broken = is_success(adv, d.y, d.targeted)
    before, after = attack_loss(clean, d.y, d.targeted), attack_loss(adv, d.y, d.targeted)
    worse = ~broken & ~already & (after < before - 1e-4 * (1 + before.abs()))
    assert not bool(worse.any()), f"unbroken samples came back worse than clean: {worse.nonzero()}"


def _check_dtype_mismatch(case: AttackCase, d: Draw) -> None:
    other = torch.float16 if d.x.dtype == torch.float64 else torch.float64
    with pytest.raises(ft.FortifyError, match="inputs are torch.float"):
        _build(case, d.targeted)(d.clf, d.x.to(other), d.y, d.threat)


@pytest.mark.parametrize(("case", "norm"), PAIRS, ids=IDS)
def test_fuzz_attack_contract(case: AttackCase, norm: str) -> None:
    @FAST
    @given(draws(case, norm))
    def run(d: Draw) -> None:
        _check_contract(case, d)
        _check_dtype_mismatch(case, d)

    run()


@pytest.mark.slow
@pytest.mark.parametrize(("case", "norm"), PAIRS, ids=IDS)
def test_fuzz_attack_contract_long(case: AttackCase, norm: str) -> None:
    cases = 0

    @LONG
    @given(draws(case, norm))
    def run(d: Draw) -> None:
        nonlocal cases
        cases += 1
        _check_contract(case, d)

    run()
    print(f"fuzz {case.id}-{norm}: {cases} cases clean")  # BENCHMARKS.md counts these (pytest -s)
    assert cases >= min(LONG.max_examples, 10)
