"""Suites: standard and strong are at least as strong as quick, run only on unbroken samples, and
choose their budgets from the evidence."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.evaluation import Evidence, build_suite


def by_name(entries):
    return {e.name: e for e in entries}


def test_standard_attacks_only_unbroken_samples_cheapest_first(tiny_cnn):
    clf, x, y = tiny_cnn
    result = ft.evaluate(clf, x[:8], y[:8], ft.Linf(0.3), suite="standard")
    assert [r.name for r in result.per_attack] == ["apgd-ce", "apgd-t", "apgd-t-near", "square-probe"]
    for before, after in zip(result.per_attack, result.per_attack[1:], strict=False):
        assert after.ran_on == "remaining" and after.n_attacked == before.n_attacked - before.n_succeeded
    assert result.robust_accuracy == 0.0 and result.suite == "standard"


@pytest.mark.slow
def test_standard_is_at_least_as_strong_as_quick(tiny_cnn):
    clf, x, y = tiny_cnn
    x, y = x[:16], y[:16]
    standard = ft.evaluate(clf, x, y, ft.Linf(0.2), suite="standard")
    quick = ft.evaluate(clf, x, y, ft.Linf(0.2), suite="quick")
    assert standard.robust_accuracy <= quick.robust_accuracy
    assert standard.per_attack[1].n_attacked > 0, (
        "some samples must survive APGD-CE for this to mean anything"
    )


@pytest.mark.slow
def test_strong_is_at_least_as_strong_as_standard_sample_by_sample(tiny_cnn):
    clf, x, y = tiny_cnn
    x, y = x[:24], y[:24]
    standard = ft.evaluate(clf, x, y, ft.Linf(0.15), suite="standard")
    strong = ft.evaluate(clf, x, y, ft.Linf(0.15), suite="strong")
    assert 0 < standard.robust_accuracy < standard.clean_accuracy, "the radius must matter"
    assert all(b.robust <= a.robust for a, b in zip(standard.samples, strong.samples, strict=True))


def test_standard_probes_with_square_and_goes_full_when_gradients_look_masked():
    healthy = by_name(build_suite("standard", ft.Linf(0.1), 0, Evidence(num_classes=10)))
    masked = by_name(
        build_suite("standard", ft.Linf(0.1), 0, Evidence(num_classes=10, gradients_informative=False))
    )
    probe = healthy["square-probe"]
    assert probe.probe == 16 and probe.attack.n_queries == 500 and probe.black_box
    assert probe.escalation is not None and probe.escalation.attack.n_queries == 5000
    assert probe.escalation.black_box and probe.escalation.name == "square"
    assert masked["square"].attack.n_queries == 5000 and masked["square"].probe is None
    assert not healthy["apgd-ce"].black_box


def test_standard_chooses_targets_by_each_samples_margin():
    ten = by_name(build_suite("standard", ft.Linf(0.1), 0, Evidence(num_classes=10)))
    top, near, close = ten["apgd-t"], ten["apgd-t-near"], ten["apgd-t-close"]
    assert top.close_calls is None and top.attack.n_target_classes == 1
    assert near.close_calls == 0.9 and (near.attack.skip_targets, near.attack.n_target_classes) == (1, 2)
    assert close.close_calls == 0.5 and (close.attack.skip_targets, close.attack.n_target_classes) == (3, 6)
    four = by_name(build_suite("standard", ft.Linf(0.1), 0, Evidence(num_classes=4)))
    assert "apgd-t-close" not in four and four["apgd-t-near"].attack.n_target_classes == 2
    saturated = by_name(build_suite("standard", ft.Linf(0.1), 0, Evidence(10, ce_gradients_vanish=True)))
    assert "apgd-ce" not in saturated and saturated["apgd-dlr"].attack.loss == "dlr"
    assert saturated["apgd-t-near"].close_calls is None and saturated["apgd-t-close"].close_calls is None
    three = by_name(build_suite("standard", ft.Linf(0.1), 0, Evidence(num_classes=3)))
    assert three["apgd-t-near"].attack.n_target_classes == 1 and "apgd-t-close" not in three


def test_strong_targets_every_class():
    standard = by_name(build_suite("standard", ft.Linf(0.1), 0, Evidence(num_classes=10)))
    strong = by_name(build_suite("strong", ft.Linf(0.1), 0, Evidence(num_classes=10)))
    assert strong["apgd-t"].attack.n_target_classes == 9
    assert strong["apgd-ce"].attack.restarts > standard["apgd-ce"].attack.restarts
    assert strong["square"].attack.n_queries > standard["square-probe"].escalation.attack.n_queries
    assert "fmn" in strong


def test_suites_adapt_to_tables_two_classes_and_random_models():
    table = by_name(build_suite("standard", ft.L2(0.5), 0, Evidence(num_classes=2, images=False)))
    assert list(table) == ["apgd-ce"]
    random = by_name(build_suite("standard", ft.Linf(0.1), 0, Evidence(num_classes=10, randomized=True)))
    assert not random["apgd-ce"].attack.early_stop and not random["apgd-t"].attack.early_stop


def test_quick_switches_to_a_margin_loss_when_cross_entropy_gradients_vanish():
    plain = [e.name for e in build_suite("quick", ft.Linf(0.1), 0, Evidence(num_classes=10))]
    saturated = [
        e.name for e in build_suite("quick", ft.Linf(0.1), 0, Evidence(10, ce_gradients_vanish=True))
    ]
    assert plain == ["fgsm", "pgd"] and saturated == ["fgsm", "apgd-dlr"]


def test_standard_runs_on_tabular_data():
    x, y = ft.data.load("breast-cancer", "test", n=12)
    torch.manual_seed(0)
    clf = ft.Classifier(ft.zoo.create("mlp", (30,), 2), num_classes=2)
    result = ft.evaluate(clf, x, y, ft.L2(0.5), suite="standard")
    assert [r.name for r in result.per_attack] == ["apgd-ce"]
    assert {d.name for d in result.diagnostics} == {
        "outputs_are_logits",
        "gradient_masking",
        "randomness",
        "gradients",
        "iterative_vs_single_step",
        "unbounded_attack",
    }


def test_unknown_suite_names_the_choices():
    with pytest.raises(ft.FortifyError, match="standard"):
        build_suite("fastest", ft.Linf(0.1), 0)


def test_entries_narrow_to_close_calls_and_probes_and_escalate_only_when_the_probe_breaks(tiny_cnn):
    from dataclasses import replace

    from fortify.evaluation.ledger import Ledger
    from fortify.evaluation.suites import SuiteEntry, named

    clf, x, y = tiny_cnn
    x, y = x[:40], y[:40]
    ledger = Ledger.start(clf, x, y)
    ledger.worst_true_prob[:10] = 0.2  # pretend earlier attacks came close on the first ten
    close = SuiteEntry("close", named("fgsm", 0).attack, close_calls=0.5)
    assert ledger.targets(close).tolist() == [i for i in range(10) if ledger.correct[i]]
    probe = SuiteEntry("probe", named("fgsm", 0).attack, probe=4)
    chosen = ledger.targets(probe)
    assert (
        chosen.numel() == 4
        and chosen[0] == ledger.correct.nonzero()[0]
        and chosen[-1] == ledger.correct.nonzero()[-1]
    )
    # an escalation runs only after its entry broke something, and then on every survivor
    weak = replace(named("pgd", 0, steps=1), name="weak", probe=4, escalation=named("pgd", 0, steps=20))
    no_radius = ledger.run_entry(weak, clf, x, ft.Linf(0.0), 250)
    assert [r.name for r in no_radius] == ["weak"]
    records = ledger.run_entry(weak, clf, x, ft.Linf(0.3), 250)
    assert [r.name for r in records] == ["weak", "pgd"] and records[0].n_attacked == 4
    assert records[1].n_attacked == int(ledger.correct.sum()) - records[0].n_succeeded


def test_a_second_targeted_pass_skips_the_targets_the_first_one_tried():
    from fortify.attacks import APGD

    with pytest.raises(ft.FortifyError, match="skip_targets"):
        APGD(loss="dlr", skip_targets=3)
    with pytest.raises(ft.FortifyError, match="skip_targets"):
        APGD(loss="dlr", n_target_classes=3, skip_targets=-1)
    logits = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    clf = ft.Classifier(torch.nn.Linear(1, 5), num_classes=5)
    with torch.no_grad():
        clf.module.weight.zero_()
        clf.module.bias.copy_(logits[0])
    targets = APGD(loss="dlr", n_target_classes=2, skip_targets=1)._targets(
        clf, torch.zeros(1, 1), torch.tensor([0])
    )
    assert [int(t) for t in targets] == [2, 3]  # ranks 2 and 3 after the true class 0 and the first target 1
