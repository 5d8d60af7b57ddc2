"""fortify's suites against AutoAttack at the paper's 100 iterations, side by side, on robust models.

AutoAttack is torchattacks' implementation rebuilt at the paper's 100 iterations (its own
``AutoAttack(version="standard")`` leaves APGD, APGD-T and FAB-T at 10; see /work/shared/ANCHORS.md):
``MultiAttack([APGD(ce), APGDT(9 targets), FAB(multi_targeted=True), Square(n_queries=5000)])``, each
on the points still robust, with the norm of the model's threat (Linf or L2). Both run on the same
images, one after the other, in one process.

For each model the row records clean accuracy, robust accuracy of every fortify suite asked for and of
AutoAttack, wall and CPU seconds (the process's CPU time: with one thread, far less sensitive than wall
time to other jobs on the machine), model passes per sample (forward and backward, counted with hooks
on the model for both tools, diagnostics included), and the per-sample disagreements: the indices
AutoAttack breaks and fortify does not (each a bug report) and the reverse.

Models (trained once, cached as safetensors under ``runs/bench-evaluate/``; cnn-small, Fashion-MNIST):
- ``fast-0.1``, ``fast-0.2``: FGSM-RS/N-FGSM fast adversarial training at Linf 0.1 / 0.2;
- ``pgd-0.1``, ``pgd-0.2``: PGD-5 adversarial training at Linf 0.1 / 0.2;
- ``trades-0.1``: TRADES (beta 6, 5 KL steps) at Linf 0.1;
- ``l2-1.5``: PGD-5 adversarial training at L2 1.5, evaluated at L2 1.0;
- ``probs-0.1``: ``fast-0.1`` returning softmax probabilities instead of logits (AutoAttack's warned
  case: cross-entropy on probabilities has vanishing gradients);
- ``scaled-0.1``: ``fast-0.1`` with logits multiplied by 1000 (saturated softmax);
- ``masked-0.1``: ``fast-0.1`` behind 3-bit input quantisation (zero gradients: needs BPDA);
- ``fast-0.1-l2``: ``fast-0.1`` (trained at Linf 0.1) under L2 1.0;
- ``standard``: one epoch of standard training (not robust).
- ``--saved NAME=PATH[@norm:eps]``: any model saved with ``ft.zoo.save``.

Run (slow; rows are merged into bench/results/evaluate-vs-autoattack-robust.json by model, n and suites):
    .venv/bin/python bench/evaluate_vs_autoattack.py --train-only --models all
    .venv/bin/python bench/evaluate_vs_autoattack.py --n 200 --threads 1 --models fast-0.1,l2-1.5
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import fortify as ft
from fortify.evaluation.ledger import PassCounter, counting

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "runs" / "bench-evaluate"
ARCH = "cnn-small"
log = logging.getLogger("bench.evaluate")


@dataclass(frozen=True)
class Spec:
    """How a benchmark model is trained, and the threat it is evaluated under."""

    method: str
    train_threat: ft.Threat | None
    threat: ft.Threat
    train_images: int = 20_000
    epochs: int = 3
    options: dict[str, Any] = field(default_factory=dict)
    base: str | None = None  # derived from this trained model by a wrapper (see ``derived``)


SPECS: dict[str, Spec] = {
    "standard": Spec("standard", None, ft.Linf(0.1), train_images=60_000, epochs=1),
    "fast-0.1": Spec("fast", ft.Linf(0.1), ft.Linf(0.1)),
    "fast-0.2": Spec("fast", ft.Linf(0.2), ft.Linf(0.2)),
    "pgd-0.1": Spec("pgd", ft.Linf(0.1), ft.Linf(0.1), options={"steps": 5}),
    "pgd-0.2": Spec("pgd", ft.Linf(0.2), ft.Linf(0.2), options={"steps": 5}),
    "trades-0.1": Spec("trades", ft.Linf(0.1), ft.Linf(0.1), options={"steps": 5}),
    "l2-1.5": Spec("pgd", ft.L2(1.5), ft.L2(1.0), options={"steps": 5}),
    "probs-0.1": Spec("fast", ft.Linf(0.1), ft.Linf(0.1), base="fast-0.1"),
    "scaled-0.1": Spec("fast", ft.Linf(0.1), ft.Linf(0.1), base="fast-0.1"),
    "masked-0.1": Spec("fast", ft.Linf(0.1), ft.Linf(0.1), base="fast-0.1"),
    "fast-0.1-l2": Spec("fast", ft.Linf(0.1), ft.L2(1.0), base="fast-0.1"),
}


class Scaled(nn.Module):
    """``module``'s outputs times ``factor`` (``factor`` 1000 saturates the softmax)."""

    def __init__(self, module: nn.Module, factor: float) -> None:
        super().__init__()
        self.module, self.factor = module, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) * self.factor


