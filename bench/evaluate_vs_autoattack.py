"""fortify's `standard` suite against AutoAttack standard, side by side, on Fashion-MNIST models.

AutoAttack is torchattacks' implementation rebuilt at the paper's 100 iterations (its own
``AutoAttack(version="standard")`` leaves APGD, APGD-T and FAB-T at 10; see /work/shared/ANCHORS.md):
``MultiAttack([APGD(ce), APGDT(9 targets), FAB(multi_targeted=True), Square(n_queries=5000)])``, each
on the points still robust. Both run on the same images, one thread, one after the other.

Models (cached as safetensors under ``runs/bench-evaluate/``):
- ``standard``: ``--arch`` (cnn-small), 1 epoch of standard training on the 60k training images
  (``bench/workload.py``'s cached cnn-small if present);
- ``fast-at``: ``--arch``, FGSM-RS fast adversarial training at Linf 0.1 on the first ``--train-images``;
- ``masked``: the fast-AT model behind 3-bit input quantisation (``ft.defenses.BitDepth(3)``): its
  gradients are zero, so gradient attacks that do not use BPDA fail.

- ``--saved NAME=PATH``: any model saved with ``ft.zoo.save`` (e.g. a ``bench/harden.py`` model), scored
  under NAME.

Run (slow; rows are merged into bench/results/evaluate_vs_autoattack.json by model, arch and n):
    .venv/bin/python bench/evaluate_vs_autoattack.py --n 100 --threads 1 --models standard
    .venv/bin/python bench/evaluate_vs_autoattack.py --n 100 --threads 1 --models fast-at,masked \\
        --arch cnn-tiny
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

import fortify as ft

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "runs" / "bench-evaluate"
log = logging.getLogger("bench.evaluate")


def _train(name: str, arch: str, train_images: int, epochs: int) -> ft.Classifier:
    x, y = ft.data.load("fashion-mnist", "train", n=train_images)
    torch.manual_seed(0)
    clf = ft.Classifier(ft.zoo.create(arch, (1, 28, 28), 10), num_classes=10)
    options = {} if name == "standard" else {"method": "fast", "threat": ft.Linf(0.1)}
    history = ft.train(clf, (x, y), epochs=epochs, lr=1e-3, batch_size=128, seed=0, progress=False, **options)
    log.info("trained %s on %d images in %.0f s", name, x.shape[0], history.total_s)
    return clf


def model(name: str, arch: str, train_images: int, epochs: int) -> ft.Classifier:
    """The named benchmark model, trained once and cached."""
    if name == "masked":
        from fortify.defenses import BitDepth, defend

        return defend(model("fast-at", arch, train_images, epochs), preprocess=[BitDepth(3)])
    shared = ROOT / "runs" / "bench" / "model.safetensors"
    path = CACHE / f"{name}-{arch}.safetensors"
    if name == "standard" and arch == "cnn-small" and shared.is_file():
        path = shared
    if path.is_file():
        return ft.zoo.load(path)
    standard = name == "standard"
    clf = _train(name, arch, 60_000 if standard else train_images, 1 if standard else epochs)
    ft.zoo.save(clf, path, dataset="fashion-mnist", method="standard" if name == "standard" else "fast")
    return clf


def autoattack(
    clf: ft.Classifier, x: torch.Tensor, y: torch.Tensor, eps: float, seed: int
) -> tuple[float, float]:
    """Robust accuracy and seconds of AutoAttack standard at 100 iterations (torchattacks)."""
    import torchattacks as ta

    attack = ta.MultiAttack(
        [
            ta.APGD(clf, norm="Linf", eps=eps, steps=100, n_restarts=1, loss="ce", seed=seed),
            ta.APGDT(clf, norm="Linf", eps=eps, steps=100, n_restarts=1, n_classes=10, seed=seed),
            ta.FAB(
                clf,
                norm="Linf",
                eps=eps,
                steps=100,
                n_restarts=1,
                multi_targeted=True,
                n_classes=10,
                seed=seed,
            ),
            ta.Square(clf, norm="Linf", eps=eps, n_queries=5000, n_restarts=1, seed=seed),
        ]
    )
    start = time.perf_counter()
    x_adv = attack(x, y)
    elapsed = time.perf_counter() - start
    return ft.attacks.accuracy(clf, x_adv, y), elapsed


def compare(name: str, clf: ft.Classifier, x: torch.Tensor, y: torch.Tensor, eps: float, seed: int) -> dict:
    start = time.perf_counter()
    result = ft.evaluate(clf, x, y, ft.Linf(eps), suite="standard", seed=seed, progress=False)
    ours_s = time.perf_counter() - start
    log.info("%s: fortify standard %.1f%% in %.0f s", name, 100 * result.robust_accuracy, ours_s)
    aa_acc, aa_s = autoattack(clf, x, y, eps, seed)
    log.info("%s: AutoAttack %.1f%% in %.0f s", name, 100 * aa_acc, aa_s)
    return {
        "model": name,
        "n": int(x.shape[0]),
        "eps": eps,
        "clean": result.clean_accuracy,
        "fortify_robust": result.robust_accuracy,
        "autoattack_robust": aa_acc,
        "fortify_s": ours_s,
        "autoattack_s": aa_s,
        "time_ratio": ours_s / aa_s,
        "points_above_autoattack": 100 * (result.robust_accuracy - aa_acc),
        "fortify_attacks": [
            {
                "name": r.name,
                "n_attacked": r.n_attacked,
                "n_succeeded": r.n_succeeded,
                "time_s": r.time_s,
                "forward_passes": r.forward_passes,
                "backward_passes": r.backward_passes,
            }
            for r in result.per_attack
        ],
        "diagnostics": {d.name: d.passed for d in result.diagnostics},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="test images per model")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--models", default="standard,fast-at,masked", help="comma-separated; '' for none")
    parser.add_argument(
        "--saved", action="append", default=[], metavar="NAME=PATH", help="also score this saved model"
    )
    parser.add_argument("--arch", default="cnn-small", help="cnn-small (ANCHORS' model) or cnn-tiny")
    parser.add_argument("--train-images", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "evaluate_vs_autoattack.json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    torch.set_num_threads(args.threads)
    x, y = ft.data.load("fashion-mnist", "test", n=args.n)
    rows = json.loads(args.out.read_text())["rows"] if args.out.is_file() else []
    models = [(name, None) for name in args.models.split(",") if name]
    for spec in args.saved:
        name, sep, path = spec.partition("=")
        if not (sep and name and Path(path).is_file()):
            parser.error(f"--saved wants NAME=PATH of an existing model file, got {spec!r}")
        models.append((name, Path(path)))
    for name, path in models:
        clf = ft.zoo.load(path) if path else model(name, args.arch, args.train_images, args.epochs)
        row = compare(name, clf, x, y, args.eps, args.seed)
        row["arch"] = args.arch  # for --saved models: what --arch says they are
        rows = [
            r for r in rows if (r["model"], r.get("arch", "cnn-small"), r["n"]) != (name, args.arch, args.n)
        ]
        rows.append(row)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2))
    header = [
        "model",
        "arch",
        "n",
        "clean",
        "fortify standard",
        "AutoAttack (100 it.)",
        "fortify s",
        "AutoAttack s",
        "ratio",
    ]
    print("| " + " | ".join(header) + " |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['model']} | {r.get('arch', 'cnn-small')} | {r['n']} | {100 * r['clean']:.1f} | "
            f"{100 * r['fortify_robust']:.1f} | "
            f"{100 * r['autoattack_robust']:.1f} | {r['fortify_s']:.0f} | {r['autoattack_s']:.0f} | "
            f"{r['time_ratio']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
