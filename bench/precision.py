"""Attack loops against the machine's limit: achieved FLOP rate as a fraction of a float32 GEMM, fp32 vs
bfloat16 iterations, beside a plain PyTorch PGD loop, interleaved in one process (issue #21).

FLOPs are counted, not assumed: forward hooks record every Conv2d / Linear call's rows and the
multiply-adds per row (from the layer shapes), split into passes with gradients (forward + the
input-gradient backward, which costs about one more forward: 2x) and without (1x); FLOPs =
2 x multiply-adds. Only the passes the attack makes count (its clean check and verdicts included).
PGD and APGD run without early stop, like the plain loop; the timed unit is the adversarial batch and
its verdict (bench/run.py's default). The GEMM reference is
``torch.mm`` of two 1024 x 1024 float32 matrices in the same process, timed in every round. Times are
the process's CPU seconds (``time.process_time``) and wall seconds; on a loaded machine CPU seconds are
the fairer figure, and both rise together.

    python bench/precision.py --n 1000 --rounds 3 --threads 2
    python bench/precision.py --model runs/frontier/wide-fast5/model.safetensors --agreement 500
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fortify as ft  # noqa: E402
from workload import test_images, trained_model  # noqa: E402


class FlopCounter:
    """Counts multiply-adds of every Conv2d / Linear call, with and without gradients."""

    def __init__(self, module: nn.Module) -> None:
        self.grad_macs = 0.0
        self.plain_macs = 0.0
        self.handles = [
            m.register_forward_hook(self._hook)
            for m in module.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))
        ]

    def _hook(self, layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if isinstance(layer, nn.Conv2d):
            k = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
            macs = float(output.numel()) * k
        else:
            macs = float(output.numel()) * layer.in_features
        if torch.is_grad_enabled() and inputs[0].requires_grad:
            self.grad_macs += macs
        else:
            self.plain_macs += macs

    def flops(self) -> float:
        return 2.0 * (2.0 * self.grad_macs + self.plain_macs)

    def reset(self) -> None:
        self.grad_macs = self.plain_macs = 0.0


def gemm_rate(size: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2.0 * size**3 * repeats / (time.perf_counter() - started)


def plain_pgd(clf: ft.Classifier, x: Tensor, y: Tensor, eps: float, steps: int) -> Tensor:
    """The textbook loop: random start, sign steps, projection; no early stop, no contract."""
    alpha = 2.5 * eps / steps
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(clf(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return x_adv


def contenders(eps: float) -> dict[str, Any]:
    threat = ft.Linf(eps)
    out: dict[str, Any] = {}
    for precision in ("fp32", "bf16"):
        out[f"fgsm/{precision}"] = (ft.attacks.FGSM(precision=precision), threat)
        # no early stop, as in bench/run.py: every contender iterates on every sample
        out[f"pgd-40/{precision}"] = (ft.attacks.PGD(steps=40, early_stop=False, precision=precision), threat)
        apgd = ft.attacks.APGD(steps=100, early_stop=False, precision=precision)
        out[f"apgd-ce-100/{precision}"] = (apgd, threat)
    out["pgd-40/plain-loop"] = ("plain", threat)
    out["pgd-40/fp32-ftz"] = ("ftz", (ft.attacks.PGD(steps=40, early_stop=False), threat))
    return out


def run_one(name: str, spec: Any, clf: ft.Classifier, x: Tensor, y: Tensor, batch: int) -> Tensor:
    """The adversarial batch and its verdict (the predicted labels), as in bench/run.py's default unit:
    the plain loop pays one no-grad forward for it; fortify's contract already computed the logits."""
    attack, threat = spec
    if attack == "ftz":  # the denormal lever: flush-to-zero for the attack's duration, restored after
        torch.set_flush_denormal(True)
        try:
            return run_one(name, threat, clf, x, y, batch)
        finally:
            torch.set_flush_denormal(False)
    preds = []
    for xb, yb in zip(x.split(batch), y.split(batch), strict=True):
        if attack == "plain":
            x_adv = plain_pgd(clf, xb, yb, threat.eps, 40)
            with torch.no_grad():
                preds.append(clf(x_adv).argmax(1))
        else:
            preds.append(attack.attack(clf, xb, yb, threat).logits.argmax(1))
    return torch.cat(preds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--model", type=Path, default=None, help="a fortify model file (default: the bench model)"
    )
    parser.add_argument("--only", nargs="*", default=None, help="contender names to run (default: all)")
    parser.add_argument(
        "--agreement", type=int, default=0, help="also: standard suite fp32 vs bf16 on N images"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/precision.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clf = ft.zoo.load(args.model) if args.model else trained_model(quick=False)[0]
    x, y = test_images(args.n)
    counter = FlopCounter(clf.module)
    specs = contenders(args.eps)
    if args.only:
        specs = {k: v for k, v in specs.items() if k in args.only}
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    robust: dict[str, float] = {}
    torch.manual_seed(0)
    for r in range(args.rounds):
        rows["gemm"]["gflops"].append(gemm_rate() / 1e9)
        for name, spec in specs.items():
            counter.reset()
            wall, cpu = time.perf_counter(), time.process_time()
            pred = run_one(name, spec, clf, x, y, args.batch)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            flops = counter.flops()
            rows[name]["wall_s"].append(wall)
            rows[name]["cpu_s"].append(cpu)
            rows[name]["gflops_wall"].append(flops / wall / 1e9)
            robust[name] = float((pred.cpu() == y).float().mean())
            print(
                f"round {r + 1} {name:22s} {wall:7.2f} s wall {cpu:7.2f} s cpu "
                f"{flops / wall / 1e9:6.1f} GFLOP/s robust {robust[name]:.3f}",
                flush=True,
            )
    gemm = min(rows["gemm"]["gflops"]), max(rows["gemm"]["gflops"])
    summary: dict[str, Any] = {
        "n": args.n,
        "batch": args.batch,
        "threads": args.threads,
        "eps": args.eps,
        "gemm_gflops": rows["gemm"]["gflops"],
        "rows": {},
    }
    best_gemm = max(rows["gemm"]["gflops"])
    for name in specs:
        best_wall = min(rows[name]["wall_s"])
        summary["rows"][name] = {
            "wall_s": rows[name]["wall_s"],
            "cpu_s": rows[name]["cpu_s"],
            "best_gflops": max(rows[name]["gflops_wall"]),
            "fraction_of_gemm": max(rows[name]["gflops_wall"]) / best_gemm,
            "robust_accuracy": robust[name],
            "best_wall_s": best_wall,
        }
    if "pgd-40/plain-loop" in specs:
        plain = min(rows["pgd-40/plain-loop"]["wall_s"])
        for name in specs:
            summary["rows"][name]["speedup_vs_plain_pgd40"] = plain / min(rows[name]["wall_s"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")  # before the long agreement runs
    if args.agreement:
        xa, ya = x[: args.agreement], y[: args.agreement]
        per = {}
        for precision in ("fp32", "bf16"):
            res = ft.evaluate(clf, xa, ya, ft.Linf(args.eps), suite="standard", precision=precision)
            per[precision] = {
                "robust_accuracy": res.robust_accuracy,
                "total_s": res.timing["total_s"],
                "broken": sorted(s.index for s in res.samples if not s.robust and s.clean_correct),
            }
            print(
                f"standard suite {precision}: robust {res.robust_accuracy:.4f} "
                f"in {res.timing['total_s']:.1f} s",
                flush=True,
            )
        only_fp32 = sorted(set(per["fp32"]["broken"]) - set(per["bf16"]["broken"]))
        only_bf16 = sorted(set(per["bf16"]["broken"]) - set(per["fp32"]["broken"]))
        summary["agreement"] = {p: {k: v for k, v in d.items() if k != "broken"} for p, d in per.items()}
        summary["agreement"] |= {
            "n": args.agreement,
            "broken_only_by_fp32": only_fp32,
            "broken_only_by_bf16": only_bf16,
        }
    print(f"GEMM {gemm[0]:.0f}-{gemm[1]:.0f} GFLOP/s")
    for name, row in summary["rows"].items():
        extra = (
            f" {row['speedup_vs_plain_pgd40']:.2f}x plain PGD-40" if "speedup_vs_plain_pgd40" in row else ""
        )
        print(
            f"{name:22s} best {row['best_wall_s']:7.2f} s  {row['best_gflops']:6.1f} GFLOP/s = "
            f"{row['fraction_of_gemm']:.0%} of GEMM{extra}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
