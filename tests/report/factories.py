"""Synthetic Results for report, gate and tracking tests: every optional part filled in, no model needed."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from fortify.result import (
    AttackRecord,
    Calibration,
    Diagnostic,
    Environment,
    Result,
    SampleRecord,
    Slice,
    Sweep,
    ThreatSpec,
)
from fortify.result_gallery import GalleryEntry, encode_pixels

HOSTILE = '<script>alert("x")</script>'


def make_result(
    *,
    eps: float = 0.1,
    norm: str = "linf",
    clean: float = 0.9,
    robust: float = 0.4,
    reliable: bool = True,
    n: int = 20,
    attack_name: str = "pgd",
    full: bool = False,
    **fields: Any,
) -> Result:
    """A consistent evaluation Result of ``n`` samples over 4 classes.

    ``clean`` and ``robust`` are realised exactly by the per-sample records (rounded to ``1/n``).
    ``full`` adds a sweep, slices, calibration and a certification section.
    """
    n_clean, n_robust = round(clean * n), round(robust * n)
    samples = [
        SampleRecord(
            index=i,
            label=i % 4,
            clean_pred=i % 4 if i < n_clean else (i + 1) % 4,
            clean_correct=i < n_clean,
            robust=i < n_robust,
            broken_by=attack_name if n_robust <= i < n_clean else None,
            adv_pred=(i + 1) % 4 if n_robust <= i < n_clean else None,
            perturbation_norm=eps if n_robust <= i < n_clean else None,
        )
        for i in range(n)
    ]
    diagnostics = [
        Diagnostic(name="iterative beats single-step", passed=True, evidence="pgd 40% <= fgsm 60%"),
        Diagnostic(
            name="gradients informative",
            passed=reliable,
            evidence="loss rises along the gradient"
            if reliable
            else "zero gradients on 95% of samples: gradient masking",
        ),
    ]
    values: dict[str, Any] = dict(
        threat=ThreatSpec(norm=norm, eps=eps),
        suite="standard",
        seed=0,
        dataset="synthetic",
        model={"class": "Classifier", "module": "TinyCNN", "num_classes": 4, "bounds": [0.0, 1.0]},
        n_samples=n,
        clean_accuracy=n_clean / n,
        robust_accuracy=n_robust / n,
        attack_success_rate=(n_clean - n_robust) / n_clean if n_clean else 0.0,
        per_attack=[
            AttackRecord(
                name="fgsm",
                config={"eps": eps},
                ran_on="all",
                n_attacked=n_clean,
                n_succeeded=(n_clean - n_robust) // 2,
                accuracy=(n_clean + n_robust) / (2 * n),
                cumulative_accuracy=(n_clean + n_robust) / (2 * n),
                time_s=0.01,
            ),
            AttackRecord(
                name=attack_name,
                config={"steps": 20},
                ran_on="all",
                n_attacked=n_clean,
                n_succeeded=n_clean - n_robust,
                accuracy=n_robust / n,
                cumulative_accuracy=n_robust / n,
                time_s=0.2,
            ),
        ],
        samples=samples,
        diagnostics=diagnostics,
        timing={"clean_s": 0.002 * n, "total_s": 0.5},
        environment=Environment.capture(),
    )
    if full:
        values |= _optional_parts(norm, n_clean / n, n_robust / n)
    values |= fields
    return Result(**values)


def gallery_for(result: Result, shape: tuple[int, int, int] = (1, 8, 8), seed: int = 0) -> list[GalleryEntry]:
    """Gallery entries for ``result``'s broken samples (at most 8): random images, perturbed by its eps."""
    generator = torch.Generator().manual_seed(seed)
    eps = result.threat.eps if result.threat else 0.1
    entries = []
    for sample in [s for s in result.samples if s.broken_by][:8]:
        clean = torch.rand(shape, generator=generator)
        adv = (clean + eps * torch.randn(shape, generator=generator).sign()).clamp(0, 1)
        entries.append(
            GalleryEntry(
                index=sample.index,
                label=sample.label,
                clean_pred=sample.clean_pred,
                adv_pred=sample.adv_pred,
                attack=sample.broken_by,
                perturbation_norm=float((adv - clean).abs().max()),
                shape=list(shape),
                bounds=(0.0, 1.0),
                clean=encode_pixels(clean),
                adversarial=encode_pixels(adv),
            )
        )
    return entries


def _optional_parts(norm: str, clean: float, robust: float) -> dict[str, Any]:
    edges = [i / 10 for i in range(11)]
    return {
        "sweep": Sweep(
            norm=norm,
            epsilons=[0.05, 0.1, 0.2, 0.3],
            robust_accuracy=[0.7, robust, 0.1, 0.0],
            clean_accuracy=clean,
            method="per-eps",
        ),
        "slices": [
            Slice(kind="class", key=str(k), n=5, clean_accuracy=clean, robust_accuracy=robust)
            for k in range(4)
        ]
        + [Slice(kind="group", key=HOSTILE, n=3, clean_accuracy=1.0, robust_accuracy=0.0)],
        "calibration": Calibration(
            bins=10,
            bin_edges=edges,
            ece_clean=0.05,
            ece_adversarial=0.6,
            clean_histogram=[0, 0, 0, 0, 1, 1, 2, 3, 5, 8],
            adversarial_histogram=[0, 0, 1, 2, 3, 3, 2, 3, 2, 4],
        ),
        "sections": {
            "certification": {
                "sigma": 0.25,
                "samples": [{"radius": 0.1 * (i % 6), "correct": i % 5 != 0} for i in range(20)],
            },
            "training": {"method": HOSTILE, "epochs": [{"epoch": 1, "loss": 0.5}]},
        },
    }


@functools.cache
def empty_mlflow_store() -> Path:
    """An empty, migrated MLflow SQLite store, made once per test session.

    Creating a store runs MLflow's schema migrations (seconds); tests copy this file into their run
    folder instead, then the code under test opens it exactly as it would open its own.
    """
    from mlflow.tracking import MlflowClient

    folder = Path(tempfile.mkdtemp(prefix="fortify-mlflow-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder / "mlflow.db"


def seed_mlflow_store(run_dir: Path) -> None:
    """Put a copy of the session's empty MLflow store where ``ft.track`` will look for it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_mlflow_store(), run_dir / "mlflow.db")
