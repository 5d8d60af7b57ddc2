"""`fortify audit membership | inversion | extraction`: does the model leak its training set or what its
classes look like, can it be stolen?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import torch
import typer
from pydantic import ValidationError

from fortify import data as datasets
from fortify.audits import privacy
from fortify.cli.app import app
from fortify.cli.common import (
    DatasetName,
    Device,
    Label,
    Mean,
    ModelArgs,
    ModelFile,
    Seed,
    Std,
    Threads,
    Weights,
    check_outputs,
    data_name,
    fresh_module,
    load_model_for,
    normalisation,
    parse_numbers,
    setup_torch,
)
from fortify.cli.render import console, pct
from fortify.model import Classifier
from fortify.result import Environment, Result
from fortify.result.sections import Sections
from fortify.training import TrainConfig, train
from fortify.types import FortifyError

audit_app = typer.Typer(
    help="Privacy and theft audits: membership inference, model inversion, model extraction.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")
Out = Annotated[Path, typer.Option(help="the audit Result JSON (kind 'audit')")]


def _members_n(clf: Classifier, given: int | None) -> int:
    if given is not None:
        return given
    record = (clf.metadata or {}).get("data_fingerprint") if isinstance(clf.metadata, dict) else None
    n = record.get("n_train") if isinstance(record, dict) else None
    if not isinstance(n, int):
        raise FortifyError("the model does not record its training set size: pass --members-n N")
    return n


RECIPE = ("epochs", "lr", "batch_size", "optimizer", "weight_decay", "lr_schedule")
"""The recorded training settings ``--shadows-like-target`` replays."""


def _recipe(clf: Classifier, seed: int) -> TrainConfig:
    """The model's own training, read from its file's record (untrusted: every value is checked as any
    ``TrainConfig`` is), so that LiRA's shadows are trained as the target was (a DP target: DP shadows)."""
    training = clf.metadata.get("training") if isinstance(clf.metadata, dict) else None
    config = training.get("config") if isinstance(training, dict) else None
    if not isinstance(training, dict) or not isinstance(config, dict):
        raise FortifyError(
            "--shadows-like-target: the model file records no training (train it with fortify train)"
        )
    if config.get("threat") not in (None, "None"):
        raise FortifyError(
            "--shadows-like-target cannot replay adversarial training (its threat is recorded as text)"
        )
    options = training.get("options", {})
    try:
        return TrainConfig(
            **{k: config[k] for k in RECIPE if config.get(k) is not None},
            seed=seed,
            method=training.get("method", "standard"),
            method_options=options if isinstance(options, dict) else {},
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise FortifyError(
            f"--shadows-like-target: recorded training setting {where}: {problem['msg']}"
        ) from None
    except FortifyError as exc:
        raise FortifyError(f"--shadows-like-target: recorded training setting: {exc}") from None


def _save(out: Path, data: str, clf: Classifier, name: str, section: dict[str, Any], **fields: Any) -> None:
    Result(
        kind="audit",
        dataset=data,
        model=clf.describe(),
        environment=Environment.capture(str(clf.device)),
        sections=cast(Sections, {name: section}),
        **fields,
    ).save(str(out))
    console.print(f"wrote {out}")


@audit_app.command("membership")
def membership_command(
    model: ModelFile,
    out: Out,
    weights: Weights = None,
    model_arg: ModelArgs = None,
    data: DatasetName = "fashion-mnist",
    label: Label = None,
    mean: Mean = None,
    std: Std = None,
    attack: Annotated[str, typer.Option(help="loss, confidence or lira")] = "loss",
    members_n: Annotated[
        int | None,
        typer.Option(help="the model was trained on the first N train images (default: its metadata)"),
    ] = None,
    n: Annotated[int, typer.Option(min=10, help="members and non-members scored, each")] = 1000,
    shadows: Annotated[int, typer.Option(min=1, help="lira: shadow models")] = 4,
    online: Annotated[
        bool, typer.Option("--online", help="lira: shadows see the targets half the time")
    ] = False,
    shadow_epochs: Annotated[
        int, typer.Option(min=1, help="lira: epochs per shadow (like the target's)")
    ] = 2,
    shadows_like_target: Annotated[
        bool,
        typer.Option(
            "--shadows-like-target",
            help="lira: train the shadows with the model's recorded training (method, options, epochs, lr, "
            "batch size, optimizer) instead of --shadow-epochs of Adam; a DP model gets DP shadows",
        ),
    ] = False,
    arch: Annotated[
        str | None,
        typer.Option(help="lira: shadow architecture (default: the model's; your own code with --model-arg)"),
    ] = None,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Score a membership attack: members are the model's training images, non-members test images."""
    check_outputs(out=out)
    dev = setup_torch(threads, device)
    data = data_name(data, label)
    clf = load_model_for(model, data, dev, weights, model_arg, normalisation(mean, std, data))
    count = _members_n(clf, members_n)
    x_train, y_train = datasets.load(data, "train")
    if count > x_train.shape[0]:
        raise FortifyError(f"--members-n {count} exceeds the {x_train.shape[0]} training images")
    take = min(n, count)
    x_test, y_test = datasets.load(data, "test", n=take)
    members, non_members = (x_train[:take], y_train[:take]), (x_test, y_test)
    options: dict[str, Any] = {}
    shadow_training: dict[str, Any] = {}
    if attack == "lira":
        info = datasets.info(data)
        shape = arch or clf.metadata.get("arch", "cnn-small")
        # shadows see their inputs as the target does
        shadow_mean = clf.mean.tolist() if clf.mean is not None else None
        shadow_std = clf.std.tolist() if clf.std is not None else None

        recipe = (
            _recipe(clf, seed)
            if shadows_like_target
            else TrainConfig(epochs=shadow_epochs, lr=1e-3, batch_size=128, seed=seed)
        )

        def fit(x: torch.Tensor, y: torch.Tensor) -> Classifier:
            torch.manual_seed(seed)
            module = fresh_module(shape, data, model_arg)
            shadow = Classifier(module, num_classes=info.num_classes, mean=shadow_mean, std=shadow_std)
            train(shadow, (x, y), recipe, progress=False)
            return shadow

        pool = (x_train[count : count + 2 * count], y_train[count : count + 2 * count])
        if pool[0].shape[0] < 2:
            raise FortifyError("lira needs training images beyond the model's own for its shadows")
        options = {"shadows": shadows, "shadow_data": pool, "train_fn": fit, "online": online}
        shadow_training = {"shadow_method": recipe.method, "shadow_epochs": recipe.epochs}
        console.print(
            f"training {shadows} shadow {shape} models on halves of {pool[0].shape[0]} images "
            f"({recipe.method}, {recipe.epochs} epochs)"
        )
    score = privacy.membership_inference(clf, members, non_members, attack=attack, seed=seed, **options)
    console.print(
        f"{score.attack}: AUC {score.auc:.3f}, TPR at 0.1% FPR {pct(score.tpr_at_fpr[0.001])}, "
        f"at 1% FPR {pct(score.tpr_at_fpr[0.01])} ({take} members, {take} non-members)"
    )
    section = score.to_dict() | shadow_training
    _save(out, data, clf, "membership", section, seed=seed, n_samples=2 * take)


def _classes(text: str, num_classes: int) -> list[int] | None:
    if text == "all":
        return None
    values = parse_numbers(text, "--classes")
    if not values or any(v != int(v) or not 0 <= v < num_classes for v in values):
        raise FortifyError(f"--classes must be 'all' or integers in [0, {num_classes - 1}], got {text!r}")
    return [int(v) for v in values]


@audit_app.command("inversion")
def inversion_command(
    model: ModelFile,
    out: Out,
    weights: Weights = None,
    model_arg: ModelArgs = None,
    data: DatasetName = "fashion-mnist",
    label: Label = None,
    mean: Mean = None,
    std: Std = None,
    classes: Annotated[str, typer.Option(help="classes to invert: all, or comma-separated labels")] = "all",
    steps: Annotated[int, typer.Option(min=1, help="gradient steps per class")] = 300,
    lr: Annotated[float, typer.Option(min=0.0, help="step size, as a fraction of the input range")] = 0.05,
    tv: Annotated[float, typer.Option(min=0.0, help="weight of the total-variation prior")] = 0.0,
    l2: Annotated[float, typer.Option(min=0.0, help="weight of the L2 prior (distance to the start)")] = 0.0,
    start: Annotated[str, typer.Option(help="low (blank image, as the paper) or mid")] = "low",
    n_reference: Annotated[
        int, typer.Option(min=1, help="train images whose class means the representatives are compared with")
    ] = 2000,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Reconstruct a representative of each class from the model (Fredrikson et al. 2015) and compare it
    with the class means of training images."""
    check_outputs(out=out)
    dev = setup_torch(threads, device)
    data = data_name(data, label)
    clf = load_model_for(model, data, dev, weights, model_arg, normalisation(mean, std, data))
    info = datasets.info(data)
    chosen = _classes(classes, info.num_classes)
    reference = datasets.load(data, "train", n=n_reference)
    inv = privacy.model_inversion(
        clf, chosen, reference=reference, steps=steps, lr=lr, l2_weight=l2, tv_weight=tv, start=start
    )
    console.print(
        f"model inversion: {pct(inv.identified)} of {len(inv.classes)} representatives are nearest their own "
        f"class mean (mean cosine {inv.mean_true_cosine:.2f} to their own, {inv.mean_other_cosine or 0:.2f} "
        f"to the others; {reference[0].shape[0]} reference images)"
    )
    section = inv.to_dict(info.classes)
    _save(out, data, clf, "inversion", dict(section), seed=0, n_samples=len(inv.classes))


from fortify.cli import audit_extraction  # noqa: E402, F401  (registers `audit extraction`)