def derived(name: str, base: ft.Classifier) -> ft.Classifier:
    """The wrapped variants of a trained model."""
    if name.startswith("probs"):
        return ft.Classifier(nn.Sequential(base, nn.Softmax(dim=1)), num_classes=10)
    if name.startswith("scaled"):
        return ft.Classifier(Scaled(base, 1000.0), num_classes=10)
    if name.endswith("-l2"):
        return base  # the Linf-trained model, under an L2 threat
    if name.startswith("masked"):
        from fortify.defenses import BitDepth, defend

        return defend(base, preprocess=[BitDepth(3)])
    raise KeyError(name)


def model(name: str) -> ft.Classifier:
    """The named benchmark model, trained once and cached."""
    spec = SPECS[name]
    if spec.base is not None:
        return derived(name, model(spec.base))
    path = CACHE / f"{name}-{ARCH}.safetensors"
    shared = ROOT / "runs" / "bench" / "model.safetensors"
    if name == "standard" and shared.is_file():
        path = shared
    if path.is_file():
        return ft.zoo.load(path)
    x, y = ft.data.load("fashion-mnist", "train", n=spec.train_images)
    torch.manual_seed(0)
    clf = ft.Classifier(ft.zoo.create(ARCH, (1, 28, 28), 10), num_classes=10)
    threat = {} if spec.train_threat is None else {"threat": spec.train_threat}
    history = ft.train(
        clf,
        (x, y),
        method=spec.method,
        epochs=spec.epochs,
        lr=1e-3,
        batch_size=128,
        seed=0,
        progress=False,
        **threat,
        **spec.options,
    )
    log.info("trained %s on %d images in %.0f s", name, x.shape[0], history.total_s)
    ft.zoo.save(clf, path, dataset="fashion-mnist", method=spec.method)
    return clf


def parse_threat(text: str) -> ft.Threat:
    norm, _, eps = text.partition(":")
    return {"linf": ft.Linf, "l2": ft.L2}[norm.lower()](float(eps))


def autoattack(clf: ft.Classifier, x: torch.Tensor, y: torch.Tensor, threat: ft.Threat, seed: int) -> dict:
    """AutoAttack standard at 100 iterations (torchattacks): per-sample robustness, seconds, passes."""
    import torchattacks as ta

    norm = "Linf" if threat.norm == "linf" else "L2"
    eps = threat.eps
    attack = ta.MultiAttack(
        [
            ta.APGD(clf, norm=norm, eps=eps, steps=100, n_restarts=1, loss="ce", seed=seed),
            ta.APGDT(clf, norm=norm, eps=eps, steps=100, n_restarts=1, n_classes=10, seed=seed),
            ta.FAB(
                clf, norm=norm, eps=eps, steps=100, n_restarts=1, multi_targeted=True, n_classes=10, seed=seed
            ),
            ta.Square(clf, norm=norm, eps=eps, n_queries=5000, n_restarts=1, seed=seed),
        ]
    )
    passes = PassCounter()
    start, cpu = time.perf_counter(), time.process_time()
    with counting(clf, passes):
        x_adv = attack(x, y)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    # torchattacks' MultiAttack keeps the clean input where nothing succeeded; re-project defensively
    # so a point a hair outside the ball (float error) cannot count against us or for us.
    x_adv = threat.clip(x_adv, x, clf.bounds)
    with torch.no_grad():
        robust = clf.logits(x_adv).argmax(1) == y
    return {
        "robust": robust,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "forward": passes.forward / x.shape[0],
        "backward": passes.backward / x.shape[0],
    }


def fortify_run(
    clf: ft.Classifier, x: torch.Tensor, y: torch.Tensor, threat: ft.Threat, suite: str, seed: int
) -> dict:
    passes = PassCounter()
    start, cpu = time.perf_counter(), time.process_time()
    with counting(clf, passes):
        result = ft.evaluate(clf, x, y, threat, suite=suite, seed=seed, progress=False)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "result": result,
        "robust": torch.tensor([s.robust for s in result.samples]),
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "forward": passes.forward / x.shape[0],
        "backward": passes.backward / x.shape[0],
    }


