"""The features of one layer of a classifier: what Mahalanobis, spectral signatures and activation
clustering read.

A layer is named as in ``clf.named_modules()`` (a suffix such as ``"3"`` or ``"fc1"`` matches the end of a
full name) and its *output* is the feature; with no name, the *input* of the classifier's last
``nn.Linear`` is (the penultimate features).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fortify.model import Classifier
from fortify.types import FortifyError


def find_layer(clf: Classifier, layer: str | None) -> nn.Module:
    """The sub-module of ``clf`` called ``layer`` (None: its last ``nn.Linear``); one-line error otherwise."""
    modules = list(clf.named_modules())
    if layer is None:
        linears = [m for _, m in modules if isinstance(m, nn.Linear)]
        if not linears:
            raise FortifyError("the classifier has no nn.Linear layer: name the feature layer with layer=")
        return linears[-1]
    for name, module in modules:
        if name == layer or name.endswith("." + layer):
            return module
    names = [name for name, _ in modules if name][:12]
    raise FortifyError(f"the classifier has no layer {layer!r}; some of its layers: {names}")


def layer_features(clf: Classifier, module: nn.Module, x: Tensor, *, penultimate: bool) -> Tensor:
    """``(N, D)`` features of ``module`` while ``clf`` runs on ``x``: its input when ``penultimate``,
    else its output; differentiable."""
    captured: list[Tensor] = []
    if penultimate:
        handle = module.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    else:
        handle = module.register_forward_hook(lambda _m, _a, out: captured.append(out))
    try:
        clf(x)
    finally:
        handle.remove()
    if not captured:
        raise FortifyError("the feature layer was not run by the classifier's forward pass")
    return captured[-1].flatten(1)


@torch.no_grad()
def features_of(clf: Classifier, x: Tensor, layer: str | None = None, *, batch_size: int = 512) -> Tensor:
    """``(N, D)`` features of ``layer`` (see the module docstring) for ``x``, batched, without gradients,
    on the CPU."""
    module = find_layer(clf, layer)
    device = clf.device
    return torch.cat(
        [
            layer_features(clf, module, c.to(device), penultimate=layer is None).cpu()
            for c in x.split(batch_size)
        ]
    )
