"""Robust generalisation gap of a saved Fashion-MNIST model: clean and PGD accuracy on training images it
fit, on the held-out tail of the training split, and on test images.

A model whose PGD accuracy on its own training images is already below a target will not reach that
target on test images by training the same recipe longer: it underfits the robust objective.

    python bench/robust_gap.py runs/harden/fast-cos30/model.safetensors --n 1000 --steps 20
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import fortify as ft
from harden import pgd_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="a model saved with ft.zoo.save (safetensors)")
    parser.add_argument("--n", type=int, default=1000, help="images per split")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clf = ft.zoo.load(args.model)
    threat = ft.Linf(args.eps)
    x_train, y_train = ft.data.load("fashion-mnist", "train")
    x_test, y_test = ft.data.load("fashion-mnist", "test", n=args.n)
    splits = {
        f"train[:{args.n}]": (x_train[: args.n], y_train[: args.n]),
        f"train[-{args.n}:] (held out by --val-n {args.n})": (x_train[-args.n :], y_train[-args.n :]),
        f"test[:{args.n}]": (x_test, y_test),
    }
    report = {
        name: {
            "clean": ft.attacks.accuracy(clf, x, y),
            f"pgd{args.steps}": pgd_accuracy(clf, x, y, threat, args.steps),
        }
        for name, (x, y) in splits.items()
    }
    print(json.dumps({"model": str(args.model), "eps": args.eps, "splits": report}, indent=2))


if __name__ == "__main__":
    main()
