"""Hardening benchmark: standard vs fast vs pgd vs trades training, and preprocessing defenses under
naive vs adaptive PGD, on Fashion-MNIST with the ANCHORS cnn-small (Linf eps 0.1).

Every method trains the same architecture from the same seed on the first ``--train-n`` training
images for ``--epochs`` epochs (by default Adam, lr 1e-3 constant, batch 128, no validation; see
``--optimizer``, ``--lr``, ``--lr-schedule``, ``--weight-decay``, ``--eps-ramp``; ``--val-n`` holds out the
last N of those images for per-epoch robust validation and keeps the best epoch), then is scored on the first
``--n`` test images: clean accuracy, PGD-50 accuracy (one restart) and, with ``--suite``, the worst case
over an evaluation suite. Models are saved under ``runs/harden/<method>/`` (outside git).

The defense table puts each preprocessing component in front of the standard model and compares PGD
(``--defense-steps``, default 50) run naively on the defended model (gradients as they come) with
``ft.evaluate``'s adaptive PGD with the same steps (BPDA through non-differentiable parts, EOT over
``--eot`` random draws).

    python bench/harden.py --train-n 2000 --epochs 2 --n 200 --defense-n 100 --defense-steps 20 --eot 2
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

import fortify as ft
from fortify.attacks import PGD
from fortify.attacks.runner import accuracy, robust_accuracy
from fortify.cli.progress import bars
from fortify.evaluation import SuiteEntry

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "runs" / "harden"
SCHEDULES = ["constant", "cyclic", "cosine"]
METHODS = {
    "standard": {},
    "fast": {"variant": "n-fgsm"},  # --fast-variant / --fast-lr-schedule override
    "pgd": {"steps": 10},
    "trades": {"steps": 10, "beta": 6.0},
}
log = logging.getLogger("bench.harden")


def pgd_accuracy(
    clf: ft.Classifier, x: torch.Tensor, y: torch.Tensor, threat: ft.Threat, steps: int = 50
) -> float:
    """Accuracy under PGD-``steps`` run directly on ``clf`` (naive: no BPDA, no EOT)."""
    return robust_accuracy(PGD(steps=steps), clf, x, y, threat, batch_size=250)


def options_for(method: str, args: argparse.Namespace) -> dict:
    """Method options plus the optimisation settings ``ft.train`` takes for ``method``."""
    schedule = args.lr_schedule
    options = dict(METHODS[method])
    if method == "fast":
        options["variant"] = args.fast_variant
        schedule = args.fast_lr_schedule or schedule
    return {
        **options,
        "lr": args.lr,
        "lr_schedule": schedule,
        "optimizer": args.optimizer,
        "weight_decay": args.weight_decay,
        "batch_size": args.batch_size,
        "eps_ramp": args.eps_ramp if method != "standard" else 0.0,
    }


def train_method(
    method: str, args: argparse.Namespace, threat: ft.Threat, seed: int
) -> tuple[ft.Classifier, dict]:
    name = f"{method}-{args.tag}" if args.tag else method
    folder = args.models_dir / (name if seed == args.seed else f"{name}-seed{seed}")
    if args.reuse and (folder / "model.safetensors").is_file():
        return reused(folder / "model.safetensors")
    x, y = ft.data.load("fashion-mnist", "train", n=args.train_n)
    val = None
    if args.val_n:
        if args.val_n >= x.shape[0]:
            raise SystemExit(f"--val-n {args.val_n} leaves no training images of --train-n {x.shape[0]}")
        x, y, val = x[: -args.val_n], y[: -args.val_n], (x[-args.val_n :], y[-args.val_n :])
    torch.manual_seed(seed)
    if args.init is not None:
        clf = ft.zoo.load(args.init)
    else:
        clf = ft.Classifier(ft.zoo.create("cnn-small", (1, 28, 28), 10), num_classes=10)
    cpu_started = time.process_time()
    history = ft.train(
        clf,
        (x, y),
        epochs=args.epochs,
        seed=seed,
        method=method,
        threat=threat if method != "standard" else None,
        val=val,
        progress=bars if args.progress else False,
        **options_for(method, args),
    )
    cpu_s = time.process_time() - cpu_started
    ft.zoo.save(clf, folder / "model.safetensors", dataset="fashion-mnist", training=history.model_dump())
    epochs = [e.time_s for e in history.epochs]
    info = {
        "seed": seed,
        "cpu_s": cpu_s,
        "time_per_epoch_s": sum(epochs) / len(epochs),
        "total_s": history.total_s,
        "co_recoveries": sum(e.kind == "catastrophic_overfitting" for e in history.events),
        "best_epoch": history.best_epoch,
        "epochs": [e.model_dump(exclude_none=True) for e in history.epochs],
    }
    return clf, info


def reused(path: Path) -> tuple[ft.Classifier, dict]:
    """A model trained by an earlier run of this script, with the timing its metadata recorded."""
    history = ft.zoo.read_metadata(path)["training"]
    epochs = [e["time_s"] for e in history["epochs"]]
    info = {
        "reused": str(path),
        "cpu_s": None,
        "time_per_epoch_s": sum(epochs) / len(epochs),
        "total_s": history["total_s"],
        "co_recoveries": sum(e["kind"] == "catastrophic_overfitting" for e in history["events"]),
    }
    return ft.zoo.load(path), info


def method_rows(args: argparse.Namespace, threat: ft.Threat) -> list[dict]:
    x, y = ft.data.load("fashion-mnist", "test", n=args.n)
    rows = []
    runs = [(m, args.seed) for m in args.methods]
    runs += [(m, args.seed + k) for m in args.seed_methods for k in range(1, args.seeds)]
    for method, seed in runs:
        clf, info = train_method(method, args, threat, seed)
        row = {
            "method": method,
            "clean": accuracy(clf, x, y),
            "pgd50": pgd_accuracy(clf, x, y, threat),
            **info,
        }
        if args.suite and seed == args.seed:
            t0 = time.perf_counter()
            xs, ys = x[: args.suite_n], y[: args.suite_n]
            result = ft.evaluate(clf, xs, ys, threat, suite=args.suite, progress=False)
            row[args.suite] = result.robust_accuracy
            row["suite_n"] = int(xs.shape[0])
            row["suite_s"] = time.perf_counter() - t0
        log.info("%s", row)
        rows.append(row)
    return rows


def defense_rows(args: argparse.Namespace, threat: ft.Threat) -> list[dict]:
    x, y = ft.data.load("fashion-mnist", "test", n=args.defense_n)
    base = ft.zoo.load(args.models_dir / "standard" / "model.safetensors")
    d = ft.defenses
    components = {
        "none": [],
        "JPEG(75)": [d.JPEG(75)],
        "BitDepth(3)": [d.BitDepth(3)],
        "MedianFilter(3)": [d.MedianFilter(3)],
        "GaussianNoise(0.1)": [d.GaussianNoise(0.1)],
        "RandomResizePad(1.15)": [d.RandomResizePad(1.15)],
    }
    rows = []
    for name, preprocess in components.items():
        torch.manual_seed(args.seed)
        defended = d.defend(base, preprocess=list(preprocess))
        t0 = time.perf_counter()
        naive = pgd_accuracy(defended, x, y, threat, steps=args.defense_steps)
        naive_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        adaptive = ft.evaluate(
            defended,
            x,
            y,
            threat,
            suite=[SuiteEntry("pgd", PGD(steps=args.defense_steps), ran_on="all")],
            eot_samples=args.eot,
            progress=False,
        ).robust_accuracy
        row = {
            "defense": name,
            "differentiable": defended.differentiable,
            "randomized": defended.randomized,
            "clean": accuracy(defended, x, y),
            "naive_pgd": naive,
            "adaptive_pgd": adaptive,
            "naive_s": naive_s,
            "adaptive_s": time.perf_counter() - t0,
        }
        log.info("%s", row)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-n", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n", type=int, default=500, help="test images to score")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--suite", default=None, help="also score with this evaluation suite (e.g. standard)")
    parser.add_argument("--suite-n", type=int, default=None, help="score the suite on the first N of --n")
    parser.add_argument("--reuse", action="store_true", help="load models an earlier run saved instead")
    parser.add_argument("--fast-variant", default="n-fgsm", choices=["n-fgsm", "fgsm-rs"])
    parser.add_argument(
        "--fast-lr-schedule", default=None, choices=SCHEDULES, help="fast's schedule (default: --lr-schedule)"
    )
    parser.add_argument("--lr-schedule", default="constant", choices=SCHEDULES)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eps-ramp", type=float, default=0.0, help="fraction of training to ramp eps over")
    parser.add_argument(
        "--val-n", type=int, default=0, help="hold out the last N training images; keep the best epoch"
    )
    parser.add_argument("--tag", default="", help="save models under <models-dir>/<method>-<tag>/")
    parser.add_argument("--init", type=Path, default=None, help="fine-tune this saved model instead")
    parser.add_argument("--models-dir", type=Path, default=OUT, help="where models are saved and reused")
    parser.add_argument("--progress", action="store_true", help="show the training progress bar")
    parser.add_argument("--eot", type=int, default=8, help="EOT draws for randomized defenses")
    parser.add_argument("--defense-n", type=int, default=200, help="test images for the defense table")
    parser.add_argument("--defense-steps", type=int, default=50, help="PGD steps in the defense table")
    parser.add_argument("--skip-defenses", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="seeds for --seed-methods (seed, seed+1, ...)")
    parser.add_argument("--seed-methods", nargs="*", default=["fast"], choices=list(METHODS))
    parser.add_argument("--out", type=Path, default=OUT / "results.json", help="where the JSON goes")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    threat = ft.Linf(args.eps)
    report = {"config": vars(args), "methods": method_rows(args, threat)}
    if not args.skip_defenses:
        report["defenses"] = defense_rows(args, threat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
