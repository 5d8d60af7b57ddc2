"""DP-SGD inside the training loop, through Opacus: per-sample gradients, Poisson batches, the accountant.

The loop asks this module for three things when its method declares a ``privacy`` spec
(``fortify.training.dp``): ``prepare`` checks, before the optimizer exists, that every layer has
per-sample gradients (BatchNorm is refused with one line naming the layer, or replaced by GroupNorm);
``PrivateRun`` then turns the loop's optimizer into Opacus's ``DPOptimizer`` (clip each sample's
gradient, add Gaussian noise, count the step in the accountant) and its batches into Poisson samples
(Opacus's ``DPDataLoader``), with the noise multiplier found by ``make_private_with_epsilon`` for the
target epsilon over the planned epochs; ``budget`` says what was spent.

Opacus's hooks are attached to the model itself (``wrap_model=False``: it trains in place and is
saved as it is) and capture activations only inside a training step (``capturing``), paused again
for the inner attacks of adversarial methods (``paused``): validation, the overfitting checks and
attacks never produce per-sample gradients. Noise and batches draw from torch's generator, seeded by
the loop (reproducible per seed), or with ``secure_rng`` from Opacus's cryptographically secure one.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader, TensorDataset

from fortify.attacks.base import check_labels
from fortify.data.batches import iter_batches
from fortify.model import Classifier
from fortify.result.identity import PRIVACY_BUDGET, PrivacyBudget
from fortify.training.dp import PrivacySpec
from fortify.training.source import BatchSource, TensorSource
from fortify.types import FortifyError

logger = logging.getLogger(__name__)

INSTALL = "pip install 'fortify[privacy]'"


def _require_opacus() -> None:
    try:
        import opacus  # noqa: F401
    except ImportError:
        raise FortifyError(f"differentially private training needs Opacus: {INSTALL}") from None


def prepare(clf: Classifier, spec: PrivacySpec) -> list[str]:
    """Make sure Opacus can compute per-sample gradients of ``clf.module``; call before building the
    optimizer. A BatchNorm layer mixes the samples of a batch, so it is refused (``FortifyError``
    naming the layer) unless ``spec.replace_batchnorm``: then each one is replaced in place by a fresh
    ``GroupNorm`` (Opacus's ``ModuleValidator.fix``: its learned scale and running statistics do not
    carry over). Returns the names of the replaced layers. Any other layer Opacus cannot handle is
    refused with one line naming it."""
    _require_opacus()
    from opacus.validators import ModuleValidator

    module = clf.module
    norms = [name for name, layer in module.named_modules() if isinstance(layer, _BatchNorm)]
    if norms and (not spec.replace_batchnorm or "" in norms):
        layer = module.get_submodule(norms[0])
        raise FortifyError(
            f"differentially private training cannot use BatchNorm: layer {norms[0] or '(the model)'!r} "
            f"({type(layer).__name__}) normalises each sample with its batch, so no sample has a gradient "
            "of its own; pass replace_batchnorm=True (CLI --replace-batchnorm) to swap it for GroupNorm"
        )
    for name in norms:
        parent_name, _, child = name.rpartition(".")
        old = module.get_submodule(name)
        reference = next(iter([*old.parameters(), *old.buffers()]), None)
        new = ModuleValidator.fix(old)
        if reference is not None:
            new = new.to(
                device=reference.device, dtype=reference.dtype if reference.is_floating_point() else None
            )
        setattr(module.get_submodule(parent_name), child, new)
        logger.warning("dp: replaced BatchNorm layer %r by %s", name, new)
    for name, layer in module.named_modules():
        validator = ModuleValidator.VALIDATORS.get(type(layer))
        problems = validator(layer) if validator is not None else []
        if problems:
            reason = str(problems[0]).split(". ")[0].strip()
            raise FortifyError(
                f"Opacus cannot train layer {name or '(the model)'!r} ({type(layer).__name__}) "
                f"privately: {reason}"
            )
    return norms


def _loader(source: TensorSource | BatchSource) -> DataLoader[Any]:
    """A ``DataLoader`` Opacus can turn into Poisson batches: over the tensors, or the user's own."""
    if isinstance(source, TensorSource):
        return DataLoader(TensorDataset(source.x, source.y), batch_size=source.batch_size)
    if isinstance(source.data, DataLoader):
        return source.data
    raise FortifyError(
        "dp training draws Poisson samples from a data set: give (x, y) tensors or a DataLoader over a "
        f"Dataset, not a {type(source.data).__name__} of batches"
    )


def _opacus_refusal(exc: ValueError, spec: PrivacySpec, epochs: int, sample_rate: float) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "budget is too low" in text:
        return (
            f"epsilon {spec.epsilon:g} at delta {spec.delta:g} cannot be reached over {epochs} epoch(s) at "
            f"sample rate {sample_rate:.3g} (no noise multiplier is large enough): raise epsilon, or "
            "train fewer epochs or on more data"
        )
    return f"Opacus refused the private run: {text[:200]}"


