"""Evaluation: per-sample worst case over attack suites, eps sweeps, diagnostics, adaptive attacks."""

from fortify.evaluation.adaptive import AdaptivePlan, AttackView, attack_view, plan_for
from fortify.evaluation.evaluate import evaluate
from fortify.evaluation.replay import gallery_adversarials
from fortify.evaluation.stream import evaluate_batches, sweep_batches
from fortify.evaluation.suites import Evidence, SuiteEntry, build_suite, register_suite, suite_names
from fortify.evaluation.sweep import sweep

__all__ = [
    "evaluate",
    "sweep",
    "evaluate_batches",
    "sweep_batches",
    "SuiteEntry",
    "Evidence",
    "build_suite",
    "register_suite",
    "suite_names",
    "AdaptivePlan",
    "AttackView",
    "attack_view",
    "plan_for",
    "gallery_adversarials",
]
