"""defend() and Ensemble: a defended model is a Classifier every attack runs on, with honest flags."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.defenses import JPEG, BitDepth, Ensemble, GaussianNoise, MedianFilter, defend
from tests.conftest import fresh_cnn_tiny


def test_defended_model_is_a_classifier_whose_flags_reflect_its_parts(tiny_cnn):
    clf, x, y = tiny_cnn
    assert defend(clf) is clf
    smooth = defend(clf, preprocess=[MedianFilter(2)])
    assert smooth.differentiable and not smooth.randomized
    squeezed = defend(clf, preprocess=[BitDepth(5), GaussianNoise(0.05)])
    assert not squeezed.differentiable and squeezed.randomized
    assert isinstance(squeezed, ft.Classifier)
    info = squeezed.describe()
    assert [p["name"] for p in info["preprocess"]] == ["BitDepth", "GaussianNoise"]
    x_adv = ft.attacks.PGD(steps=5)(squeezed, x[:32], y[:32], ft.Linf(0.1))
    assert ft.Linf(0.1).contains(x_adv, x[:32]).all()


def test_bpda_forward_gives_gradients_where_the_plain_forward_gives_none(tiny_cnn):
    clf, x, _ = tiny_cnn
    defended = defend(clf, preprocess=[BitDepth(3)])
    xv = x[:16].clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(defended(xv).sum(), xv)
    (bpda,) = torch.autograd.grad(defended.forward_bpda(xv).sum(), xv)
    assert plain.abs().sum() == 0, "quantisation masks the gradient"
    assert bpda.abs().sum() > 0
    assert torch.allclose(defended.forward_bpda(x[:16]), defended(x[:16]))


def test_ensemble_modes(tiny_cnn):
    _, x, _ = tiny_cnn
    members = [fresh_cnn_tiny(0), fresh_cnn_tiny(1), fresh_cnn_tiny(2)]
    stacked = torch.stack([m(x) for m in members])
    logits = Ensemble(members, mode="mean_logits")(x)
    assert torch.allclose(logits, stacked.mean(0), atol=1e-6)
    probs = Ensemble(members, mode="mean_probs")(x).softmax(1)
    assert torch.allclose(probs, stacked.softmax(-1).mean(0), atol=1e-5)
    vote = Ensemble(members, mode="vote")
    votes = torch.nn.functional.one_hot(stacked.argmax(-1), 4).sum(0)
    pred = vote.predict(x).cpu()
    assert torch.equal(votes.gather(1, pred[:, None]).squeeze(1), votes.max(1).values)
    assert not vote.differentiable and Ensemble(members).differentiable
    assert torch.allclose(vote.straight_through(x), vote(x), atol=1e-6)


def test_ensemble_flags_and_validation(tiny_cnn):
    clf, _, _ = tiny_cnn
    noisy = defend(fresh_cnn_tiny(1), preprocess=[GaussianNoise(0.1)])
    assert Ensemble([clf, noisy]).randomized
    combined = defend(clf, preprocess=[JPEG(80)], ensemble=[fresh_cnn_tiny(1)], ensemble_mode="mean_probs")
    assert isinstance(combined.model, Ensemble) and combined.model.mode == "mean_probs"
    other = ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 3), num_classes=3)
    with pytest.raises(ft.FortifyError, match="disagree"):
        Ensemble([clf, other])
    with pytest.raises(ft.FortifyError, match="mode"):
        Ensemble([clf], mode="median")
    with pytest.raises(ft.FortifyError, match="at least one"):
        Ensemble([])
    with pytest.raises(TypeError):
        defend(clf, preprocess=[torch.nn.Identity()])
