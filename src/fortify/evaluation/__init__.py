"""Evaluation: per-sample worst case over suites of attacks."""

from fortify.evaluation.evaluate import evaluate
from fortify.evaluation.suites import SuiteEntry, build_suite, register_suite, suite_names

__all__ = ["evaluate", "SuiteEntry", "build_suite", "register_suite", "suite_names"]
