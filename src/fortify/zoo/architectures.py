"""Reference architectures, built by name so saved weights can be rebuilt without pickling code."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from fortify._registry import Registry
from fortify.types import FortifyError

SPEC_ATTRIBUTE = "fortify_spec"
"""The attribute of a zoo module that ``zoo.save`` reads its architecture, input shape and classes from."""

Builder = Callable[[tuple[int, ...], int], nn.Module]
_ARCHITECTURES: Registry[Builder] = Registry("architecture")


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make an architecture builder known to ``zoo.create`` and ``zoo.load``."""
    return _ARCHITECTURES.register(name)


def names() -> list[str]:
    return _ARCHITECTURES.names()


def create(arch: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A freshly initialised ``arch`` for inputs ``input_shape`` (without batch) and ``num_classes``."""
    module = _ARCHITECTURES.get(arch)(tuple(input_shape), int(num_classes))
    spec = {"arch": arch, "input_shape": list(input_shape), "num_classes": int(num_classes)}
    setattr(module, SPEC_ATTRIBUTE, spec)
    return module


def _image_shape(arch: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise FortifyError(f"{arch} takes images (C, H, W), got input shape {input_shape}")
    channels, height, width = input_shape
    return channels, height, width


@register("cnn-small")
def cnn_small(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """conv32-conv64-maxpool-fc128-fc10 (~1.2 M parameters on 28x28): the ANCHORS benchmark model."""
    c, h, w = _image_shape("cnn-small", input_shape)
    return nn.Sequential(
        nn.Conv2d(c, 32, 3),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * ((h - 4) // 2) * ((w - 4) // 2), 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


@register("cnn-deep")
def cnn_deep(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The "SmallCNN" TRADES trains on MNIST (Zhang et al., ICML 2019): conv32-conv32-maxpool-
    conv64-conv64-maxpool-fc200-fc200-fc10, 3x3 convolutions, ReLU (0.31 M parameters and 10.0 M
    multiply-adds on 28x28: deeper than cnn-small at less compute)."""
    c, h, w = _image_shape("cnn-deep", input_shape)
    side_h, side_w = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
    if min(side_h, side_w) < 1:
        raise FortifyError(f"cnn-deep needs images of at least 14x14, got {h}x{w}")
    return nn.Sequential(
        nn.Conv2d(c, 32, 3),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * side_h * side_w, 200),
        nn.ReLU(),
        nn.Linear(200, 200),
        nn.ReLU(),
        nn.Linear(200, num_classes),
    )


@register("cnn-wide")
def cnn_wide(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The MNIST challenge model of Madry et al. (ICLR 2018): conv32 5x5 - maxpool - conv64 5x5 -
    maxpool - fc1024 - fc10, ReLU (3.3 M parameters and 13.9 M multiply-adds on 28x28: about
    cnn-small's compute, 12.0 M, with 2.7x its parameters)."""
    c, h, w = _image_shape("cnn-wide", input_shape)
    return nn.Sequential(
        nn.Conv2d(c, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (h // 4) * (w // 4), 1024),
        nn.ReLU(),
        nn.Linear(1024, num_classes),
    )


@register("cnn-tiny")
def cnn_tiny(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Two small convolutions and a linear head: trains in seconds, for tests and examples."""
    c, h, w = _image_shape("cnn-tiny", input_shape)
    return nn.Sequential(
        nn.Conv2d(c, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * math.ceil(h / 2) * math.ceil(w / 2), num_classes),
    )


@register("cnn-tanh")
def cnn_tanh(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The end-to-end CNN that Tramèr & Boneh ("Differentially Private Learning Needs Better Features
    (Or Much More Data)", ICLR 2021) train with DP-SGD on (Fashion-)MNIST, after Papernot et al. 2021
    (tempered sigmoids): conv16 8x8/2 - maxpool 2/1 - conv32 4x4/2 - maxpool 2/1 - fc32 - fc10, tanh
    activations, no BatchNorm (~26 k parameters on 28x28; images of at least 16x16)."""
    c, h, w = _image_shape("cnn-tanh", input_shape)

    def side(n: int) -> int:
        return ((n + 4 - 8) // 2 + 1 - 1 - 4) // 2 + 1 - 1

    if min(h, w) < 16:
        raise FortifyError(f"cnn-tanh needs images of at least 16x16, got {h}x{w}")
    return nn.Sequential(
        nn.Conv2d(c, 16, 8, stride=2, padding=2),
        nn.Tanh(),
        nn.MaxPool2d(2, 1),
        nn.Conv2d(16, 32, 4, stride=2),
        nn.Tanh(),
        nn.MaxPool2d(2, 1),
        nn.Flatten(),
        nn.Linear(32 * side(h) * side(w), 32),
        nn.Tanh(),
        nn.Linear(32, num_classes),
    )


@register("mlp")
def mlp(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Two hidden layers of 64 units, for tabular data (or flattened images)."""
    features = math.prod(input_shape)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(features, 64),
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.ReLU(),
        nn.Linear(64, num_classes),
    )
