"""Harden your own model with adversarial training, and measure what it bought.

    python examples/harden_your_model.py                  # ~2 minutes on 2 CPU cores
    python examples/harden_your_model.py --epochs 2 --n 50 --out /tmp/harden

Fine-tunes your trained model (``your_model.py``) with fast adversarial training (N-FGSM, de Jorge et
al. 2022) on a held-out validation split, keeps the epoch with the best robust validation accuracy,
then evaluates the model before and after with the same suite and prints both. The hardened weights
are a plain state dict: ``fortify evaluate --model your_model:small_cnn --weights hardened.safetensors``.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

from safetensors.torch import save_file
from your_model import small_cnn, train_your_way, your_data

import fortify as ft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="adversarial fine-tuning epochs")
    parser.add_argument("--eps", type=float, default=0.1, help="Linf radius to train and evaluate at")
    parser.add_argument("--n", type=int, default=200, help="test images to evaluate on")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/harden"))
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = your_data()
    module = small_cnn()
    train_your_way(module, x_train, y_train)
    before = ft.Classifier(module, num_classes=10)
    after = ft.Classifier(copy.deepcopy(module), num_classes=10)

    threat = ft.Linf(args.eps)
    history = ft.train(
        after,
        (x_train[:1200], y_train[:1200]),
        method="fast",
        threat=threat,
        epochs=args.epochs,
        lr=1e-3,
        val=(x_train[1200:], y_train[1200:]),  # clean and PGD-10 accuracy every epoch
        keep_best=True,  # the epoch with the best robust validation accuracy
    )
    print(f"best epoch {history.best_epoch}; events: {[e.kind for e in history.events] or 'none'}")

    x, y = x_test[: args.n], y_test[: args.n]
    for name, clf in (("before", before), ("after", after)):
        result = ft.evaluate(clf, x, y, threat, suite="standard")
        print(f"{name}: clean {result.clean_accuracy:.1%}, robust {result.robust_accuracy:.1%}")
        result.save(str(args.out / f"eval-{name}.json"))

    args.out.mkdir(parents=True, exist_ok=True)
    save_file(after.module.state_dict(), str(args.out / "hardened.safetensors"))
    print(f"wrote {args.out / 'hardened.safetensors'}; compare: fortify report {args.out}/eval-*.json")


if __name__ == "__main__":
    main()
