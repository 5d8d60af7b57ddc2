"""Backdoors: triggers keep the bounds, poisoning changes exactly what it says, and the defenses are
measured against the known poison."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.audits import poisoning as P


def _train(x, y, seed=0, epochs=6):
    torch.manual_seed(seed)
    clf = ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), num_classes=4)
    ft.train(clf, (x, y), epochs=epochs, lr=3e-3, batch_size=64, seed=seed, progress=False)
    return clf


@pytest.fixture(scope="module")
def poisoned_setup():
    x, y = ft.data.make_synthetic(1200, seed=31)
    x_test, y_test = ft.data.make_synthetic(400, seed=32)
    attack = P.BadNets(trigger="patch", size=3, rate=0.1, target=0, seed=0)
    x_p, y_p, idx = attack.poison(x, y)
    return attack, (x, y), (x_p, y_p, idx), (x_test, y_test), _train(x_p, y_p)


def test_triggers_stay_in_bounds_and_change_only_their_region():
    x = torch.rand(5, 1, 8, 8)
    patched = P.PatchTrigger(3)(x)
    assert torch.equal(patched[..., :5, :], x[..., :5, :]) and torch.equal(patched[..., :, :5], x[..., :, :5])
    assert set(patched[..., 5:, 5:].unique().tolist()) == {0.0, 1.0}
    blended = P.BlendTrigger(0.2, seed=1)(x)
    assert blended.min() >= 0 and blended.max() <= 1 and not torch.equal(blended, x)
    assert torch.equal(blended, P.BlendTrigger(0.2, seed=1)(x)), "the pattern is fixed by its seed"


def test_poisoning_changes_exactly_the_returned_indices(poisoned_setup):
    attack, (x, y), (x_p, y_p, idx), _, _ = poisoned_setup
    assert idx.numel() == 120 and torch.equal(idx, idx.sort().values)
    changed = ((x_p != x).flatten(1).any(dim=1) | (y_p != y)).nonzero().squeeze(1)
    assert set(changed.tolist()) <= set(idx.tolist())
    assert (y_p[idx] == 0).all() and (y[idx] != 0).all(), "all-to-one relabels non-target samples"
    _, y_all, idx_all = P.BadNets(rate=0.1, mode="all-to-all").poison(x, y)
    assert torch.equal(y_all[idx_all], (y[idx_all] + 1) % 4)


def test_a_backdoored_model_obeys_the_trigger_and_a_clean_one_does_not(poisoned_setup):
    attack, (x, y), _, (x_test, y_test), backdoored = poisoned_setup
    clean_model = _train(x, y)
    assert attack.success_rate(backdoored, x_test, y_test) > 0.8
    assert attack.success_rate(clean_model, x_test, y_test) < 0.5
    accuracy = float((backdoored.predict(x_test) == y_test).double().mean())
    assert accuracy > 0.8, "the backdoor hides behind good clean accuracy"


def test_spectral_signatures_and_clustering_find_the_poison_better_than_chance(poisoned_setup):
    _, _, (x_p, y_p, idx), _, model = poisoned_setup
    base_rate = idx.numel() / x_p.shape[0]
    flagged = P.spectral_signatures(model, x_p, y_p, expected_rate=0.1)
    precision, recall = P.precision_recall(flagged, idx)
    assert precision > 2 * base_rate and recall > 0.5
    clustered = P.activation_clustering(model, x_p, y_p)
    precision, recall = P.precision_recall(clustered, idx)
    assert precision > 2 * base_rate and recall > 0.5


def test_strip_scores_triggered_inputs_above_clean_ones_and_serves_in_a_guard(poisoned_setup, tmp_path):
    attack, _, _, (x_test, y_test), model = poisoned_setup
    pool, _ = ft.data.make_synthetic(200, seed=40)
    x_val, _ = ft.data.make_synthetic(400, seed=41)
    strip = P.STRIP(model, pool, overlay="blend").calibrate(x_val, fpr=0.05)  # bright 8x8 images
    triggered = attack.apply(x_test[y_test != 0])
    assert float(strip.flagged(triggered).double().mean()) > 0.3
    assert float(strip.flagged(x_test).double().mean()) < 0.15
    guard = ft.Guard([model], detectors=[P.STRIP(None, pool)]).calibrate(x_val)
    guard.save(str(tmp_path / "b"))
    loaded = ft.Guard.load(str(tmp_path / "b"))
    assert [v.status for v in loaded(triggered[:20])] == [v.status for v in guard(triggered[:20])]


def test_guard_build_holds_strip_and_its_reloaded_bundle_flags_triggered_inputs(poisoned_setup, tmp_path):
    """`fortify guard build --detectors strip`: the bundle carries STRIP's overlays (clean train images),
    reloads, and sends triggered inputs to review far more often than clean ones."""
    from fortify.cli.main import main

    attack, _, _, (x_test, y_test), model = poisoned_setup
    weights = tmp_path / "backdoored.safetensors"
    ft.zoo.save(model, weights, dataset="synthetic")
    bundle = tmp_path / "bundle"
    args = ["guard", "build", "--model", str(weights), "--calibrate", "synthetic", "--detectors", "strip"]
    args += ["--strip-overlay", "blend", "--fpr", "0.05", "--calibration-n", "300", "--out", str(bundle)]
    assert main(args) == 0
    guard = ft.Guard.load(str(bundle))
    assert guard.names == ["strip"] and guard.calibration["strip_pool"]["split"] == "train"
    strip = guard.detectors[0]
    assert strip.overlay == "blend" and strip.overlays.shape == (16, 1, 8, 8)
    triggered = attack.apply(x_test[y_test != 0])
    caught = sum(v.status.value != "ACCEPTED" for v in guard(triggered)) / triggered.shape[0]
    clean = sum(v.status.value != "ACCEPTED" for v in guard(x_test)) / x_test.shape[0]
    # this tiny model's backdoor lowers STRIP's entropy only on part of the triggered inputs (~20% at
    # 5% FPR); a detector that did not see the trigger would flag both at the same rate
    assert caught > 0.15 and clean < 0.12 and caught > 2 * clean
    assert main([*args[:-1], str(tmp_path / "b2"), "--strip-overlay", "mix"]) == 2


def test_the_audit_frames_each_filter_between_random_and_perfect(poisoned_setup):
    attack, (x, y), _, (x_test, y_test), _ = poisoned_setup
    section = P.audit(
        attack, lambda a, b: _train(a, b, epochs=4), x, y, x_test, y_test, inspections=["spectral"]
    )
    assert section["n_poisoned"] == 120 and section["undefended"]["attack_success_rate"] > 0.8
    assert section["perfect_filter"]["attack_success_rate"] < 0.5
    spectral = section["inspections"]["spectral"]
    assert spectral["n_flagged"] > 0 and set(spectral) >= {
        "precision",
        "recall",
        "after_filter",
        "random_filter",
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: P.BadNets(rate=1.5), "rate must lie in"),
        (lambda: P.BadNets(trigger="sticker"), "trigger must be one of"),
        (
            lambda: P.BadNets(size=9).poison(torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])),
            "does not fit",
        ),
        (
            lambda: P.BadNets(target=7).poison(torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])),
            "out of range",
        ),
        (lambda: P.CleanLabel(mode="all-to-all"), "all-to-one"),
    ],
)
def test_bad_settings_are_one_line_errors(make, message):
    with pytest.raises(ft.FortifyError, match=message):
        make()
