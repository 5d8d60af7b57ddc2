"""The attack contract, checked once for every attack listed in ``cases.py``."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fortify as ft
from tests.attacks.cases import CASES, AttackCase

PAIRS = [(case, norm) for case in CASES for norm in case.threats]
IDS = [f"{case.id}-{norm}" for case, norm in PAIRS]
TARGETED = [(case, norm) for case, norm in PAIRS if case.make().supports_targeted]


def _threat(case: AttackCase, norm: str, scale: float = 1.0) -> ft.Threat:
    return case.threat(norm, scale)


@pytest.fixture
def model(request, case):
    """The case's model and test data: ``(clf, x, y)`` from the fixture the case names."""
    return request.getfixturevalue(case.model)


@pytest.mark.parametrize(("case", "norm"), PAIRS, ids=IDS)
def test_output_stays_in_ball_and_bounds_with_same_shape_dtype_device(model, case, norm):
    clf, x, y = model
    threat = _threat(case, norm)
    x_adv = case.make()(clf, x[:32], y[:32], threat)
    assert x_adv.shape == x[:32].shape and x_adv.dtype == x.dtype and x_adv.device == x.device
    assert bool(threat.contains(x_adv, x[:32]).all())
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert bool(torch.isfinite(x_adv).all())


@pytest.mark.parametrize(("case", "norm"), PAIRS, ids=IDS)
def test_misclassified_samples_are_returned_unchanged(model, case, norm):
    clf, x, y = model
    wrong = (y[:16] + 1) % clf.num_classes  # every sample "misclassified" w.r.t. these labels
    x_adv = case.make()(clf, x[:16], wrong, _threat(case, norm))
    already = clf.predict(x[:16]) != wrong
    assert bool(already.all())
    assert torch.equal(x_adv, x[:16])


@pytest.mark.parametrize(("case", "norm"), PAIRS, ids=IDS)
def test_failed_samples_are_no_worse_than_clean(model, case, norm):
    clf, x, y = model
    threat = _threat(case, norm, scale=0.1)  # too small to break most samples
    x_adv = case.make()(clf, x[:32], y[:32], threat)
    with torch.no_grad():
        clean_loss = torch.nn.functional.cross_entropy(clf(x[:32]), y[:32], reduction="none")
        adv_logits = clf(x_adv)
        adv_loss = torch.nn.functional.cross_entropy(adv_logits, y[:32], reduction="none")
    failed = adv_logits.argmax(1) == y[:32]
    assert bool((adv_loss[failed] >= clean_loss[failed] - 1e-5).all())


@pytest.mark.parametrize(("case", "norm"), PAIRS, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.int16])
def test_labels_of_any_integer_dtype(model, case, norm, dtype):
    clf, x, y = model
    threat = _threat(case, norm)
    x_ref = case.make()(clf, x[:8], y[:8], threat)
    assert torch.equal(case.make()(clf, x[:8], y[:8].to(dtype), threat), x_ref)


@pytest.mark.parametrize(("case", "norm"), PAIRS, ids=IDS)
def test_batch_of_one_and_reproducible_under_seed(model, case, norm):
    clf, x, y = model
    threat = _threat(case, norm)
    one = case.make()(clf, x[:1], y[:1], threat)
    assert one.shape == x[:1].shape
    assert torch.equal(case.make()(clf, x[:4], y[:4], threat), case.make()(clf, x[:4], y[:4], threat))


@pytest.mark.parametrize(
    ("case", "norm"),
    [p for p in PAIRS if p[0].breaks_undefended],
    ids=[i for p, i in zip(PAIRS, IDS, strict=True) if p[0].breaks_undefended],
)
def test_breaks_an_undefended_model(model, case, norm):
    clf, x, y = model
    x_adv = case.make()(clf, x[:64], y[:64], _threat(case, norm))
    assert float((clf.predict(x_adv) == y[:64]).float().mean()) <= 0.1


@pytest.mark.parametrize(("case", "norm"), PAIRS, ids=IDS)
@given(eps_scale=st.floats(0.01, 1.5), n=st.integers(1, 12), double=st.booleans())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # ``model`` is a session fixture
def test_property_ball_bounds_dtype_for_any_eps_and_size(model, case, norm, eps_scale, n, double):
    clf, x, y = model
    xs = x[:n].double() if double else x[:n]
    model = clf.double() if double else clf
    try:
        threat = _threat(case, norm, eps_scale)
        x_adv = case.make()(model, xs, y[:n], threat)
    finally:
        clf.float()
    assert x_adv.dtype == xs.dtype and x_adv.shape == xs.shape
    assert bool(threat.contains(x_adv, xs).all())
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


@pytest.mark.parametrize(("case", "norm"), PAIRS, ids=IDS)
def test_returned_logits_are_the_models_logits_at_the_returned_points(model, case, norm):
    clf, x, y = model
    out = case.make().attack(clf, x[:24], y[:24], _threat(case, norm))
    assert out.logits is not None and out.logits.shape == (24, clf.num_classes)
    with torch.no_grad():
        expected = clf(out.x_adv)
    assert torch.allclose(out.logits, expected, atol=1e-5)


@pytest.mark.parametrize(("case", "norm"), TARGETED, ids=[f"{c.id}-{n}" for c, n in TARGETED])
def test_targets_equal_to_true_labels_are_refused(model, case, norm):
    clf, x, y = model
    attack = type(case.make())(targeted=True)
    targets = (y[:6] + 1) % clf.num_classes
    targets[3] = y[3]
    with pytest.raises(ValueError, match=r"1 target\(s\) equal the sample's own label \(first at index 3\)"):
        attack(clf, x[:6], targets, _threat(case, norm), labels=y[:6])


def test_labels_keyword_is_refused_for_untargeted_attacks_and_checked_for_shape(tiny_cnn):
    clf, x, y = tiny_cnn
    with pytest.raises(ValueError, match="labels= is for targeted attacks"):
        ft.attacks.FGSM()(clf, x[:4], y[:4], ft.Linf(0.1), labels=y[:4])
    with pytest.raises(ValueError, match="shaped like the targets"):
        ft.attacks.FGSM(targeted=True)(clf, x[:4], (y[:4] + 1) % 4, ft.Linf(0.1), labels=y[:3])
    ok = ft.attacks.FGSM(targeted=True)(clf, x[:4], (y[:4] + 1) % 4, ft.Linf(0.1), labels=y[:4])
    assert ok.shape == x[:4].shape


def test_fgsm_costs_one_gradient_pass_and_one_check_forward(tiny_cnn):
    """The clean check rides on FGSM's own gradient pass: rows through the model = 2 x batch."""
    clf, x, y = tiny_cnn
    rows: list[int] = []
    handle = clf.register_forward_pre_hook(lambda _m, inputs: rows.append(inputs[0].shape[0]))
    try:
        ft.attacks.FGSM()(clf, x[:20], y[:20], ft.Linf(0.3))
    finally:
        handle.remove()
    correct = int((clf.predict(x[:20]) == y[:20]).sum())
    assert rows == [20, correct]
