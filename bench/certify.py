"""Randomized smoothing on Fashion-MNIST: certified accuracy curves and sampling throughput.

    .venv/bin/python bench/certify.py --sigmas 0.25 0.5 --epochs 1 --n 1000 --n0 100 --images 100

1. trains cnn-small with Gaussian noise augmentation (``method="noise"``) at each sigma on the 60,000
   training images (or reuses ``runs/bench-certify/sigma-S/model.safetensors``);
2. certifies the first ``--images`` test images (CERTIFY of Cohen et al. 2019) and records certified
   accuracy at radii 0, 0.25, 0.5, 0.75, 1.0 in ``bench/results/certify-sigma-S.json``;
3. measures throughput: noise samples classified per second by ``Smooth.sample_counts`` against a plain
   batched forward loop of the same model over pre-made inputs of the same batch size, interleaved in
   one process (median of ``--repeats``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import fortify as ft

RADII = [0.0, 0.25, 0.5, 0.75, 1.0]


def trained_model(sigma: float, epochs: int, method: str, folder: Path) -> ft.Classifier:
    path = folder / f"{method}-sigma-{sigma:g}" / "model.safetensors"
    if path.is_file():
        return ft.zoo.load(path)
    x, y = ft.data.load("fashion-mnist", "train")
    torch.manual_seed(0)
    clf = ft.Classifier(ft.zoo.create("cnn-small", (1, 28, 28), 10), num_classes=10)
    history = ft.train(clf, (x, y), epochs=epochs, seed=0, method=method, sigma=sigma, progress=False)
    ft.zoo.save(clf, path, dataset="fashion-mnist", training=history.model_dump())
    print(
        f"trained {method} sigma={sigma:g}: {history.total_s:.0f}s, "
        f"train acc (clean, first 5,000) {history.epochs[-1].accuracy:.3f}",
        flush=True,
    )
    return clf


def accuracies(clf: ft.Classifier, sigma: float) -> tuple[float, float]:
    """Test accuracy of the base model on clean inputs and on inputs with N(0, sigma^2) noise."""
    x, y = ft.data.load("fashion-mnist", "test")
    gen = torch.Generator().manual_seed(0)
    clean = ft.attacks.accuracy(clf, x, y)
    noisy_x = x + sigma * torch.randn(x.shape, generator=gen)
    noisy = ft.attacks.accuracy(clf, noisy_x, y, check=False)
    return clean, noisy


def throughput(clf: ft.Classifier, sigma: float, batch_size: int, repeats: int) -> dict[str, float]:
    """Noise samples per second: Smooth.sample_counts vs a plain forward loop, interleaved."""
    x, _ = ft.data.load("fashion-mnist", "test", n=4)
    per_row = 4 * batch_size
    smooth = ft.certify.Smooth(clf, sigma, batch_size=batch_size)
    inputs = (x.repeat_interleave(per_row, dim=0) + sigma * torch.randn(4 * per_row, 1, 28, 28)).split(
        batch_size
    )
    smooth_rates, plain_rates = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        smooth.sample_counts(x, per_row)
        smooth_rates.append(4 * per_row / (time.perf_counter() - started))
        started = time.perf_counter()
        with torch.inference_mode():
            for batch in inputs:
                clf(batch).argmax(dim=1)
        plain_rates.append(4 * per_row / (time.perf_counter() - started))
    smooth_rate, plain_rate = statistics.median(smooth_rates), statistics.median(plain_rates)
    return {"smooth_per_s": smooth_rate, "plain_per_s": plain_rate, "ratio": smooth_rate / plain_rate}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--method", default="noise")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=0.001)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", type=Path, default=Path("runs/bench-certify"))
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = ft.data.load("fashion-mnist", "test", n=args.images)
    summary = []
    for sigma in args.sigmas:
        clf = trained_model(sigma, args.epochs, args.method, args.models)
        clean, noisy = accuracies(clf, sigma)
        smooth = ft.certify.Smooth(clf, sigma, batch_size=args.batch_size)
        result = ft.certify.certified_accuracy(
            smooth, x, y, radii=RADII, n0=args.n0, n=args.n, alpha=args.alpha, dataset="fashion-mnist"
        )
        result.save(str(args.out / f"certify-{args.method}-sigma-{sigma:g}.json"))
        section = result.sections["certification"]
        row = {
            "sigma": sigma,
            "method": args.method,
            "base_clean": clean,
            "base_noisy": noisy,
            "certified": dict(zip(RADII, section["certified_accuracy"], strict=True)),
            "abstain_rate": section["abstain_rate"],
            "max_radius": section["max_radius"],
            "time_s": result.timing["total_s"],
            "noise_samples_per_s": result.timing["noise_samples_per_s"],
        }
        summary.append(row)
        print(json.dumps(row), flush=True)
    if not args.skip_throughput:
        clf = trained_model(args.sigmas[0], args.epochs, args.method, args.models)
        rates = throughput(clf, args.sigmas[0], args.batch_size, args.repeats)
        print(json.dumps({"throughput": rates, "threads": args.threads}), flush=True)
        summary.append({"throughput": rates, "threads": args.threads, "batch_size": args.batch_size})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"certify-{args.method}-summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
