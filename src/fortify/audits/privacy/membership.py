"""Membership inference: was this sample in the model's training set?

- ``"loss"`` (Yeom, Giacomelli, Fredrikson & Jha, CSF 2018): the negative cross-entropy loss on the
  sample; one global threshold. ``"confidence"``: the softmax probability of the true class.
- ``"lira"`` (Carlini, Chien, Nasr, Song, Terzis & Tramèr, "Membership Inference Attacks From First
  Principles", S&P 2022): train ``shadows`` models on random halves of a shadow pool and model the
  logit-scaled confidence ``phi = log(p_y / (1 - p_y))`` of each target sample. *Offline*: shadows never
  see the targets; the score is how far ``phi`` lies above the OUT distribution, ``(phi - mu_out) /
  sigma``. *Online*: each target enters half the shadows' training sets; the score is the likelihood
  ratio of ``phi`` under the IN and OUT Gaussians. Variances are fixed (one per IN / OUT over all
  samples), the paper's choice with few shadows; no query augmentation.

All attacks return a ``MembershipScore`` (AUC, TPR at 0.1% / 1% FPR, ROC). Thresholds come from
shadow data only; the targets' membership labels are used only to score the attack.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from fortify import _validate as check
from fortify.audits.privacy.roc import MembershipScore, summarise
from fortify.model import Classifier
from fortify.types import FortifyError

ATTACKS = ("loss", "confidence", "lira")
Trainer = Callable[[Tensor, Tensor], Classifier]
_EPS = 1e-12


@torch.no_grad()
def _true_class_prob(clf: Classifier, x: Tensor, y: Tensor) -> np.ndarray:
    probs = clf.predict_proba(x).cpu()
    return probs.gather(1, y.cpu()[:, None]).squeeze(1).double().numpy()


def _phi(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _pair(data: tuple[Tensor, Tensor], what: str) -> tuple[Tensor, Tensor]:
    if not isinstance(data, tuple) or len(data) != 2:
        raise FortifyError(f"{what} must be a pair (x, y)")
    x, y = data
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or y.shape != (x.shape[0],) or x.shape[0] == 0:
        raise FortifyError(f"{what} must be (x (N, ...), y (N,)) with N > 0")
    return x, y


def membership_inference(
    clf: Classifier,
    members: tuple[Tensor, Tensor],
    non_members: tuple[Tensor, Tensor],
    *,
    attack: str = "loss",
    shadows: int = 8,
    shadow_data: tuple[Tensor, Tensor] | None = None,
    train_fn: Trainer | None = None,
    online: bool = False,
    seed: int = 0,
) -> MembershipScore:
    """Score how well ``attack`` tells ``members`` (training samples of ``clf``) from ``non_members``.

    ``lira`` needs ``shadow_data`` (a pool from the same distribution, disjoint from the targets) and
    ``train_fn(x, y) -> Classifier`` (trains a shadow like the target model was trained).
    """
    attack = check.choice("attack", attack, ATTACKS)
    x_in, y_in = _pair(members, "members")
    x_out, y_out = _pair(non_members, "non_members")
    if attack in ("loss", "confidence"):
        p_in, p_out = _true_class_prob(clf, x_in, y_in), _true_class_prob(clf, x_out, y_out)
        transform = np.log if attack == "loss" else (lambda p: p)
        return summarise(attack, transform(np.clip(p_in, _EPS, 1)), transform(np.clip(p_out, _EPS, 1)))
    shadows = check.integer("shadows", shadows, low=2 if online else 1)
    if shadow_data is None or train_fn is None:
        raise FortifyError("lira needs shadow_data=(x_pool, y_pool) and train_fn=(x, y) -> Classifier")
    x_pool, y_pool = _pair(shadow_data, "shadow_data")
    x_t, y_t = torch.cat([x_in, x_out]), torch.cat([y_in, y_out])
    target_phi = _phi(_true_class_prob(clf, x_t, y_t))
    generator = torch.Generator().manual_seed(seed)
    phis, ins = [], []
    for _ in range(shadows):
        half = torch.rand(x_pool.shape[0], generator=generator) < 0.5
        x_s, y_s = x_pool[half], y_pool[half]
        chosen = (
            torch.rand(x_t.shape[0], generator=generator) < 0.5
            if online
            else torch.zeros(x_t.shape[0], dtype=torch.bool)
        )
        if online:
            x_s, y_s = torch.cat([x_s, x_t[chosen]]), torch.cat([y_s, y_t[chosen]])
        shadow = train_fn(x_s, y_s)
        phis.append(_phi(_true_class_prob(shadow, x_t, y_t)))
        ins.append(chosen.numpy())
    phi, inside = np.stack(phis), np.stack(ins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a target never IN (or OUT) takes the global mean
        return _lira_score(phi, inside, target_phi, x_in.shape[0], online, shadows)


def _lira_score(
    phi: np.ndarray, inside: np.ndarray, target_phi: np.ndarray, n: int, online: bool, shadows: int
) -> MembershipScore:
    out_mask = ~inside
    mu_out = np.nanmean(np.where(out_mask, phi, np.nan), axis=0)
    sigma_out = float(np.nanstd(np.where(out_mask, phi, np.nan))) + _EPS
    if not online:
        score = (target_phi - np.nan_to_num(mu_out, nan=float(np.nanmean(mu_out)))) / sigma_out
        variant = "offline"
    else:
        mu_in = np.nanmean(np.where(inside, phi, np.nan), axis=0)
        sigma_in = float(np.nanstd(np.where(inside, phi, np.nan))) + _EPS
        mu_in = np.nan_to_num(mu_in, nan=float(np.nanmean(mu_in)))
        mu_out = np.nan_to_num(mu_out, nan=float(np.nanmean(mu_out)))
        score = stats.norm.logpdf(target_phi, mu_in, sigma_in) - stats.norm.logpdf(
            target_phi, mu_out, sigma_out
        )
        variant = "online"
    return summarise(f"lira-{variant}", score[:n], score[n:], shadows=shadows)
