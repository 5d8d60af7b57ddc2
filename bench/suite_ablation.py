"""What each idea of the `standard` suite buys: robust-accuracy points and model passes per sample.

Runs variants of the suite (custom entry lists through ``ft.evaluate``) on the benchmark models of
``bench/evaluate_vs_autoattack.py`` and compares each with the AutoAttack-100 outcome stored there
(run that script first: this one reuses its per-sample AutoAttack results and never reruns them).

Variants (each adds one idea to the one before unless said otherwise):
- ``v0-top3``: APGD-CE-100, APGD-T-100 on the top-3 targets, Square 1,000 queries (the suite before);
- ``v1-close-calls``: + APGD-T-100 on targets 4-9, only for survivors whose worst true-class probability
  is below ``--close-calls`` (the samples earlier attacks came close to breaking);
- ``v2-square-probe``: v1 with Square as a 32-sample probe that escalates to 5,000 queries on every
  survivor when it breaks any (instead of 1,000 queries on every survivor);
- ``standard``: the registered suite as it is now.

Run:
    .venv/bin/python bench/suite_ablation.py --models fast-0.1,l2-1.5 --n 200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

import fortify as ft
from fortify.evaluation.ledger import PassCounter, counting
from fortify.evaluation.suites import SQUARE_PROBE, SuiteEntry, named

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate_vs_autoattack as bench  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def variants(close_calls: float) -> dict[str, list[SuiteEntry] | str]:
    base = [named("apgd-ce", 0, steps=100), named("apgd-t", 0, steps=100, n_target_classes=3)]
    second = replace(
        named("apgd-t", 0, steps=100, n_target_classes=6, skip_targets=3),
        name="apgd-t-close",
        close_calls=close_calls,
    )
    probe = replace(
        named("square", 0, n_queries=1000),
        name="square-probe",
        probe=SQUARE_PROBE,
        escalation=named("square", 0, n_queries=5000),
    )
    return {
        "v0-top3": [*base, named("square", 0, n_queries=1000)],
        "v1-close-calls": [*base, second, named("square", 0, n_queries=1000)],
        "v2-square-probe": [*base, second, probe],
        "standard": "standard",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="fast-0.1")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--variants", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--close-calls", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--results",
        action="append",
        type=Path,
        default=[],
        help="AutoAttack results files (default: bench/results/evaluate-vs-autoattack-robust.json)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "suite-ablation.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    files = args.results or [ROOT / "bench" / "results" / "evaluate-vs-autoattack-robust.json"]
    stored = [r for f in files for r in json.loads(f.read_text())["rows"]]
    x, y = ft.data.load("fashion-mnist", "test", n=args.n)
    out = json.loads(args.out.read_text()) if args.out.is_file() else {"rows": []}
    chosen = variants(args.close_calls)
    if args.variants:
        chosen = {k: v for k, v in chosen.items() if k in args.variants.split(",")}
    for name in args.models.split(","):
        row = next((r for r in stored if r["model"] == name and r["n"] == args.n), None)
        if row is None:
            parser.error(
                f"no AutoAttack outcome for {name} at n={args.n}: run evaluate_vs_autoattack.py first"
            )
        aa = torch.zeros(args.n, dtype=torch.bool)
        aa[row["autoattack"]["robust_indices"]] = True
        aa_passes = row["autoattack"]["forward_per_sample"] + row["autoattack"]["backward_per_sample"]
        clf, threat = bench.model(name), bench.SPECS[name].threat
        for variant, suite in chosen.items():
            passes = PassCounter()
            start = time.perf_counter()
            with counting(clf, passes):
                result = ft.evaluate(clf, x, y, threat, suite=suite, seed=0, progress=False)
            seconds = time.perf_counter() - start
            ours = torch.tensor([s.robust for s in result.samples])
            record = {
                "model": name,
                "n": args.n,
                "variant": variant,
                "close_calls": args.close_calls,
                "robust": result.robust_accuracy,
                "autoattack_robust": float(aa.float().mean()),
                "points_above_autoattack": 100 * (result.robust_accuracy - float(aa.float().mean())),
                "passes_per_sample": (passes.forward + passes.backward) / args.n,
                "pass_ratio": (passes.forward + passes.backward) / args.n / aa_passes,
                "seconds": seconds,
                "autoattack_breaks_we_do_not": (ours & ~aa).nonzero().squeeze(1).tolist(),
                "attacks": [
                    (r.name, r.n_attacked, r.n_succeeded, round(r.time_s, 1)) for r in result.per_attack
                ],
            }
            print(json.dumps(record), flush=True)
            out["rows"] = [
                r
                for r in out["rows"]
                if (r["model"], r["n"], r["variant"], r["close_calls"])
                != (name, args.n, variant, args.close_calls)
            ] + [record]
            args.out.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
