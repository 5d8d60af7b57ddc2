"""Backdoors on Fashion-MNIST, measured: attack success and clean accuracy of the poisoned model, and
each training-set filter framed by a random and a perfect filter (``fortify.audits.poisoning.audit``),
plus STRIP's detection of triggered test inputs at 5% FPR on clean ones.

cnn-small, the first ``--n-train`` training images, ``--epochs`` epochs (Adam 1e-3, batch 128, seed 0),
the first ``--n-test`` test images. Configurations: ``--configs`` (``attack:trigger:rate``, e.g.
``badnets:patch:0.05,badnets:blend:0.05,clean-label:patch:0.05``).

    python bench/poison.py --configs badnets:patch:0.01,badnets:patch:0.05 --out bench/results/poison.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

import fortify as ft
from fortify.audits import poisoning as P

ROOT = Path(__file__).resolve().parent.parent


def trainer(epochs: int, seed: int):
    def fit(x: torch.Tensor, y: torch.Tensor) -> ft.Classifier:
        torch.manual_seed(seed)
        clf = ft.Classifier(ft.zoo.create("cnn-small", (1, 28, 28), 10), num_classes=10)
        ft.train(clf, (x, y), epochs=epochs, lr=1e-3, batch_size=128, seed=seed, progress=False)
        return clf

    return fit


def strip_rate(attack: P.BadNets, clf: ft.Classifier, x_test, y_test, x_pool, x_val) -> dict[str, float]:
    out = {}
    for overlay in ("blend", "add"):
        det = P.STRIP(clf, x_pool, overlay=overlay).calibrate(x_val, fpr=0.05)
        triggered = attack.apply(x_test[y_test != attack.target])
        out[overlay] = {
            "detected": float(det.flagged(triggered).double().mean()),
            "clean_flagged": float(det.flagged(x_test).double().mean()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", default="badnets:patch:0.005,badnets:patch:0.01,badnets:patch:0.05")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "poison.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = ft.data.load("fashion-mnist", "train", n=args.n_train)
    x_test, y_test = ft.data.load("fashion-mnist", "test", n=args.n_test)
    x_pool, _ = ft.data.load("fashion-mnist", "test", n=10_000)
    x_pool, x_val = x_pool[-1000:], x_pool[-3000:-1000]
    fit = trainer(args.epochs, 0)
    surrogate = None
    rows: list[dict[str, Any]] = []
    for spec in args.configs.split(","):
        kind, trigger, rate = spec.split(":")
        options = {"trigger": trigger, "rate": float(rate), "target": 0, "seed": 0}
        if kind == "clean-label":
            surrogate = surrogate or fit(x, y)
            attack: P.BadNets = P.CleanLabel(eps=0.1, **options)  # type: ignore[arg-type]
        else:
            attack = P.BadNets(**options)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        section = P.audit(attack, fit, x, y, x_test, y_test, surrogate=surrogate, progress=print)
        x_p, y_p, _ = (
            attack.poison(x, y, surrogate) if isinstance(attack, P.CleanLabel) else attack.poison(x, y)
        )
        section["strip"] = strip_rate(attack, fit(x_p, y_p), x_test, y_test, x_pool, x_val)
        section["config"], section["wall_s"] = spec, time.perf_counter() - t0
        rows.append(section)
        print(json.dumps(section, indent=1), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=2))
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
