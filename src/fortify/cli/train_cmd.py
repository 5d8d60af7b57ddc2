"""`fortify train`: train (standard, adversarially or with differential privacy) a zoo architecture on a
dataset and save it safely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, cast

import torch
import typer

from fortify import data as datasets
from fortify import zoo
from fortify._files import atomic_write_bytes, atomic_write_text, read_limited
from fortify._untrusted import load_json
from fortify.attacks import PGD
from fortify.attacks.runner import accuracy, robust_accuracy
from fortify.audits.poisoning.files import load_poisoned
from fortify.cli.app import app
from fortify.cli.common import (
    MLFLOW_STORE_HELP,
    DatasetName,
    Device,
    Label,
    Mean,
    ModelArgs,
    Normalisation,
    Seed,
    Std,
    Threads,
    Weights,
    check_output_folder,
    data_name,
    load_model_for,
    normalisation,
    setup_torch,
)
from fortify.cli.progress import ProgressMode, Quiet, bars, configure
from fortify.cli.render import console, pct
from fortify.cli.scale_opts import Nproc, launch_training, rank_outputs
from fortify.data.provenance import tensor_fingerprint
from fortify.model import Classifier
from fortify.result import Environment, Result, ThreatSpec, TrainingSection
from fortify.result.identity import new_training_run, training_settings
from fortify.threat import make_threat
from fortify.training import TrainConfig, TrainingHistory, TrainingInterrupted, method_names, train
from fortify.training.distributed import init_from_env
from fortify.training.recipes import RECIPES, recipe
from fortify.types import FortifyError
from fortify.zoo.factory import build, is_import_path, parse_model_args
from fortify.zoo.io import file_identity

TEST_PGD_STEPS = 20


def training_set(
    dataset: str, n_train: int | None, poisoned: Path | None, exclude: Path | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images: ``dataset``'s train split (first ``n_train``) or a poisoned set's, less the
    indices listed under ``"flagged"`` in the ``exclude`` JSON."""
    if poisoned is None:
        x, y = datasets.load(dataset, "train", n=n_train)
    else:
        x, y, _ = load_poisoned(poisoned, "--poisoned")
        if tuple(x.shape[1:]) != datasets.info(dataset).shape:
            raise FortifyError(f"--poisoned {poisoned} holds {tuple(x.shape[1:])} inputs, not {dataset}'s")
        x, y = x[:n_train], y[:n_train]
    if exclude is None:
        return x, y
    try:
        record = load_json(exclude.read_bytes()[: 1 << 26], f"--exclude {exclude}", max_bytes=1 << 26)
    except OSError as exc:
        raise FortifyError(f"cannot read --exclude {exclude}: {exc.strerror}") from exc
    flagged = record.get("flagged") if isinstance(record, dict) else None
    if not isinstance(flagged, list) or not all(isinstance(i, int) and 0 <= i < x.shape[0] for i in flagged):
        raise FortifyError(f"--exclude {exclude} must list indices 0..{x.shape[0] - 1} under 'flagged'")
    keep = torch.ones(x.shape[0], dtype=torch.bool)
    keep[torch.tensor(flagged, dtype=torch.long)] = False
    return x[keep], y[keep]


