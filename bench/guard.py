"""The guard, measured: detection naive vs adaptive, the guard on real models, latency, the monitor.

One process, Fashion-MNIST, Linf 0.1 (C&W at L2 1.5, its own norm), two threads. Models are fortify
files given with ``--model NAME=PATH`` (e.g. the demo model ``runs/demo/model.safetensors`` and a
hardened one); ``--train-missing`` trains a standard cnn-small (1 epoch) where a path does not exist.
Guards are calibrated at ``--fpr`` (default 5%) on the last 2,000 test images; everything is measured
on the first ``--n`` test images, which the calibration never saw.

1. Detection (first model): per detector alone and all combined, the share of adversarial points the
   guard does not ACCEPT, for FGSM, PGD-40, C&W and Square made against the bare model (naive), and
   the adaptive success through the guard under the ``--suite`` with the policy in the objective.
2. The full guard on every model: clean review rate, accepted clean accuracy, naive and adaptive
   success through it.
3. Latency (in process, interleaved, p50/p99 over ``--repeats``): one image and a batch of 64 for the
   bare model, the model behind median-filter preprocessing, and the full guard (preprocessing,
   a 3-model ensemble, 3 detectors).
4. Monitor: 1,000 clean then 200 PGD requests, one per call: requests and milliseconds from the first
   adversarial request to the alert; false alarms on 10,000 clean requests; and an extraction-style
   stream from one key (small random walks from a few seeds) against PRADA: queries until the alert.

    python bench/guard.py --model demo=runs/demo/model.safetensors --model hardened=runs/h/model.safetensors
    python bench/guard.py --quick        # smoke: n 40, quick suite, 1 model trained on 5k images
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

import fortify as ft
from fortify.runtime import AlertRule, Guard, Monitor
from fortify.runtime.build import calibration_data
from fortify.runtime.evaluation import judge_points, naive_points

ROOT = Path(__file__).resolve().parent.parent
DETECTORS = ("squeeze", "mahalanobis", "input-stats", "confidence")
ATTACK_RULE = AlertRule(
    name="attack", metric="review_rate", window=50, threshold=0.3, min_count=20, cooldown_s=0
)
EXTRACTION_RULE = AlertRule(
    name="extraction", metric="prada_w", window_s=3600, op="<", threshold=0.9, min_count=1
)


def load_models(specs: list[str], train_missing: bool, quick: bool) -> dict[str, ft.Classifier]:
    models = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        target = Path(path)
        if not target.is_file():
            if not train_missing:
                sys.exit(f"{target} does not exist (use --train-missing to train a standard cnn-small there)")
            x, y = ft.data.load("fashion-mnist", "train", n=5000 if quick else None)
            torch.manual_seed(0)
            clf = ft.Classifier(ft.zoo.create("cnn-small", (1, 28, 28), 10), num_classes=10)
            ft.train(clf, (x, y), epochs=1, lr=1e-3, batch_size=128, seed=0, progress=False)
            ft.zoo.save(clf, target, dataset="fashion-mnist", method="standard", epochs=1)
        models[name] = ft.zoo.load(target)
    return models


def guard_for(clf: ft.Classifier, detectors, x_cal, y_cal, fpr: float, preprocess=()) -> Guard:
    return Guard([clf], preprocess=list(preprocess), detectors=list(detectors)).calibrate(
        x_cal, fpr=fpr, y=y_cal
    )


def detection_table(clf, x, y, x_cal, y_cal, args) -> list[dict[str, Any]]:
    rows = []
    configs = [(d,) for d in DETECTORS] + [DETECTORS]
    points = naive_points(clf, x, y, ft.Linf(args.eps), ("fgsm", "pgd", "square"), seed=0)
    points.update(naive_points(clf, x, y, ft.L2(args.cw_eps), ("cw",), seed=0))
    for dets in configs:
        guard = guard_for(clf, dets, x_cal, y_cal, args.fpr)
        naive = judge_points(guard, points)
        t0 = time.perf_counter()
        adaptive = ft.evaluate(guard, x, y, ft.Linf(args.eps), args.suite, seed=0)
        rows.append(
            {
                "detectors": "+".join(dets),
                "clean_review_rate": adaptive.sections["guard"]["clean_review_rate"],
                "naive": naive,
                "adaptive_success": adaptive.attack_success_rate,
                "adaptive_flag_rate": (adaptive.detector or {}).get("adversarial_flag_rate"),
                "bare_success_pgd": naive["pgd"]["fooled"],
                "adaptive_time_s": time.perf_counter() - t0,
            }
        )
        print(f"  detection {rows[-1]['detectors']}: done in {rows[-1]['adaptive_time_s']:.0f} s", flush=True)
    return rows


def full_guard_rows(models, x, y, x_cal, y_cal, args) -> list[dict[str, Any]]:
    rows = []
    for name, clf in models.items():
        guard = guard_for(clf, DETECTORS[:3], x_cal, y_cal, args.fpr, [ft.defenses.MedianFilter(2)])
        result = ft.runtime.evaluate_guard(
            guard, x, y, ft.Linf(args.eps), args.suite, naive_attacks=("pgd",), seed=0
        )
        bare = ft.evaluate(clf, x, y, ft.Linf(args.eps), args.suite, seed=0)
        g = result.sections["guard"]
        rows.append(
            {
                "model": name,
                "bare_clean": bare.clean_accuracy,
                "bare_robust": bare.robust_accuracy,
                "bare_success": bare.attack_success_rate,
                "clean_review_rate": g["clean_review_rate"],
                "accepted_clean_accuracy": g["accepted_clean_accuracy"],
                "guard_clean_accuracy": g["clean_accuracy"],
                "naive_pgd_success": g["naive"]["pgd"]["success"],
                "adaptive_success": g["adaptive_success_rate"],
                "guard_robust": result.robust_accuracy,
                "reliable": result.reliable,
            }
        )
        print(f"  full guard on {name}: done", flush=True)
    return rows


def latency_rows(models, x, x_cal, y_cal, args) -> dict[str, dict[str, float]]:
    clf = next(iter(models.values()))
    members = [clf]
    for seed in (1, 2):
        torch.manual_seed(seed)
        other = ft.Classifier(ft.zoo.create("cnn-small", (1, 28, 28), 10), num_classes=10)
        xt, yt = ft.data.load("fashion-mnist", "train", n=5000)
        ft.train(other, (xt, yt), epochs=1, lr=1e-3, batch_size=128, seed=seed, progress=False)
        members.append(other)
    median = ft.defenses.MedianFilter(2)
    pre = ft.defenses.defend(clf, [median])
    full = Guard(members, preprocess=[median], detectors=list(DETECTORS[:3])).calibrate(
        x_cal, fpr=args.fpr, y=y_cal
    )
    batch = x[:64]
    contenders = {
        "bare model": lambda b: clf.predict(b),
        "model + preprocessing": lambda b: pre.predict(b),
        "full guard (median + 3 models + 3 detectors)": lambda b: full(b),
    }
    times: dict[str, dict[str, list[float]]] = {k: {"one": [], "64": []} for k in contenders}
    with torch.no_grad():
        for fn in contenders.values():  # warm-up
            fn(x[:1])
            fn(batch)
        for i in range(args.repeats):
            one = x[i % x.shape[0] : i % x.shape[0] + 1]
            for name, fn in contenders.items():
                t0 = time.perf_counter()
                fn(one)
                times[name]["one"].append((time.perf_counter() - t0) * 1000)
                if i % 5 == 0:
                    t0 = time.perf_counter()
                    fn(batch)
                    times[name]["64"].append((time.perf_counter() - t0) * 1000)
    return {
        name: {f"{k}_p{q}": _q(v, q / 100) for k, v in t.items() for q in (50, 99)}
        for name, t in times.items()
    }


def monitor_rows(models, x, y, x_cal, y_cal, args) -> dict[str, Any]:
    clf = next(iter(models.values()))
    guard = guard_for(clf, DETECTORS[:3], x_cal, y_cal, args.fpr, [ft.defenses.MedianFilter(2)])
    x_clean, _ = ft.data.load("fashion-mnist", "test", n=min(8000, args.false_alarm_n))
    x_adv = ft.attacks.PGD(steps=40)(clf, x[:200], y[:200], ft.Linf(args.eps))
    monitor = Monitor(rules=[ATTACK_RULE])
    stream = torch.cat([x_clean[:1000], x_adv])
    fired_at = alert_ms = scored_to_alert_ms = first_adv_wall = None
    estimate_error = None
    for i in range(stream.shape[0]):
        t_arrive, wall = time.perf_counter(), time.time()
        if i == 1000:
            first_adv_t, first_adv_wall = t_arrive, wall
        verdicts = guard(stream[i : i + 1])
        t_scored = time.perf_counter()
        alerts = monitor.observe(verdicts, stream[i : i + 1], now=wall)
        if alerts and i >= 1000:
            fired_at = i - 1000 + 1
            alert_ms = (time.perf_counter() - first_adv_t) * 1000
            scored_to_alert_ms = (time.perf_counter() - t_scored) * 1000
            estimate_error = (alerts[0].first_offending_at - first_adv_wall) * 1000
            break
    early = sum(1 for a in monitor.alerts if first_adv_wall is None or a.fired_at < first_adv_wall)
    # false alarms: clean requests only, fresh monitor, cooldown 0 so every breach counts
    quiet = Monitor(rules=[ATTACK_RULE])
    false_alarms = 0
    clean_n = 0
    while clean_n < args.false_alarm_n:
        chunk = x_clean[: min(x_clean.shape[0], args.false_alarm_n - clean_n)]
        for i in range(chunk.shape[0]):
            false_alarms += len(quiet.observe(guard(chunk[i : i + 1]), now=float(clean_n + i)))
        clean_n += chunk.shape[0]
    # extraction: one key walks from 10 seeds with small steps (a Jacobian-augmentation-like stream)
    prada = Monitor(rules=[EXTRACTION_RULE])
    g = torch.Generator().manual_seed(0)
    seeds = x_clean[:10]
    queries_to_alert = None
    for i in range(1000):
        q = (seeds[i % 10 : i % 10 + 1] + 0.05 * torch.randn(1, 1, 28, 28, generator=g).sign()).clamp(0, 1)
        if prada.observe(guard(q), q, client="thief", now=float(i)):
            queries_to_alert = i + 1
            break
    benign = Monitor(rules=[EXTRACTION_RULE])
    benign_alerts = sum(
        len(benign.observe(guard(x_clean[i : i + 1]), x_clean[i : i + 1], client="benign", now=float(i)))
        for i in range(1000)
    )
    return {
        "adversarial_requests_to_alert": fired_at,
        "ms_first_adversarial_to_alert": alert_ms,
        "ms_offending_request_scored_to_alert": scored_to_alert_ms,
        "first_offending_estimate_minus_first_adversarial_ms": estimate_error,
        "alerts_on_the_1000_clean_before": early,
        "false_alarms_clean": false_alarms,
        "false_alarm_requests": clean_n,
        "extraction_queries_to_alert": queries_to_alert,
        "extraction_false_alarms_benign_1000": benign_alerts,
    }


def _q(values: list[float], q: float) -> float:
    return float(torch.tensor(values, dtype=torch.float64).quantile(q))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH of a fortify model file")
    parser.add_argument("--train-missing", action="store_true")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--cw-eps", type=float, default=1.5)
    parser.add_argument("--fpr", type=float, default=0.05)
    parser.add_argument("--suite", default="standard")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--false-alarm-n", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", default="detection,full,latency,monitor")
    parser.add_argument("--quick", action="store_true", help="smoke run: n 40, quick suite, small counts")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "guard.json")
    args = parser.parse_args()
    if args.quick:
        args.n, args.suite, args.repeats, args.false_alarm_n = 40, "quick", 20, 500
        args.model = args.model or [f"quick={ROOT / 'runs' / 'bench' / 'guard-quick.safetensors'}"]
        args.train_missing = True
    if not args.model:
        sys.exit("give at least one --model NAME=PATH")
    torch.set_num_threads(args.threads)
    models = load_models(args.model, args.train_missing, args.quick)
    x, y = ft.data.load("fashion-mnist", "test", n=args.n)
    x_cal, y_cal, _ = calibration_data("fashion-mnist", 2000)
    parts = set(args.parts.split(","))
    record: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "torch": torch.__version__}
    first = next(iter(models.values()))
    if "detection" in parts:
        record["detection"] = detection_table(first, x, y, x_cal, y_cal, args)
    if "full" in parts:
        record["full_guard"] = full_guard_rows(models, x, y, x_cal, y_cal, args)
    if "latency" in parts:
        record["latency_ms"] = latency_rows(models, x, x_cal, y_cal, args)
    if "monitor" in parts:
        record["monitor"] = monitor_rows(models, x, y, x_cal, y_cal, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(args.out)
    print(json.dumps(record, indent=2, default=str))


if __name__ == "__main__":
    main()
