"""Defensive distillation (Papernot, McDaniel, Wu, Jha & Swami, "Distillation as a Defense to
Adversarial Perturbations against Deep Neural Networks", IEEE S&P 2016, arXiv:1511.04508).

1. Train a teacher with its softmax at temperature ``T`` (loss ``CE(logits / T, y)``).
2. Label the training set with the teacher's soft labels ``softmax(teacher_logits / T)``.
3. Train the student at the same temperature on those soft labels.
4. Deploy the student at temperature 1: its logits come out about ``T`` times larger than a normally
   trained model's, the softmax saturates, and the cross-entropy gradient underflows to (almost) zero
   at most inputs.

That last step is *gradient masking*, not robustness: Carlini & Wagner ("Defensive Distillation is Not
Robust to Adversarial Examples", 2016) break it by attacking the logits (or ``logits / T``) instead of
the saturated softmax. fortify ships it so users can see that happen: a naive cross-entropy attack on
the distilled model looks weaker than on the undistilled one, and evaluation must not believe it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fortify._validate import positive_number
from fortify.model import Classifier
from fortify.training import TrainingHistory, train
from fortify.training.methods import StepContext, register_method


@register_method("temperature")
class TemperatureTraining:
    """Cross-entropy on ``logits / temperature`` (step 1 of defensive distillation)."""

    name = "temperature"

    def __init__(self, *, temperature: float = 20.0) -> None:
        self.temperature = positive_number("temperature", temperature)

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        return F.cross_entropy(clf(x) / self.temperature, y)


@register_method("distill")
class DistillTraining:
    """Cross-entropy to a teacher's soft labels at ``temperature`` (step 3 of defensive distillation)."""

    name = "distill"

    def __init__(self, *, teacher: Classifier, temperature: float = 20.0) -> None:
        if not isinstance(teacher, Classifier):
            raise TypeError(f"teacher must be a fortify Classifier, got {type(teacher).__name__}")
        self.teacher = teacher
        self.temperature = positive_number("temperature", temperature)

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        with torch.no_grad():
            soft = (self.teacher(x) / self.temperature).softmax(dim=1)
        return torch.sum(-soft * (clf(x) / self.temperature).log_softmax(dim=1), dim=1).mean()


def defensive_distillation(
    teacher: nn.Module,
    student: nn.Module,
    data: tuple[Tensor, Tensor],
    *,
    temperature: float = 20.0,
    num_classes: int | None = None,
    **train_options: Any,
) -> tuple[Classifier, dict[str, TrainingHistory]]:
    """Train ``teacher`` then ``student`` (fresh modules or Classifiers) at ``temperature``; return the
    student as a ``Classifier`` deployed at temperature 1, and both training histories.

    ``train_options`` (``epochs``, ``lr``, ``batch_size``, ``seed``, ``progress``...) go to ``ft.train``
    for both stages.
    """
    positive_number("temperature", temperature)
    classes = num_classes if num_classes is not None else int(data[1].max()) + 1
    teacher_clf = (
        teacher if isinstance(teacher, Classifier) else Classifier(teacher, num_classes=max(classes, 2))
    )
    student_clf = (
        student if isinstance(student, Classifier) else Classifier(student, num_classes=max(classes, 2))
    )
    first = train(teacher_clf, data, method="temperature", temperature=temperature, **train_options)
    teacher_clf.eval()
    second = train(
        student_clf, data, method="distill", teacher=teacher_clf, temperature=temperature, **train_options
    )
    return student_clf, {"teacher": first, "student": second}