def train_and_save(
    dataset: str,
    arch: str,
    out: Path,
    config: TrainConfig,
    *,
    n_train: int | None,
    device: torch.device,
    init: Path | None = None,
    val_n: int = 0,
    test_n: int | None = None,
    progress: bool = True,
    poisoned: Path | None = None,
    exclude: Path | None = None,
    weights: Path | None = None,
    model_args: list[str] | None = None,
    norm: Normalisation | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
) -> tuple[Classifier, TrainingHistory, float]:
    """Train ``arch`` (or fine-tune the model at ``init``) on ``dataset``; write ``out/model.safetensors``
    and ``out/train.json``. The last ``val_n`` training samples are held out for validation (robust
    accuracy, early stopping). The Result has the clean test accuracy and, with a threat, the PGD-20
    accuracy on the first ``test_n`` test images (all when None); its model identity names the file
    written, its SHA-256 and the new training run (id, time, config digest), as the file records.
    ``norm`` (``--mean/--std``) is the normalisation inside the classifier, saved with it.
    ``checkpoint_every``: write ``out/checkpoint.safetensors`` every so many epochs (and on SIGINT /
    SIGTERM); ``resume``: continue from it."""
    meta = datasets.info(dataset)
    x, y = training_set(dataset, n_train, poisoned, exclude)
    if val_n >= x.shape[0]:
        raise FortifyError(f"--val-n {val_n} leaves no training data ({x.shape[0]} samples)")
    val = (x[-val_n:], y[-val_n:]) if val_n > 0 else None
    x, y = (x[:-val_n], y[:-val_n]) if val_n > 0 else (x, y)
    x_test, y_test = datasets.load(dataset, "test")
    if init is not None:
        clf = load_model_for(init, dataset, device, weights, model_args, norm)
    else:
        mean, std = norm or (None, None)
        kwargs = parse_model_args(model_args or []) if is_import_path(arch) else {}
        if not is_import_path(arch) and (weights is not None or model_args):
            raise FortifyError("--weights and --model-arg go with a pkg.module:factory --arch or --init")
        torch.manual_seed(config.seed)
        module = (
            build(arch, kwargs) if is_import_path(arch) else zoo.create(arch, meta.shape, meta.num_classes)
        )
        clf = Classifier(module.to(device), num_classes=meta.num_classes, mean=mean, std=std)
        if is_import_path(arch):
            clf.metadata = {"factory": arch, "factory_kwargs": kwargs}
    checkpoint = out if checkpoint_every is not None else None
    history = train(
        clf,
        (x, y),
        config,
        val=val,
        progress=bars if progress else False,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every or 1,
        resume=resume,
    )
    test_acc = accuracy(clf, x_test, y_test)
    metrics: dict[str, float] = {"test_accuracy": test_acc}
    robust = None
    threat = config.threat
    if threat is not None:
        pgd = PGD(steps=TEST_PGD_STEPS, seed=config.seed)
        robust = robust_accuracy(pgd, clf, x_test[:test_n], y_test[:test_n], threat, batch_size=250)
        metrics[f"test_pgd{TEST_PGD_STEPS}_accuracy"] = robust
    training = cast(TrainingSection, history.model_dump())
    run = new_training_run(
        training_settings(training), method=history.method, dataset=dataset, privacy=history.privacy
    )
    lineage: dict[str, Any] = {"finetuned_from": str(init)} if init is not None else {}
    if init is not None and "weights_sha256" in clf.identity:
        lineage["finetuned_from_sha256"] = clf.identity["weights_sha256"]
    if "factory" in clf.metadata:  # the user's own code: recorded so that it can be rebuilt
        lineage |= {
            "factory": clf.metadata["factory"],
            "factory_kwargs": clf.metadata["factory_kwargs"],
            "input_shape": list(meta.shape),
            "num_classes": meta.num_classes,
        }
    saved = zoo.save(
        clf,
        out / "model.safetensors",
        dataset=dataset,
        training=training,
        training_run=run,
        metrics=metrics,
        data_fingerprint={
            "train": tensor_fingerprint(x, y),
            "n_train": int(x.shape[0]),
            **({"poisoned_set": str(poisoned)} if poisoned is not None else {}),
            **({"excluded": str(exclude)} if exclude is not None else {}),
        },
        **lineage,
    )
    written = zoo.read_metadata(saved)
    source = "factory" if "factory" in written else "zoo"
    clf.identity = file_identity(written["arch"], source, clf.module, saved, run)
    result = Result(
        kind="training",
        model=clf.describe(),
        dataset=dataset,
        seed=config.seed,
        n_samples=int(x_test.shape[0]),
        clean_accuracy=test_acc,
        robust_accuracy=robust,
        timing={"total_s": history.total_s},
        threat=ThreatSpec(norm=threat.norm, eps=threat.eps) if threat is not None else None,
        suite=f"pgd{TEST_PGD_STEPS}" if threat is not None else None,
        environment=Environment.capture(str(device)),
        sections={"training": training},
    )
    result.save(str(out / "train.json"))
    return clf, history, test_acc


COMMAND_FILE = "train-command.json"
RUNTIME_OPTIONS = ("device", "threads", "progress", "quiet", "mlflow", "resume", "resumed")
RECIPE_OPTIONS = ("recipe_name", "out", "seed", "checkpoint_every", *RUNTIME_OPTIONS)
PATH_OPTIONS = ("weights", "init", "poisoned", "exclude", "out")


def _save_command(out: Path, settings: dict[str, Any]) -> None:
    """Record the run's options in ``out/train-command.json`` for ``--resume``; refuse to start a new
    checkpointed run over an unfinished one."""
    if (out / "checkpoint.safetensors").exists():
        raise FortifyError(
            f"--out {out} holds the checkpoint of another run: continue it with `fortify train --resume "
            f"{out}`, or choose another --out"
        )
    record = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}
    atomic_write_text(out / COMMAND_FILE, json.dumps(record, indent=1, sort_keys=True) + "\n")