class PoissonSource:
    """The loop's batches for a private run: Opacus's Poisson batches (each training sample in a batch
    independently with probability ``sample_rate``; a batch may be empty and still counts as a step),
    checked against the classifier; ``head`` is the original source's."""

    def __init__(self, loader: DataLoader[Any], source: TensorSource | BatchSource, clf: Classifier) -> None:
        self.loader, self.clf, self.head = loader, clf, source.head
        self.steps = len(loader)

    def epoch(self) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in iter_batches(self.loader, keep_empty=True):
            if x.shape[0]:
                self.clf.check_input(x)
            yield x, check_labels(y, x.shape[0], self.clf.num_classes)


class PrivateRun:
    """One DP-SGD run of ``clf`` (after ``prepare``): ``optimizer`` (Opacus's ``DPOptimizer`` around
    ``optimizer``) and ``source`` (Poisson batches) replace the loop's; ``capturing`` / ``paused``
    switch the per-sample gradient capture; ``budget`` is what was spent; ``close`` removes Opacus's
    hooks and attributes from the model (always call it)."""

    def __init__(
        self,
        clf: Classifier,
        spec: PrivacySpec,
        optimizer: Any,
        source: TensorSource | BatchSource,
        epochs: int,
    ) -> None:
        from opacus import PrivacyEngine

        self.spec, self.epochs, self.module = spec, epochs, clf.module
        loader = _loader(source)
        clf.module.train()  # Opacus checks the mode; the loop sets it each epoch anyway
        with warnings.catch_warnings():
            # Opacus's reminder that the secure generator is off: the budget records secure_rng instead
            warnings.simplefilter("ignore", UserWarning)
            try:
                engine = PrivacyEngine(accountant=spec.accountant, secure_mode=spec.secure_rng)
            except ImportError:
                raise FortifyError(
                    "secure_rng needs torchcsprng (Opacus's cryptographically secure generator), which is "
                    "not installed and has no build for recent torch; experiment without secure_rng"
                ) from None
            try:
                hooks, dp_optimizer, dp_loader = engine.make_private_with_epsilon(
                    module=clf.module,
                    optimizer=optimizer,
                    data_loader=loader,
                    target_epsilon=spec.epsilon,
                    target_delta=spec.delta,
                    epochs=epochs,
                    max_grad_norm=spec.max_grad_norm,
                    poisson_sampling=True,
                    wrap_model=False,
                )
            except ValueError as exc:
                raise FortifyError(_opacus_refusal(exc, spec, epochs, 1 / len(loader))) from None
        hooks.disable_hooks()
        self.engine, self.hooks, self.optimizer = engine, hooks, dp_optimizer
        self.sample_rate = 1 / len(loader)
        self.source = PoissonSource(dp_loader, source, clf)
        n = len(loader.dataset)  # type: ignore[arg-type]
        if spec.delta >= 1 / n:
            logger.warning("dp: delta %g is not below 1/N = %g: the guarantee is weak", spec.delta, 1 / n)
        if not spec.secure_rng:
            logger.info("dp: noise and sampling use torch's generator (secure_rng=False)")
        logger.info(
            "dp: noise multiplier %.4g for epsilon %g at delta %g over %d epochs (sample rate %.4g)",
            dp_optimizer.noise_multiplier,
            spec.epsilon,
            spec.delta,
            epochs,
            self.sample_rate,
        )

    @contextmanager
    def capturing(self) -> Iterator[None]:
        """Capture per-sample gradients: around one training step's loss and backward pass."""
        self.hooks.enable_hooks()
        try:
            with warnings.catch_warnings():
                # torch's note that the first layer's hook fires without input gradients: expected here
                warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)
                yield
        finally:
            self.hooks.disable_hooks()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No capture inside a step: an inner attack's forward and backward passes."""
        was = self.hooks.hooks_enabled
        self.hooks.disable_hooks()
        try:
            yield
        finally:
            self.hooks.hooks_enabled = was

    def budget(self) -> PrivacyBudget:
        """The ``(epsilon, delta)`` spent so far by the accountant, with the run's parameters."""
        steps = sum(int(count) for _, _, count in self.engine.accountant.history)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # RDP's "optimal order is the largest alpha"
            epsilon = float(self.engine.get_epsilon(self.spec.delta)) if steps else 0.0
        return PRIVACY_BUDGET.validate_python(
            {
                "epsilon": epsilon,
                "delta": self.spec.delta,
                "accountant": self.spec.accountant,
                "noise_multiplier": float(self.optimizer.noise_multiplier),
                "max_grad_norm": self.spec.max_grad_norm,
                "sample_rate": self.sample_rate,
                "steps": steps,
                "target_epsilon": self.spec.epsilon,
                "epochs": self.epochs,
                "secure_rng": self.spec.secure_rng,
            }
        )

    def close(self) -> None:
        """Remove Opacus's hooks and the attributes it put on parameters and layers."""
        self.hooks.cleanup()
        for layer in self.module.modules():
            for attribute in ("activations", "max_batch_len"):
                if attribute in vars(layer):
                    delattr(layer, attribute)
