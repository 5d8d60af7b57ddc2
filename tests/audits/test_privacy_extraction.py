"""Membership inference separates members of an overfit model, and extraction steals a victim's labels."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.audits import extraction, privacy


def _fit(x, y, epochs=30, seed=0):
    torch.manual_seed(seed)
    clf = ft.Classifier(ft.zoo.create("mlp", (1, 8, 8), 4), num_classes=4)
    ft.train(clf, (x, y), epochs=epochs, lr=3e-3, batch_size=32, seed=seed, progress=False)
    return clf


@pytest.fixture(scope="module")
def overfit():
    """An MLP trained long on 100 noisy synthetic images: it memorises its members."""
    x, y = ft.data.make_synthetic(600, seed=51)
    noisy = (x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    y_rand = y.clone()
    y_rand[::3] = torch.randint(0, 4, (y[::3].shape[0],), generator=torch.Generator().manual_seed(1))
    members, non_members, pool = (
        (noisy[:100], y_rand[:100]),
        (noisy[100:200], y_rand[100:200]),
        (noisy[200:400], y_rand[200:400]),  # shadows train on halves: 100 samples, like the target
    )
    return _fit(*members, epochs=150), members, non_members, pool


def test_loss_attack_separates_members_of_an_overfit_model(overfit):
    clf, members, non_members, _ = overfit
    score = privacy.membership_inference(clf, members, non_members, attack="loss")
    assert score.auc > 0.7 and score.n_members == 100
    assert 0.0 <= score.tpr_at_fpr[0.001] <= score.tpr_at_fpr[0.01] <= 1.0
    assert score.roc[0][0] == 0.0 and score.roc[1][-1] == 1.0
    assert set(score.to_dict()) >= {"auc", "tpr_at_fpr", "roc"}


def test_lira_offline_and_online_run_with_shadows(overfit):
    clf, members, non_members, pool = overfit
    for online in (False, True):
        score = privacy.membership_inference(
            clf,
            members,
            non_members,
            attack="lira",
            shadows=4,
            shadow_data=pool,
            train_fn=lambda a, b: _fit(a, b, epochs=150),
            online=online,
        )
        assert score.attack == ("lira-online" if online else "lira-offline") and score.auc > 0.6


def test_membership_attacks_refuse_what_they_cannot_use(overfit):
    clf, members, non_members, _ = overfit
    with pytest.raises(ft.FortifyError, match="lira needs shadow_data"):
        privacy.membership_inference(clf, members, non_members, attack="lira")
    with pytest.raises(ft.FortifyError, match="attack must be one of"):
        privacy.membership_inference(clf, members, non_members, attack="oracle")


def test_knockoff_steals_a_victim_and_more_queries_agree_more(tiny_cnn):
    victim, x_test, y_test = tiny_cnn
    queries, _ = ft.data.make_synthetic(800, seed=61)

    def student():
        torch.manual_seed(1)
        return ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), num_classes=4)

    _, curve = extraction.knockoff(victim, queries, [20, 800], student, x_test, y_test, epochs=5)
    assert (
        curve.budgets == [20, 800] and curve.agreement[-1] > 0.8 and curve.agreement[-1] >= curve.agreement[0]
    )
    labels_only = extraction.hardened(victim, "top1")
    _, curve_top1 = extraction.knockoff(labels_only, queries, [800], student, x_test, y_test, epochs=5)
    assert curve_top1.output == "labels" and curve_top1.agreement[0] > 0.7
    assert labels_only.queries == 800 + x_test.shape[0]


def test_output_hardening_keeps_labels_where_it_promises(tiny_cnn):
    victim, x, _ = tiny_cnn
    assert extraction.accuracy_cost(victim, extraction.hardened(victim, "top1"), x) == 0.0
    rounded = extraction.hardened(victim, "round:2")
    assert extraction.accuracy_cost(victim, rounded, x) < 0.05
    probs = extraction.reverse_sigmoid(victim.predict_proba(x))
    assert torch.allclose(probs.sum(1), torch.ones(len(x)), atol=1e-5) and (probs >= 0).all()
    with pytest.raises(ft.FortifyError, match="unknown output hardening"):
        extraction.hardened(victim, "noise")
    with pytest.raises(ft.FortifyError, match="budget must be an integer"):
        extraction.knockoff(victim, x, [0], lambda: victim, x, x[:, 0, 0, 0].long())


def test_points_made_on_the_stolen_model_transfer_to_the_victim(tiny_cnn):
    victim, x_test, y_test = tiny_cnn
    queries, _ = ft.data.make_synthetic(800, seed=62)

    def student():
        torch.manual_seed(2)
        return ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), num_classes=4)

    stolen, _ = extraction.knockoff(victim, queries, [800], student, x_test, y_test, epochs=5)
    served = extraction.hardened(victim, "top1")
    report = extraction.transfer(stolen, served, x_test[:100], y_test[:100], ft.Linf(0.3), "mi-fgsm")
    assert report["surrogate_success"] > 0.8 and report["victim_success"] > 0.3
    with pytest.raises(ft.FortifyError, match="not a gradient attack"):
        extraction.transfer(stolen, served, x_test, y_test, ft.Linf(0.3), "square")


def test_query_sets_stay_in_bounds_and_perturbed_queries_sit_near_their_seeds():
    pool, _ = ft.data.make_synthetic(50, seed=63)
    assert torch.equal(extraction.query_set("natural", pool, 20), pool[:20])
    noise = extraction.query_set("noise", pool, 30, bounds=(0.0, 1.0))
    assert noise.shape == (30, 1, 8, 8) and noise.min() >= 0.0 and noise.max() <= 1.0
    near = extraction.query_set("perturbed", pool, 25, eps=0.05, seeds=5)
    seeds = pool[:5].repeat(5, 1, 1, 1)
    assert near.shape == (25, 1, 8, 8) and (near - seeds).abs().max() <= 0.05 + 1e-6
    assert not torch.equal(near[0], near[5])  # the same seed, a fresh perturbation
    with pytest.raises(ft.FortifyError, match="the pool holds 50"):
        extraction.query_set("natural", pool, 60)
    with pytest.raises(ft.FortifyError, match="unknown query set"):
        extraction.query_set("web", pool, 5)


def test_an_interrupted_theft_measures_the_budgets_its_answers_cover(tiny_cnn):
    """A Ctrl-C while querying keeps the answers received: budgets they cover are measured, the rest not,
    and every measured point reaches ``on_update`` (where the CLI saves)."""
    victim, x_test, y_test = tiny_cnn
    queries, _ = ft.data.make_synthetic(300, seed=64)
    answered = []

    def answer(x):
        if sum(answered) >= 100:
            raise KeyboardInterrupt
        answered.append(x.shape[0])
        return victim.predict_proba(x, check=False)

    bb = ft.BlackBox(answer, 4)
    seen = []

    def student():
        torch.manual_seed(4)
        return ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), num_classes=4)

    _, curve = extraction.knockoff(
        bb,
        queries,
        [50, 100, 300],
        student,
        x_test,
        y_test,
        epochs=1,
        chunk=50,
        victim_labels=victim.predict(x_test),
        on_update=lambda c: seen.append(list(c.budgets)),
    )
    assert curve.queried == 100 and curve.stopped == "interrupted" and curve.budgets == [50, 100]
    assert seen == [[50], [50, 100]] and len(curve.agreement) == 2 and curve.victim_accuracy > 0.9


def test_rounded_probabilities_are_renormalised_not_softmaxed(tiny_cnn):
    """A round:1 victim's answers are still probabilities: the student's targets keep their peak."""
    from fortify.audits.extraction.knockoff import _answers

    victim, x, _ = tiny_cnn
    rounded = extraction.hardened(victim, "round:1")
    targets = _answers(rounded, x[:50])
    raw = rounded.scores(x[:50])
    assert torch.allclose(targets.sum(1), torch.ones(50), atol=1e-5)
    assert torch.allclose(targets, raw / raw.sum(1, keepdim=True), atol=1e-6)
    logits = ft.BlackBox(lambda q: victim(q), 4)
    assert torch.allclose(_answers(logits, x[:5]), victim(x[:5]).softmax(1), atol=1e-5)