def _typed(ctx: typer.Context, allowed: tuple[str, ...]) -> str:
    """The options given on the command line that are not in ``allowed``, as flags ("" if none)."""

    def typed(name: str) -> bool:
        return getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"

    names = [name for name in ctx.params if name not in allowed and typed(name)]
    return ", ".join("--" + name.replace("_", "-") for name in names)


def _resumed_command(ctx: typer.Context, folder: Path) -> dict[str, Any]:
    """The options of the run in ``folder`` (from its ``train-command.json``), checked."""
    given = _typed(ctx, RUNTIME_OPTIONS)
    if given:
        raise FortifyError(f"--resume continues a run with the options it was started with; drop {given}")
    path = folder / COMMAND_FILE
    if not path.is_file():
        raise FortifyError(
            f"--resume {folder}: no {COMMAND_FILE} there (was it started with --checkpoint-every?)"
        )
    record = load_json(read_limited(path, "run options", 1 << 20), str(path), max_bytes=1 << 20)
    expected = {name for name in ctx.params if name not in RUNTIME_OPTIONS}
    if not isinstance(record, dict) or set(record) != expected:
        raise FortifyError(f"{path} does not hold the options of a fortify train run")
    for name, value in record.items():
        ok = value is None or isinstance(value, (str, int, float, bool))
        ok = ok or (isinstance(value, list) and all(isinstance(item, str) for item in value))
        if not ok:
            raise FortifyError(f"{path}: option {name} has a value of type {type(value).__name__}")
    return {k: Path(v) if k in PATH_OPTIONS and v is not None else v for k, v in record.items()}


def _run_recipe(ctx: typer.Context, name: str, out: Path, resumed: bool) -> None:
    """Run (or, ``resumed``, continue) the stages of recipe ``name`` in ``out/stage-K``; the last stage's
    model and Result are copied to ``out``."""
    plan = recipe(name)
    given = _typed(ctx, RECIPE_OPTIONS)
    if given:
        raise FortifyError(f"--recipe {name} sets the training options itself; drop {given}")
    previous: Path | None = None
    for number, stage in enumerate(plan.stages, start=1):
        folder = out / f"stage-{number}"
        if not (folder / "model.safetensors").exists() or not resumed:
            console.print(f"[bold]recipe {name}, stage {number} of {len(plan.stages)}[/]: {stage}")
            where = {"data": plan.dataset, "arch": plan.arch, "recipe_name": None}
            settings = dict(ctx.params) | where | stage
            settings |= {"init": previous, "out": folder, "resume": None}
            settings["resumed"] = resumed and (folder / "checkpoint.safetensors").exists()
            train_command(ctx, **settings)
        previous = folder / "model.safetensors"
    for file in ("model.safetensors", "train.json"):
        atomic_write_bytes(out / file, (out / f"stage-{len(plan.stages)}" / file).read_bytes())
    console.print(f"recipe {name}: wrote {out / 'model.safetensors'} and {out / 'train.json'}")


