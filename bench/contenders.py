"""Who runs each benchmark row: fortify, a plain PyTorch loop, torchattacks, ART and Foolbox.

Every builder takes the classifier (an ``nn.Module`` whose weights still require gradients, as a user's
model would) and returns ``run(x, y) -> x_adv`` for one batch, or raises ``Skip`` saying why it cannot.
All contenders of a row do the same work: same eps, step size, steps, restarts, every sample, every step.
Peers are imported lazily so a missing peer only skips its cells.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

import fortify as ft

RunFn = Callable[[Tensor, Tensor], "Tensor | ft.attacks.AttackOutput"]
Builder = Callable[[ft.Classifier, "Row", int], RunFn]
LIBRARIES = ("fortify", "plain", "torchattacks", "art", "foolbox")
UNBOUNDED_L2 = 28.0  # the diameter of [0, 1]^784: a minimum-norm attack's ball that never binds


class Skip(Exception):
    """A contender that cannot run this row; the message says why."""


@dataclass(frozen=True)
class Row:
    """One attack configuration run by every library that has it."""

    key: str
    title: str
    norm: str
    eps: float
    steps: int
    metric: str = "robust_accuracy"  # or "median_l2" (minimum-norm attacks)
    note: str = ""
    builders: dict[str, Builder] = field(default_factory=dict)

    @property
    def step_size(self) -> float:
        return 2.5 * self.eps / self.steps  # Madry et al.'s choice; fortify's PGD default


def _fortify_attack(name: str, **kwargs: object) -> ft.attacks.Attack:
    cls = getattr(ft.attacks, name, None)
    if cls is None:
        raise Skip(f"fortify.attacks.{name} does not exist yet")
    params = inspect.signature(cls).parameters
    missing = [k for k in kwargs if k not in params]
    if missing:
        raise Skip(f"fortify.attacks.{name} takes no {', '.join(missing)} (has {', '.join(params)})")
    return cls(**kwargs)


def _fortify(name: str, threat: Callable[[Row], ft.Threat], **kwargs: object) -> Builder:
    def build(clf: ft.Classifier, row: Row, batch: int) -> RunFn:
        attack = _fortify_attack(name, **kwargs)
        return lambda x, y: attack.attack(clf, x, y, threat(row))  # x_adv and the logits of its final check

    return build


def _linf(row: Row) -> ft.Threat:
    return ft.Linf(row.eps)


def _unbounded_l2(row: Row) -> ft.Threat:
    return ft.L2(UNBOUNDED_L2)


def _plain_fgsm(clf: ft.Classifier, row: Row, batch: int) -> RunFn:
    def run(x: Tensor, y: Tensor) -> Tensor:
        x_var = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(clf(x_var), y), x_var)
        return (x + row.eps * grad.sign()).clamp(0, 1)

    return run


def _plain_pgd(clf: ft.Classifier, row: Row, batch: int) -> RunFn:
    """The loop a careful user writes: random start, input gradients only (torch.autograd.grad)."""

    def run(x: Tensor, y: Tensor) -> Tensor:
        x_adv = (x + torch.empty_like(x).uniform_(-row.eps, row.eps)).clamp(0, 1)
        for _ in range(row.steps):
            x_adv.requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(clf(x_adv), y), x_adv)
            x_adv = x_adv.detach() + row.step_size * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - row.eps), x + row.eps).clamp(0, 1)
        return x_adv.detach()

    return run


def _import(module: str, hint: str):  # noqa: ANN202 - returns a module
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise Skip(f"{module} not installed ({hint}): {exc}") from exc


def _torchattacks(make: Callable[[object, ft.Classifier, Row], object]) -> Builder:
    def build(clf: ft.Classifier, row: Row, batch: int) -> RunFn:
        ta = _import("torchattacks", "pip install --no-deps torchattacks")
        attack = make(ta, clf, row)
        return lambda x, y: attack(x, y)

    return build


def _art(make: Callable[[object, object, Row, int], object]) -> Builder:
    def build(clf: ft.Classifier, row: Row, batch: int) -> RunFn:
        _import("art", "pip install adversarial-robustness-toolbox packaging")
        from art.estimators.classification import PyTorchClassifier

        estimator = PyTorchClassifier(
            clf,
            loss=torch.nn.CrossEntropyLoss(),
            input_shape=(1, 28, 28),
            nb_classes=clf.num_classes,
            clip_values=clf.bounds,
            device_type="cpu",
        )
        attacks = _import("art.attacks.evasion", "pip install adversarial-robustness-toolbox")
        attack = make(attacks, estimator, row, batch)

        def run(x: Tensor, y: Tensor) -> Tensor:
            return torch.from_numpy(attack.generate(x=x.numpy(), y=y.numpy())).to(x.dtype)

        return run

    return build


def _foolbox(make: Callable[[object, Row], object], *, minimum_norm: bool = False) -> Builder:
    def build(clf: ft.Classifier, row: Row, batch: int) -> RunFn:
        fb = _import("foolbox", "pip install foolbox")
        model = fb.PyTorchModel(clf, bounds=clf.bounds)
        attack = make(fb, row)
        epsilons = None if minimum_norm else row.eps

        def run(x: Tensor, y: Tensor) -> Tensor:
            _, clipped, success = attack(model, x, y, epsilons=epsilons)
            # Foolbox's minimum-norm attacks return zeros where they failed: give back the clean input
            return torch.where(success.reshape(-1, 1, 1, 1), clipped, x) if minimum_norm else clipped

        return run

    return build


def _missing(reason: str) -> Builder:
    def build(clf: ft.Classifier, row: Row, batch: int) -> RunFn:
        raise Skip(reason)

    return build


def _art_slow(why: str) -> Builder:
    return _missing(f"ART's {why}; --slow-peers runs it")


ROWS: list[Row] = [
    Row(
        "fgsm",
        "FGSM",
        "linf",
        0.1,
        1,
        builders={
            "fortify": _fortify("FGSM", _linf),
            "plain": _plain_fgsm,
            "torchattacks": _torchattacks(lambda ta, clf, r: ta.FGSM(clf, eps=r.eps)),
            "art": _art(lambda a, est, r, b: a.FastGradientMethod(est, norm=np.inf, eps=r.eps, batch_size=b)),
            "foolbox": _foolbox(lambda fb, r: fb.attacks.FGSM()),
        },
    ),
    Row(
        "pgd-40",
        "PGD-40",
        "linf",
        0.1,
        40,
        note="random start, step 2.5*eps/40, no early stop",
        builders={
            "fortify": _fortify("PGD", _linf, steps=40, early_stop=False),
            "plain": _plain_pgd,
            "torchattacks": _torchattacks(
                lambda ta, clf, r: ta.PGD(clf, eps=r.eps, alpha=r.step_size, steps=r.steps, random_start=True)
            ),
            "art": _art(
                lambda a, est, r, b: a.ProjectedGradientDescentPyTorch(
                    est,
                    norm=np.inf,
                    eps=r.eps,
                    eps_step=r.step_size,
                    max_iter=r.steps,
                    num_random_init=1,
                    batch_size=b,
                    verbose=False,
                )
            ),
            "foolbox": _foolbox(
                lambda fb, r: fb.attacks.LinfPGD(abs_stepsize=r.step_size, steps=r.steps, random_start=True)
            ),
        },
    ),
    Row(
        "apgd-ce-100",
        "APGD-CE-100",
        "linf",
        0.1,
        100,
        note="1 restart",
        builders={
            "fortify": _fortify("APGD", _linf, loss="ce", steps=100, restarts=1, early_stop=False),
            "torchattacks": _torchattacks(
                lambda ta, clf, r: ta.APGD(
                    clf, norm="Linf", eps=r.eps, steps=r.steps, n_restarts=1, loss="ce", seed=0
                )
            ),
            "art": _art(
                lambda a, est, r, b: a.AutoProjectedGradientDescent(
                    est,
                    norm=np.inf,
                    eps=r.eps,
                    eps_step=2 * r.eps,
                    max_iter=r.steps,
                    nb_random_init=1,
                    batch_size=b,
                    loss_type="cross_entropy",
                    verbose=False,
                )
            ),
            "foolbox": _missing("Foolbox has no APGD"),
        },
    ),
    Row(
        "cw-l2-100",
        "C&W-L2-100",
        "l2",
        UNBOUNDED_L2,
        100,
        metric="median_l2",
        note="c = 1, 1 binary-search step, Adam lr 0.01, no abort",
        builders={
            "fortify": _fortify(
                "CW",
                _unbounded_l2,
                steps=100,
                initial_const=1.0,
                binary_search_steps=1,
                lr=0.01,
                abort_early=False,
            ),
            "torchattacks": _torchattacks(
                lambda ta, clf, r: ta.CW(clf, c=1.0, kappa=0, steps=r.steps, lr=0.01)
            ),
            "art": _art_slow("C&W is ~40x slower than the others (ANCHORS: 776 s / 200 images)"),
            "foolbox": _foolbox(
                lambda fb, r: fb.attacks.L2CarliniWagnerAttack(
                    binary_search_steps=1, steps=r.steps, stepsize=0.01, initial_const=1.0, abort_early=False
                ),
                minimum_norm=True,
            ),
        },
    ),
    Row(
        "square-1000",
        "Square-1000",
        "linf",
        0.1,
        1000,
        note="1,000 queries, p_init 0.8",
        builders={
            "fortify": _fortify("Square", _linf, n_queries=1000, p_init=0.8),
            "torchattacks": _torchattacks(
                lambda ta, clf, r: ta.Square(
                    clf, norm="Linf", eps=r.eps, n_queries=r.steps, n_restarts=1, p_init=0.8, seed=0
                )
            ),
            "art": _art_slow("Square took 432 s on 20 images here (torchattacks: 15 s)"),
            "foolbox": _missing("Foolbox has no Square attack"),
        },
    ),
]


# Peers so slow here that they run only with --slow-peers.
SLOW_PEERS: dict[tuple[str, str], Builder] = {
    ("cw-l2-100", "art"): _art(
        lambda a, est, r, b: a.CarliniL2Method(
            est,
            confidence=0.0,
            learning_rate=0.01,
            binary_search_steps=1,
            max_iter=r.steps,
            initial_const=1.0,
            batch_size=b,
            verbose=False,
        )
    ),
    ("square-1000", "art"): _art(
        lambda a, est, r, b: a.SquareAttack(
            est,
            norm=np.inf,
            eps=r.eps,
            max_iter=r.steps,
            p_init=0.8,
            nb_restarts=1,
            batch_size=b,
            verbose=False,
        )
    ),
}


def builder_for(row: Row, library: str, *, slow_peers: bool) -> Builder:
    if slow_peers and (row.key, library) in SLOW_PEERS:
        return SLOW_PEERS[row.key, library]
    return row.builders.get(library, _missing(f"no {library} implementation of {row.title}"))
