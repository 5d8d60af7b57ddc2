"""Side-by-side attack benchmark: fortify vs torchattacks vs ART vs Foolbox vs a plain PyTorch loop.

One process, one trained Fashion-MNIST cnn-small, the same first ``--n`` test images, batch 250, two
threads. For each attack row every contender is timed over all images; the contenders are interleaved
(round r runs them in an order rotated by r) and the median over ``--rounds`` is reported, so ratios stay
meaningful on a shared, noisy machine. Equal work: every sample, every step, no early stop.

What is timed (``--timed``): ``verdict`` (default) is what an evaluation needs, the adversarial batch and
the model's prediction on it; peers get one no-grad forward on their ``x_adv``, fortify reads the logits
its attack contract already computed (``AttackOutput.logits``). ``attack`` times ``x_adv`` alone, which
charges fortify for its contract's checks (misclassified samples untouched, never worse than clean).

    python bench/run.py                       # everything, n = 1000, 3 rounds (tens of minutes)
    python bench/run.py --attacks fgsm,pgd-40 # a subset of rows
    python bench/run.py --quick --n 20        # smoke run: 1 round, no warm-up, nothing cached

Prints a markdown table and writes it with a JSON record to ``bench/results/`` (``--out`` to choose).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import fortify as ft
from contenders import LIBRARIES, ROWS, Row, RunFn, Skip, builder_for
from workload import ROOT, test_images, trained_model

BATCH = 250
THREADS = 2
WARMUP_IMAGES = 16


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="test images (default 1000; 20 with --quick)")
    parser.add_argument("--attacks", default=",".join(r.key for r in ROWS), help="comma-separated rows")
    parser.add_argument("--libs", default=",".join(LIBRARIES), help="comma-separated contenders")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; 1 quick)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, no warm-up, no cache")
    parser.add_argument("--slow-peers", action="store_true", help="also run ART's C&W (~40x slower)")
    parser.add_argument(
        "--timed",
        choices=("verdict", "attack"),
        default="verdict",
        help="time x_adv plus its predictions (default) or x_adv alone",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON path (markdown beside it)")
    args = parser.parse_args(argv)
    args.n = args.n if args.n is not None else (20 if args.quick else 1000)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    keys = {r.key for r in ROWS}
    args.attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]
    args.libs = [s.strip() for s in args.libs.split(",") if s.strip()]
    for bad, known, what in (
        (set(args.attacks) - keys, keys, "attack"),
        (set(args.libs) - set(LIBRARIES), set(LIBRARIES), "library"),
    ):
        if bad:
            parser.error(f"unknown {what} {sorted(bad)}; choose from {sorted(known)}")
    if args.n < 1 or args.rounds < 1:
        parser.error("--n and --rounds must be >= 1")
    return args


def attack_all(
    clf: ft.Classifier, run: RunFn, x: Tensor, y: Tensor, verdict: bool
) -> tuple[Tensor, Tensor | None, float, float]:
    """Attack every image in batches of ``BATCH``: the adversarial images, their predicted labels (with
    ``verdict``, inside the timing), wall seconds and CPU seconds.

    CPU seconds (this process, all threads) are less disturbed than wall time when the machine is shared.
    """
    torch.manual_seed(0)
    advs, preds = [], []
    started, cpu_started = time.perf_counter(), time.process_time()
    for xb, yb in zip(x.split(BATCH), y.split(BATCH), strict=True):
        out = run(xb, yb)
        x_adv, logits = (out.x_adv, out.logits) if isinstance(out, ft.attacks.AttackOutput) else (out, None)
        if verdict:
            if logits is None:
                with torch.no_grad():
                    logits = clf(x_adv)
            preds.append(logits.argmax(dim=1).cpu())
        advs.append(x_adv.detach().cpu())
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return torch.cat(advs), torch.cat(preds) if verdict else None, elapsed, cpu


def quality(clf: ft.Classifier, row: Row, x: Tensor, y: Tensor, x_adv: Tensor) -> dict[str, Any]:
    """Robust accuracy, median L2 of successful perturbations, and ball / bounds violations."""
    pred = clf.predict(x_adv, check=False)
    clean_ok = clf.predict(x, check=False) == y
    broken = clean_ok & (pred != y)
    l2 = (x_adv - x).flatten(1).norm(dim=1)
    threat = ft.make_threat(row.norm, row.eps)
    outside = ~threat.contains(x_adv, x) | (x_adv.flatten(1).amin(1) < 0) | (x_adv.flatten(1).amax(1) > 1)
    return {
        "robust_accuracy": float((pred == y).float().mean()),
        "success_rate": float(broken.sum() / clean_ok.sum().clamp_min(1)),
        "median_l2": float(l2[broken].median()) if bool(broken.any()) else None,
        "violations": int(outside.sum()),
    }


def bench_row(clf: ft.Classifier, row: Row, x: Tensor, y: Tensor, args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, RunFn] = {}
    skipped: dict[str, str] = {}
    for library in args.libs:
        try:
            runs[library] = builder_for(row, library, slow_peers=args.slow_peers)(clf, row, BATCH)
            if not args.quick:
                attack_all(clf, runs[library], x[:WARMUP_IMAGES], y[:WARMUP_IMAGES], False)  # one-time set-up
        except Skip as reason:
            skipped[library] = str(reason)
            runs.pop(library, None)
            print(f"  {row.title}: skip {library}: {reason}", flush=True)
    times: dict[str, list[float]] = {lib: [] for lib in runs}
    cpu_times: dict[str, list[float]] = {lib: [] for lib in runs}
    metrics: dict[str, dict[str, Any]] = {}
    names = list(runs)
    for r in range(args.rounds if names else 0):
        for library in names[r % len(names) :] + names[: r % len(names)]:
            x_adv, pred, seconds, cpu = attack_all(clf, runs[library], x, y, args.timed == "verdict")
            times[library].append(seconds)
            cpu_times[library].append(cpu)
            metrics.setdefault(library, quality(clf, row, x, y, x_adv))
            if pred is not None:  # the timed verdict must be the model's: ties aside, none may differ
                differ = int((pred != clf.predict(x_adv, check=False).cpu()).sum())
                metrics[library]["verdict_mismatches"] = differ
                if differ:
                    print(f"  warning: {library}: {differ} timed verdicts differ", flush=True)
            print(
                f"  {row.title} round {r + 1}: {library:<12} {seconds:8.2f} s, {cpu:8.2f} s CPU", flush=True
            )
    results = {}
    for library in names:
        median = statistics.median(times[library])
        results[library] = {
            "seconds": median,
            "all_seconds": times[library],
            "images_per_s": x.shape[0] / median,
            "cpu_seconds": statistics.median(cpu_times[library]),
            "all_cpu_seconds": cpu_times[library],
            **metrics[library],
        }
    peers = [results[lib]["images_per_s"] for lib in names if lib != "fortify"]
    peers_cpu = [results[lib]["cpu_seconds"] for lib in names if lib != "fortify"]
    for entry in results.values():
        entry["vs_fastest_peer"] = entry["images_per_s"] / max(peers) if peers else None
        entry["cpu_vs_fastest_peer"] = min(peers_cpu) / entry["cpu_seconds"] if peers_cpu else None
    return {
        "key": row.key,
        "title": row.title,
        "metric": row.metric,
        "note": row.note,
        "eps": row.eps,
        "steps": row.steps,
        "results": results,
        "skipped": skipped,
    }


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "| attack | library | images/s | s / run | × fastest peer | CPU s | × by CPU | robust acc. "
        "| median L2 | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in record["rows"]:
        for library, e in sorted(row["results"].items(), key=lambda kv: -kv[1]["images_per_s"]):
            ratio = f"{e['vs_fastest_peer']:.2f}" if e["vs_fastest_peer"] is not None else "–"
            cpu_ratio = f"{e['cpu_vs_fastest_peer']:.2f}" if e["cpu_vs_fastest_peer"] is not None else "–"
            l2 = f"{e['median_l2']:.3f}" if e["median_l2"] is not None else "–"
            flag = f"{e['violations']} outside ball/bounds" if e["violations"] else ""
            lines.append(
                f"| {row['title']} | {library} | {e['images_per_s']:.1f} | {e['seconds']:.2f} | "
                f"{ratio} | {e['cpu_seconds']:.2f} | {cpu_ratio} | {100 * e['robust_accuracy']:.1f}% | {l2} "
                f"| {flag} |"
            )
        for library, reason in row["skipped"].items():
            lines.append(f"| {row['title']} | {library} | – | – | – | – | – | – | – | skipped: {reason} |")
    return "\n".join(lines) + "\n"


def environment() -> dict[str, Any]:
    versions = {}
    for dist in ("torch", "fortify", "torchattacks", "adversarial-robustness-toolbox", "foolbox"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "versions": versions,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(THREADS)
    clf, source = trained_model(quick=args.quick)
    x, y = test_images(args.n)
    clean = ft.attacks.accuracy(clf, x, y)
    print(
        f"model: cnn-small ({source}); clean accuracy {100 * clean:.1f}% on {x.shape[0]} test images; "
        f"batch {BATCH}, {THREADS} threads, {args.rounds} round(s)",
        flush=True,
    )
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    rows = [bench_row(clf, row, x, y, args) for row in ROWS if row.key in args.attacks]
    record = {
        "command": "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": started.isoformat(timespec="seconds"),
        "n": x.shape[0],
        "batch": BATCH,
        "rounds": args.rounds,
        "timed": args.timed,
        "model": source,
        "clean_accuracy": clean,
        "load_average_before_after": [load_before, os.getloadavg()],
        "environment": environment(),
        "rows": rows,
    }
    table = markdown(record)
    print("\n" + table)
    out = args.out
    if out is None and not args.quick:
        out = ROOT / "bench" / "results" / f"bench-{started:%Y%m%dT%H%M%SZ}.json"
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n")
        out.with_suffix(".md").write_text(f"`{record['command']}` ({record['started']})\n\n{table}")
        print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