@app.command("train")
def train_command(
    ctx: typer.Context,
    data: DatasetName = "fashion-mnist",
    label: Label = None,
    mean: Mean = None,
    std: Std = None,
    arch: Annotated[
        str,
        typer.Option(
            help=f"architecture: {', '.join(zoo.names())}, or your own pkg.module:factory (with --model-arg)"
        ),
    ] = "cnn-small",
    weights: Weights = None,
    model_arg: ModelArgs = None,
    method: Annotated[
        str, typer.Option(help=f"training method: {', '.join(method_names())} (README: Hardening)")
    ] = "standard",
    eps: Annotated[
        float | None,
        typer.Option(help="radius adversarial methods train against (needed by pgd, fast and trades)"),
    ] = None,
    norm: Annotated[str, typer.Option(help="linf or l2")] = "linf",
    epochs: Annotated[int, typer.Option(min=1, help="passes over the training set")] = 2,
    lr: Annotated[float, typer.Option(min=0.0, help="learning rate (the peak of a schedule)")] = 1e-3,
    batch_size: Annotated[int, typer.Option(min=1, help="training mini-batch size")] = 128,
    optimizer: Annotated[str, typer.Option(help="adam or sgd (momentum 0.9)")] = "adam",
    weight_decay: Annotated[float, typer.Option(min=0.0, help="the optimizer's weight decay")] = 0.0,
    lr_schedule: Annotated[str, typer.Option(help="constant, cosine or cyclic")] = "constant",
    eps_ramp: Annotated[
        float, typer.Option(help="fraction of training over which eps ramps up from 0")
    ] = 0.0,
    steps: Annotated[int | None, typer.Option(help="inner attack steps (pgd, trades; default 10)")] = None,
    alpha: Annotated[
        float | None,
        typer.Option(help="fast: step as a fraction of eps (default 1.0 for n-fgsm, 1.25 for fgsm-rs)"),
    ] = None,
    variant: Annotated[str | None, typer.Option(help="fast: n-fgsm (default) or fgsm-rs")] = None,
    beta: Annotated[float | None, typer.Option(help="trades: robustness weight (default 6.0)")] = None,
    clean_ratio: Annotated[
        float | None, typer.Option(help="pgd: weight of the clean loss (default 0.0)")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="pgd: arithmetic of the inner attack, fp32 (default) or bf16 (about 2x faster on "
            "CPUs with bfloat16 instructions; the training loss stays float32)"
        ),
    ] = None,
    sigma: Annotated[
        float | None, typer.Option(help="noise, consistency: Gaussian noise level (default 0.25)")
    ] = None,
    epsilon: Annotated[
        float | None,
        typer.Option(help="dp: the privacy budget epsilon over all epochs (not the attack radius --eps)"),
    ] = None,
    delta: Annotated[
        float | None, typer.Option(help="dp: the privacy delta (default 1e-5; keep < 1/N)")
    ] = None,
    max_grad_norm: Annotated[
        float | None, typer.Option(help="dp: per-sample gradient clip norm (default 1.0)")
    ] = None,
    accountant: Annotated[str | None, typer.Option(help="dp: rdp (default) or prv")] = None,
    secure_rng: Annotated[
        bool, typer.Option("--secure-rng", help="dp: Opacus's secure generator (needs torchcsprng)")
    ] = False,
    replace_batchnorm: Annotated[
        bool,
        typer.Option("--replace-batchnorm", help="dp: replace BatchNorm by GroupNorm instead of refusing it"),
    ] = False,
    base: Annotated[
        str | None,
        typer.Option(help="dp: the loss it makes private: standard (default), pgd, fast, trades or noise"),
    ] = None,
    val_n: Annotated[
        int, typer.Option(min=0, help="hold out the last N training samples for validation")
    ] = 0,
    early_stopping: Annotated[
        int | None, typer.Option(help="stop after N epochs without improvement (default: never)")
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="fine-tune this model (a fortify file, or pkg.module:factory with --weights)"),
    ] = None,
    poisoned: Annotated[
        Path | None, typer.Option(help="train on this set from `fortify poison make` instead of --data's")
    ] = None,
    exclude: Annotated[
        Path | None,
        typer.Option(
            help="leave out the training samples listed in this JSON (`fortify poison inspect --out`)"
        ),
    ] = None,
    n: Annotated[
        int | None, typer.Option(help="use only the first N training samples (default: all)")
    ] = None,
    test_n: Annotated[int, typer.Option(min=1, help="test images for the final PGD-20 accuracy")] = 1000,
    seed: Seed = 0,
    out: Annotated[Path, typer.Option(help="run folder: model.safetensors and train.json go here")] = Path(
        "runs/train"
    ),
    mlflow: Annotated[
        bool,
        typer.Option(
            "--mlflow",
            help="log hyperparameters as params, per-epoch curves and train.json to MLflow "
            f"({MLFLOW_STORE_HELP})",
        ),
    ] = False,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="write OUT/checkpoint.safetensors every N epochs (and on Ctrl-C / SIGTERM) so that "
            "--resume can continue the run",
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="continue the interrupted run in this folder, with the options it started with"),
    ] = None,
    recipe_name: Annotated[
        str | None,
        typer.Option(
            "--recipe",
            help=f"a documented recipe: {', '.join(sorted(RECIPES))} (sets data, arch and every training "
            "option; README: Hardening)",
        ),
    ] = None,
    resumed: Annotated[
        bool, typer.Option(hidden=True, help="internal: continue OUT's checkpoint (set by --resume)")
    ] = False,
    device: Device = "auto",
    nproc: Nproc = None,
    threads: Threads = None,
    progress: ProgressMode = "auto",
    quiet: Quiet = False,
) -> None:
    """Train a model (standard, adversarial or differentially private) and save it as safetensors with
    JSON metadata. Long runs: --checkpoint-every 1, then --resume OUT after an interruption."""
    if resume is not None:
        settings = _resumed_command(ctx, resume)
        runtime: dict[str, Any] = dict(device=device, threads=threads, progress=progress, quiet=quiet)
        return train_command(ctx, **settings, **runtime, mlflow=mlflow, resume=None, resumed=True)
    if nproc is not None:  # the same command in nproc processes under torchrun (fortify.scale.launch)
        code = launch_training(nproc, device)
        if code:
            raise typer.Exit(code)
        return None
    if init_from_env():  # a rank of a torchrun group: rank 0 alone writes
        out, progress, quiet, mlflow = rank_outputs(out, progress, quiet, mlflow)
    check_output_folder("--out", out)
    if recipe_name is not None:
        if not resumed:
            _save_command(out, {k: v for k, v in ctx.params.items() if k not in RUNTIME_OPTIONS})
        return _run_recipe(ctx, recipe_name, out, resumed)
    if checkpoint_every is not None and not resumed:
        _save_command(out, {k: v for k, v in ctx.params.items() if k not in RUNTIME_OPTIONS})
    dev = setup_torch(threads, device)
    configure(progress, quiet)
    if method not in method_names():
        raise FortifyError(f"unknown --method {method!r}; choose one of {method_names()}")
    private = {
        "epsilon": epsilon,
        "delta": delta,
        "max_grad_norm": max_grad_norm,
        "accountant": accountant,
        "base": base,
        "secure_rng": secure_rng or None,
        "replace_batchnorm": replace_batchnorm or None,
    }
    private = {k: v for k, v in private.items() if v is not None}
    if method == "dp" and epsilon is None:
        raise FortifyError("--method dp needs --epsilon, the privacy budget (e.g. --epsilon 3)")
    if method != "dp" and private:
        flags = ", ".join("--" + k.replace("_", "-") for k in private)
        raise FortifyError(f"{flags} go with --method dp (differentially private training)")
    loss = base if method == "dp" and base is not None else method
    if loss in ("pgd", "fast", "trades") and eps is None:
        raise FortifyError(f"--method {method} needs --eps (e.g. --eps 0.1)")
    threat = make_threat(norm, eps) if eps is not None else None
    data = data_name(data, label)
    stats = normalisation(mean, std, data)
    given = {
        "steps": steps,
        "alpha": alpha,
        "variant": variant,
        "beta": beta,
        "clean_ratio": clean_ratio,
        "precision": precision,
        "sigma": sigma,
    }
    options = {k: v for k, v in given.items() if v is not None} | private
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        method=method,
        method_options=options,
        threat=threat,
        optimizer=optimizer,
        weight_decay=weight_decay,
        lr_schedule=lr_schedule,
        eps_ramp=eps_ramp,
        early_stopping=early_stopping,
    )
    try:
        _, history, test_acc = train_and_save(
            data,
            arch,
            out,
            config,
            n_train=n,
            device=dev,
            init=init,
            val_n=val_n,
            test_n=test_n,
            poisoned=poisoned,
            exclude=exclude,
            weights=weights,
            model_args=model_arg,
            norm=stats,
            checkpoint_every=checkpoint_every,
            resume=resumed,
        )
    except TrainingInterrupted as stopped:
        console.print(f"[yellow]{stopped}[/]: fortify train --resume {out}", highlight=False)
        raise typer.Exit(130) from None
    for record in history.epochs:
        val = f"  val {pct(record.val_accuracy)}" if record.val_accuracy is not None else ""
        if record.val_robust_accuracy is not None:
            val += f" robust {pct(record.val_robust_accuracy)}"
        console.print(
            f"epoch {record.epoch}: loss {record.loss:.4f}  train acc {pct(record.accuracy)}{val}  "
            f"{record.time_s:.1f}s"
        )
    for event in history.events:
        console.print(f"[yellow]{event.kind}[/] (epoch {event.epoch}): {event.details}")
    if history.privacy is not None:
        spent = history.privacy
        console.print(
            f"privacy: ({spent['epsilon']:.3g}, {spent['delta']:g})-DP by the {spent['accountant']} "
            f"accountant (target epsilon {spent['target_epsilon']:g}), noise multiplier "
            f"{spent['noise_multiplier']:.3g}, clip {spent['max_grad_norm']:g}, sample rate "
            f"{spent['sample_rate']:.3g}, {spent['steps']} steps"
        )
    saved = Result.load(str(out / "train.json"))
    robust = saved.robust_accuracy
    if mlflow:
        from fortify.report import mlflow as track

        run_id = track.log(saved, report=False)
        console.print(f"logged MLflow run {run_id} to {track.store_uri()}")
    robust_text = (
        "" if robust is None else f"; PGD-{TEST_PGD_STEPS} accuracy {pct(robust)} (test images: --test-n)"
    )
    console.print(
        f"test accuracy {pct(test_acc)}{robust_text}; wrote {out / 'model.safetensors'} and "
        f"{out / 'train.json'}"
    )
