"""Guard your own model at run time: detectors in front of it, one verdict per input, and an honest
measure of what the guard stops when the attacker knows it is there.

    python examples/guard_your_model.py                   # ~1 minute on 2 CPU cores
    python examples/guard_your_model.py --n 40 --out /tmp/guard

Builds an ``ft.Guard`` around your model (``your_model.py``) with median-filter preprocessing and
three detectors, calibrates it to review 5% of held-out clean images, prints a few verdicts, attacks
the guard as deployed (adaptive attacks with its policy in the objective, beside naive attacks on the
bare model), and saves the signed, hashed bundle that ``fortify serve --guard`` serves.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from your_model import SmallCNN, train_your_way, your_data

import fortify as ft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="test images to attack the guard with")
    parser.add_argument("--eps", type=float, default=0.1, help="Linf radius")
    parser.add_argument("--suite", default="standard", help="the adaptive suite: quick, standard, strong")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/guard"))
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = your_data()
    # A bundle names each model's architecture; registered, yours is rebuilt by ft.Guard.load in any
    # process that has imported this registration (a bundle never runs code it carries).
    if "small-cnn" not in ft.zoo.names():
        ft.zoo.register("small-cnn")(lambda input_shape, num_classes: SmallCNN(num_classes))
    module = ft.zoo.create("small-cnn", (1, 8, 8), 10)
    train_your_way(module, x_train[:1000], y_train[:1000])
    clf = ft.Classifier(module, num_classes=10)
    # the guard takes tensors (ft.evaluate and ft.train take NumPy arrays too)
    x_val, y_val = torch.from_numpy(x_train[1000:]), torch.from_numpy(y_train[1000:])  # never trained on
    x, y = torch.from_numpy(x_test[: args.n]), torch.from_numpy(y_test[: args.n])

    guard = ft.Guard(
        clf,
        preprocess=[ft.defenses.MedianFilter(2)],
        detectors=["squeeze", "mahalanobis", "input-stats"],
    )
    guard.calibrate(x_val, fpr=0.05, y=y_val)  # reviews 5% of these clean images
    for verdict in guard(x[:3]):
        print(f"label {verdict.label} ({verdict.confidence:.2f}): {verdict.status.value} {verdict.reasons}")

    result = ft.runtime.evaluate_guard(guard, x, y, ft.Linf(args.eps), args.suite)
    section = result.sections["guard"]
    print(
        f"clean review rate {section['clean_review_rate']:.1%}, adaptive attack success through the "
        f"guard {section['adaptive_success_rate']:.1%}"
    )

    guard.save(str(args.out / "bundle"), result=result)
    ft.Guard.load(str(args.out / "bundle"))  # hashes (and, with FORTIFY_BUNDLE_KEY, the signature) checked
    print(f"wrote {args.out / 'bundle'}: fortify guard inspect {args.out / 'bundle'}")


if __name__ == "__main__":
    main()
