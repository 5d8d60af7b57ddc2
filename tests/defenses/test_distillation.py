"""Defensive distillation masks gradients: naive cross-entropy attacks look weaker on it, and the
same attack on the temperature-rescaled logits shows that the robustness was never there."""

from __future__ import annotations

import torch

import fortify as ft
from fortify.defenses import defensive_distillation

T = 100.0
EPS = 0.3


class _Rescaled(torch.nn.Module):
    def __init__(self, clf: ft.Classifier, temperature: float) -> None:
        super().__init__()
        self.clf, self.temperature = clf, temperature

    def forward(self, x):
        return self.clf(x) / self.temperature


def _accuracy(clf, x, y, attack):
    return float((clf.predict(attack(clf, x, y, ft.Linf(EPS))) == y).float().mean())


def test_distillation_masks_gradients_and_naive_attacks_overestimate_it(tiny_cnn):
    standard, x_test, y_test = tiny_cnn
    x, y = ft.data.load("synthetic", "train")
    torch.manual_seed(0)
    teacher = ft.zoo.create("cnn-tiny", (1, 8, 8), 4)
    student = ft.zoo.create("cnn-tiny", (1, 8, 8), 4)
    distilled, histories = defensive_distillation(
        teacher, student, (x, y), temperature=T, epochs=8, lr=1e-2, batch_size=64, progress=False
    )
    assert set(histories) == {"teacher", "student"}
    assert float((distilled.predict(x_test) == y_test).float().mean()) > 0.9

    xv = x_test.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(distilled(xv), y_test, reduction="sum")
    (grad,) = torch.autograd.grad(loss, xv)
    zero_grad = float((grad.flatten(1).abs().sum(1) == 0).float().mean())
    assert zero_grad > 0.5, "the saturated softmax gives exactly zero gradient on most inputs"

    fgsm = ft.attacks.FGSM()
    naive_distilled = _accuracy(distilled, x_test, y_test, fgsm)
    naive_standard = _accuracy(standard, x_test, y_test, fgsm)
    # recorded: naive FGSM / PGD "find" the distilled model far more robust than the standard one
    assert naive_distilled > naive_standard + 0.3, (naive_distilled, naive_standard)
    pgd = ft.attacks.PGD(steps=10)
    assert _accuracy(distilled, x_test, y_test, pgd) > _accuracy(standard, x_test, y_test, pgd) + 0.3

    rescaled = ft.Classifier(_Rescaled(distilled, T), num_classes=4)
    adaptive = float(
        (distilled.predict(fgsm(rescaled, x_test, y_test, ft.Linf(EPS))) == y_test).float().mean()
    )
    assert adaptive < naive_distilled - 0.3, (adaptive, naive_distilled)