def compare(
    name: str,
    clf: ft.Classifier,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ft.Threat,
    suites: list[str],
    seed: int,
    cached_aa: dict | None,
) -> dict:
    row: dict[str, Any] = {
        "model": name,
        "arch": ARCH,
        "n": int(x.shape[0]),
        "norm": threat.norm,
        "eps": threat.eps,
    }
    if cached_aa is not None:
        aa = {
            "robust": torch.zeros(x.shape[0], dtype=torch.bool),
            "seconds": cached_aa["seconds"],
            "cpu_seconds": cached_aa.get("cpu_seconds"),
            "forward": cached_aa["forward_per_sample"],
            "backward": cached_aa["backward_per_sample"],
        }
        aa["robust"][cached_aa["robust_indices"]] = True
        log.info("%s: AutoAttack from the cache (%.1f%%)", name, 100 * float(aa["robust"].float().mean()))
    else:
        aa = autoattack(clf, x, y, threat, seed)
        log.info(
            "%s: AutoAttack %.1f%% in %.0f s", name, 100 * float(aa["robust"].float().mean()), aa["seconds"]
        )
    row["autoattack"] = {
        "robust": float(aa["robust"].float().mean()),
        "seconds": aa["seconds"],
        "cpu_seconds": aa.get("cpu_seconds"),
        "forward_per_sample": aa["forward"],
        "backward_per_sample": aa["backward"],
        "robust_indices": aa["robust"].nonzero().squeeze(1).tolist(),
    }
    for suite in suites:
        ours = fortify_run(clf, x, y, threat, suite, seed)
        result = ours["result"]
        log.info(
            "%s: fortify %s %.1f%% in %.0f s", name, suite, 100 * result.robust_accuracy, ours["seconds"]
        )
        row["clean"] = result.clean_accuracy
        row[suite] = {
            "robust": result.robust_accuracy,
            "seconds": ours["seconds"],
            "time_ratio": ours["seconds"] / aa["seconds"],
            "cpu_seconds": ours["cpu_seconds"],
            "cpu_ratio": ours["cpu_seconds"] / aa["cpu_seconds"] if aa.get("cpu_seconds") else None,
            "forward_per_sample": ours["forward"],
            "backward_per_sample": ours["backward"],
            "pass_ratio": (ours["forward"] + ours["backward"]) / (aa["forward"] + aa["backward"]),
            "points_above_autoattack": 100 * (result.robust_accuracy - float(aa["robust"].float().mean())),
            "autoattack_breaks_we_do_not": (ours["robust"] & ~aa["robust"]).nonzero().squeeze(1).tolist(),
            "we_break_autoattack_does_not": (~ours["robust"] & aa["robust"]).nonzero().squeeze(1).tolist(),
            "attacks": [
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
            "reliable": result.reliable,
        }
    return row


def table(rows: list[dict], suites: list[str]) -> str:
    head = ["model", "threat", "n", "clean", *[f"fortify {s}" for s in suites], "AutoAttack-100"]
    head += (
        [f"{s} s / AA s" for s in suites] + [f"{s} passes / AA" for s in suites] + ["AA breaks, we do not"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        if not all(s in r for s in suites):
            continue
        aa = r["autoattack"]
        cells = [r["model"], f"{r['norm']} {r['eps']:g}", str(r["n"]), f"{100 * r['clean']:.1f}"]
        cells += [f"{100 * r[s]['robust']:.1f}" for s in suites] + [f"{100 * aa['robust']:.1f}"]
        cells += [f"{r[s]['seconds']:.0f} / {aa['seconds']:.0f} = {r[s]['time_ratio']:.2f}" for s in suites]
        cells += [f"{r[s]['pass_ratio']:.3f}" for s in suites]
        cells += [", ".join(f"{s}: {r[s]['autoattack_breaks_we_do_not'] or '-'}" for s in suites)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="test images per model")
    parser.add_argument("--models", default="fast-0.1", help=f"comma-separated, or 'all': {', '.join(SPECS)}")
    parser.add_argument("--saved", action="append", default=[], metavar="NAME=PATH[@norm:eps]")
    parser.add_argument("--suites", default="standard", help="comma-separated fortify suites")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--train-only", action="store_true", help="train and cache the models, evaluate nothing"
    )
    parser.add_argument(
        "--reuse-autoattack",
        action="store_true",
        help="reuse AutoAttack's per-sample outcome from the results file when present",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "evaluate-vs-autoattack-robust.json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    torch.set_num_threads(args.threads)
    names = list(SPECS) if args.models == "all" else [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in SPECS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(SPECS)}")
    models: list[tuple[str, Any, ft.Threat]] = [(m, None, SPECS[m].threat) for m in names]
    for spec in args.saved:
        name, sep, rest = spec.partition("=")
        path, _, threat_text = rest.partition("@")
        if not (sep and name and Path(path).is_file()):
            parser.error(f"--saved wants NAME=PATH[@norm:eps] of an existing model file, got {spec!r}")
        models.append((name, Path(path), parse_threat(threat_text) if threat_text else ft.Linf(0.1)))
    if args.train_only:
        for name, _, _ in models:
            model(name)
        return 0
    suites = [s for s in args.suites.split(",") if s]
    x, y = ft.data.load("fashion-mnist", "test", n=args.n)
    stored = json.loads(args.out.read_text()) if args.out.is_file() else {}
    rows = [r for r in stored.get("rows", []) if "autoattack" in r]  # rows of this script's format
    for name, path, threat in models:
        clf = ft.zoo.load(path) if path else model(name)
        key = (name, args.n, threat.norm, threat.eps)
        old = next((r for r in rows if (r["model"], r["n"], r["norm"], r["eps"]) == key), None)
        cached = old["autoattack"] if (old and args.reuse_autoattack) else None
        row = compare(name, clf, x, y, threat, suites, args.seed, cached)
        if old:
            row = {**old, **row}
        rows = [r for r in rows if (r["model"], r["n"], r["norm"], r["eps"]) != key] + [row]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2))
    print(table(rows, suites))
    return 0


if __name__ == "__main__":
    sys.exit(main())
