"""Model extraction on Fashion-MNIST, measured: knockoff vs queries with and without output hardening,
queries until the service's PRADA alert over HTTP, and "steal, then evade" beside query attacks.

The victim is a fortify model file (cnn-small trained on the first 20,000 training images in
BENCHMARKS.md); the thief's natural queries are the *last* training images (never the victim's), its
student a cnn-small trained 5 epochs per budget; accuracy and agreement on the first 1,000 test images.

- ``hardening``: ``fortify audit extraction --model V --harden H`` for each ``--harden`` mode.
- ``http``: a fresh ``fortify serve`` (probabilities exposed, one PRADA rule with action ``alert``) per
  query set, stolen with ``fortify audit extraction --url`` (queries in requests of ``--chunk``).
- ``transfer``: students stolen (full outputs, and labels only) at each budget; MI-FGSM and DI-MI-FGSM
  from them against the victim (one query per point) beside Square (scores) and HopSkipJump (labels)
  run directly on the victim with the same per-sample query budget, on the first ``--n-attack`` test
  images, Linf 0.1.

    python bench/extraction.py --victim runs/privacy/standard-cnn-small/model.safetensors \
        --parts hardening,http,transfer --out bench/results/extraction.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

import fortify as ft
from fortify._files import atomic_write_text
from fortify.audits import extraction

ROOT = Path(__file__).resolve().parent.parent
SERVE_YAML = """expose_probabilities: true
monitor:
  rules:
    - {name: theft, metric: prada_w, window_s: 3600, op: "<", threshold: 0.9, min_count: 1, action: alert}
"""


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fortify(*args: str, env: dict[str, str] | None = None) -> None:
    cmd = [sys.executable, "-m", "fortify.cli.main", *args]
    print("$ fortify", " ".join(args), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, **(env or {})})


def section(path: Path) -> dict[str, Any]:
    return dict(ft.Result.load(str(path)).sections["extraction"])


def hardening(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    rows = []
    for mode in args.harden.split(","):
        out = work / f"steal-{mode.replace(':', '')}.json"
        t0, c0 = time.perf_counter(), child_cpu()
        fortify(
            "audit", "extraction", "--model", str(args.victim), "--budgets", args.budgets,
            "--harden", mode, "--threads", str(args.threads), "--out", str(out),
        )  # fmt: skip
        rows.append({"harden": mode, **section(out), "wall_s": time.perf_counter() - t0,
                     "cpu_s": child_cpu() - c0})  # fmt: skip
    return rows


def http(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    sys.path.insert(0, str(ROOT))
    from tests.service.server import serve  # a real `fortify serve` process on loopback

    config = work / "serve.yaml"
    atomic_write_text(config, SERVE_YAML)
    rows = []
    for kind in args.query_sets.split(","):
        run_dir = work / f"serve-{kind}"
        serve_args = ["--model", str(args.victim), "--calibrate", "fashion-mnist", "--config", str(config),
                      "--insecure-no-auth", "--run-dir", str(run_dir)]  # fmt: skip
        with serve(serve_args, log=work / f"serve-{kind}.log",
                   env={"OMP_NUM_THREADS": str(args.threads)}) as (url, _):  # fmt: skip
            out = work / f"steal-url-{kind}.json"
            t0, c0 = time.perf_counter(), child_cpu()
            fortify(
                "audit", "extraction", "--url", url, "--queries", kind, "--budgets", args.budgets,
                "--chunk", str(args.chunk), "--threads", str(args.threads), "--out", str(out),
            )  # fmt: skip
            rows.append({"queries": kind, **section(out), "wall_s": time.perf_counter() - t0,
                         "client_cpu_s": child_cpu() - c0})  # fmt: skip
    return rows


def transfer(args: argparse.Namespace) -> list[dict[str, Any]]:
    victim = ft.zoo.load(args.victim)
    budgets = [int(b) for b in args.budgets.split(",")]
    x_pool, _ = ft.data.load("fashion-mnist", "train")
    queries = x_pool[-max(budgets) :]
    x_test, y_test = ft.data.load("fashion-mnist", "test", n=1000)
    x, y = x_test[: args.n_attack], y_test[: args.n_attack]
    threat = ft.Linf(args.eps)

    def student() -> ft.Classifier:
        torch.manual_seed(0)
        return ft.Classifier(ft.zoo.create("cnn-small", (1, 28, 28), 10), num_classes=10)

    rows: list[dict[str, Any]] = []
    served = {
        "scores": ft.BlackBox(lambda q: victim.predict_proba(q, check=False), 10),
        "labels": extraction.hardened(victim, "top1"),
    }
    for output, box in served.items():
        for budget in budgets:
            t0 = time.process_time()
            stolen, curve = extraction.knockoff(box, queries, [budget], student, x_test, y_test, epochs=5)
            steal_cpu = time.process_time() - t0
            for attack in ("mi-fgsm", "di-mi-fgsm"):
                t1 = time.process_time()
                report = extraction.transfer(stolen, victim, x, y, threat, attack)
                rows.append({"kind": "transfer", "output": output, "budget": budget, **report,
                             "agreement": curve.agreement[0], "steal_cpu_s": steal_cpu,
                             "attack_cpu_s": time.process_time() - t1})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    correct = victim.predict(x) == y
    xc, yc = x[correct], y[correct]
    for budget in budgets:
        for name, attack_cls, output in (("square", ft.attacks.Square, "scores"),
                                          ("hopskipjump", ft.attacks.HopSkipJump, "labels")):  # fmt: skip
            box = served[output]
            box.reset_queries()
            t1 = time.process_time()
            x_adv = attack_cls(n_queries=budget, seed=0)(box, xc, yc, threat)
            rows.append({"kind": "query", "attack": name, "output": output, "budget": budget,
                         "n": int(xc.shape[0]),
                         "victim_success": float((victim.predict(x_adv) != yc).double().mean()),
                         "queries_total": box.queries, "attack_cpu_s": time.process_time() - t1})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--victim", type=Path, required=True)
    parser.add_argument("--parts", default="hardening,http,transfer")
    parser.add_argument("--budgets", default="250,1000,5000")
    parser.add_argument("--harden", default="full,top1,round:1,round:2,reverse-sigmoid")
    parser.add_argument("--query-sets", default="train,noise,perturbed")
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--n-attack", type=int, default=200)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "extraction")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extraction.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    results: dict[str, Any] = previous.get("parts", {}) if isinstance(previous, dict) else {}
    runners = {"hardening": lambda: hardening(args, args.work), "http": lambda: http(args, args.work),
               "transfer": lambda: transfer(args)}  # fmt: skip
    for part in args.parts.split(","):
        results[part] = runners[part]()
        record = {"args": {k: str(v) for k, v in vars(args).items()}, "parts": results}
        atomic_write_text(args.out, json.dumps(record, indent=1))
        print(f"wrote {args.out} ({part})", flush=True)


if __name__ == "__main__":
    main()
