"""Stand-ins for your own code: a model, data as NumPy arrays, and a training loop of your own.

The other examples import these; replace them with yours. Run it alone to train the model and write
what the `fortify` command reads (see github-actions-robustness.yml):

    cd examples && python your_model.py --out ../runs/examples
    fortify evaluate --model your_model:small_cnn --weights ../runs/examples/weights.safetensors \
        --data npz:../runs/examples/digits.npz --eps 0.1 --out ../runs/examples/eval.json

`--model your_model:small_cnn` is an import path: typing it is the consent to run this file's code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from torch import nn


class SmallCNN(nn.Module):
    """Your model: any ``nn.Module`` from images ``(N, 1, 8, 8)`` in [0, 1] to logits ``(N, classes)``."""

    def __init__(self, classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * width * 2 * 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def small_cnn(width: int = 16) -> nn.Module:
    """The factory ``fortify --model your_model:small_cnn [--model-arg width=16]`` calls."""
    return SmallCNN(width=width)


def your_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(x_train, y_train), (x_test, y_test)``: float32 images ``(N, 1, 8, 8)`` in [0, 1], int64 labels
    (scikit-learn's 1,797 handwritten digits, split 1,400 / 397)."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def train_your_way(module: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 15, seed: int = 0) -> None:
    """Your own training loop (plain PyTorch: fortify is not needed to train)."""
    torch.manual_seed(seed)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    module.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(xs)).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(module(xs[batch]), ys[batch]).backward()
            optimizer.step()
    module.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples"), help="folder to write into")
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    (x_train, y_train), (x_test, y_test) = your_data()
    module = small_cnn()
    train_your_way(module, x_train, y_train, epochs=args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(module.state_dict(), str(args.out / "weights.safetensors"))  # a plain state dict
    np.savez(args.out / "digits.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    with torch.no_grad():
        accuracy = (module(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
    print(f"test accuracy {accuracy:.1%}; wrote weights.safetensors and digits.npz to {args.out}")


if __name__ == "__main__":
    main()
