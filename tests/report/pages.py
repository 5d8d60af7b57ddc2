"""One synthetic Result (or list of Results) per kind of report page, and the numbers each must show.

Every figure a page must show is computed here from the Result with the report's own formatting
(``pct``), never written down, so a page that drops or mislabels a number fails its test.
"""

from __future__ import annotations

from collections.abc import Callable

from fortify.report.sections import pct
from fortify.result import Result, Sweep
from tests.report.factories import make_result


def evaluation() -> list[Result]:
    return [make_result(clean=0.85, robust=0.35)]


def sweep() -> list[Result]:
    result = make_result(eps=0.3, clean=0.9, robust=0.05)
    result.sweep = Sweep(
        norm="linf",
        epsilons=[0.05, 0.1, 0.3],
        robust_accuracy=[0.65, 0.4, 0.05],
        clean_accuracy=0.9,
        method="min-norm+suite",
    )
    return [result]


def certification() -> list[Result]:
    samples = [
        {"index": i, "label": i % 4, "prediction": -1 if i % 7 == 0 else i % 4,
         "radius": 0.0 if i % 7 == 0 else 0.12 * (i % 5), "p_lower": 0.6, "correct": i % 7 != 0}
        for i in range(30)
    ]  # fmt: skip
    radii = [0.0, 0.25, 0.5]
    accuracy = [sum(s["correct"] and s["radius"] >= r for s in samples) / 30 for r in radii]
    section = {
        "sigma": 0.25,
        "n0": 50,
        "n": 500,
        "alpha": 0.001,
        "max_radius": 0.52,
        "radii": radii,
        "certified_accuracy": accuracy,
        "abstain_rate": sum(s["prediction"] == -1 for s in samples) / 30,
        "samples": samples,
    }
    return [
        Result(
            kind="certification",
            model={"class": "Classifier", "module": "TinyCNN", "parameters": 1234},
            dataset="synthetic",
            seed=0,
            n_samples=30,
            clean_accuracy=accuracy[0],
            timing={"total_s": 2.5, "noise_samples_per_s": 30 * 550 / 2.5},
            sections={"certification": section},
        )
    ]


def guard() -> list[Result]:
    result = make_result(clean=0.9, robust=0.6)
    result.sections["guard"] = {
        "clean_review_rate": 0.07,
        "clean_reject_rate": 0.02,
        "clean_accuracy": 0.88,
        "accepted_clean_accuracy": 0.93,
        "adaptive_success_rate": 0.31,
        "latency_ms": {"single_p50": 1.25, "single_p99": 2.5, "bare_single_p50": 0.5, "batch64_p50": 9.0},
        "naive": {"pgd": {"fooled": 0.95, "detected": 0.81, "success": 0.14}},
    }
    return [result]


def poisoning() -> list[Result]:
    section = {
        "attack": {"attack": "BadNets", "trigger": "patch", "target": 0},
        "n_poisoned": 50,
        "n_train": 1000,
        "undefended": {"clean_accuracy": 0.91, "attack_success_rate": 0.97},
        "inspections": {
            "spectral": {
                "n_flagged": 75,
                "precision": 0.6,
                "recall": 0.9,
                "after_filter": {"clean_accuracy": 0.9, "attack_success_rate": 0.12},
                "random_filter": {"clean_accuracy": 0.9, "attack_success_rate": 0.95},
            }
        },
        "perfect_filter": {"clean_accuracy": 0.9, "attack_success_rate": 0.03},
        "time_s": 12.0,
    }
    return [
        Result(
            kind="audit",
            model={"arch": "cnn-tiny", "epochs": 2},
            dataset="synthetic",
            seed=0,
            n_samples=200,
            clean_accuracy=0.91,
            attack_success_rate=0.97,
            timing={"total_s": 12.0},
            sections={"poisoning": section},
        )
    ]


def several() -> list[Result]:
    """A sweep first (its own threat is its largest eps), then single-eps evaluations."""
    return [*sweep(), make_result(eps=0.01, clean=0.95, robust=0.8), make_result(eps=0.03, robust=0.55)]


def key_numbers(kind: str, results: list[Result]) -> list[str]:
    """The figures the page of ``kind`` must show, as the page formats them."""
    main = results[0]
    if kind == "evaluation":
        return [pct(main.clean_accuracy), pct(main.robust_accuracy), pct(main.attack_success_rate)]
    if kind == "sweep":
        assert main.sweep is not None
        return [pct(a) for a in main.sweep.robust_accuracy] + [pct(main.sweep.clean_accuracy)]
    if kind == "certification":
        section = main.sections["certification"]
        return [
            *(pct(a) for a in section["certified_accuracy"]),
            pct(section["abstain_rate"]),
            f"{section['sigma']:.4g}",
            f"{section['n']:,}",
            f"{section['alpha']:.4g}",
            f"{main.timing['noise_samples_per_s']:,.0f} per second",
        ]
    if kind == "guard":
        g = main.sections["guard"]
        return [
            pct(g["clean_review_rate"]),
            pct(g["adaptive_success_rate"]),
            pct(g["naive"]["pgd"]["success"]),
        ]
    if kind == "poisoning":
        p = main.sections["poisoning"]
        return [
            pct(p["undefended"]["attack_success_rate"]),
            pct(p["inspections"]["spectral"]["after_filter"]["attack_success_rate"]),
            pct(p["perfect_filter"]["attack_success_rate"]),
        ]
    if kind == "several":
        robust = [
            a for r in results for a in ([*r.sweep.robust_accuracy] if r.sweep else [r.robust_accuracy])
        ]
        return [pct(min(a for a in robust if a is not None))] + [pct(r.clean_accuracy) for r in results]
    raise ValueError(kind)


PAGES: dict[str, Callable[[], list[Result]]] = {
    "evaluation": evaluation,
    "sweep": sweep,
    "certification": certification,
    "guard": guard,
    "poisoning": poisoning,
    "several": several,
}
