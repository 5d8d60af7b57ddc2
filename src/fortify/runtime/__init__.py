"""The runtime: a guard in front of the model (verdicts, bundles) and a monitor of the traffic.

>>> guard = ft.Guard([clf], detectors=["squeeze", "mahalanobis"]).calibrate(x_val, fpr=0.05)
>>> verdicts = guard(x)                       # one ft.runtime.Verdict per input
>>> ft.evaluate(guard, x, y, ft.Linf(0.1))    # the deployed artifact, attacked adaptively
>>> guard.save("bundle/"); ft.Guard.load("bundle/")
"""

from fortify.runtime.build import build_guard, calibration_overlap, parse_detectors, parse_preprocess
from fortify.runtime.detectors import DEFAULT_DETECTORS, DETECTORS, make_detector
from fortify.runtime.evaluation import evaluate_guard, guard_section, naive_through_guard
from fortify.runtime.guard import DEFAULT_REJECT_FPR, Guard
from fortify.runtime.monitor import Alert, Monitor
from fortify.runtime.rules import DEFAULT_RULES, AlertRule, load_rules, parse_rules
from fortify.runtime.verdict import UNSCORED, Status, Verdict

__all__ = [
    "Guard",
    "Monitor",
    "Alert",
    "AlertRule",
    "DEFAULT_RULES",
    "load_rules",
    "parse_rules",
    "Verdict",
    "Status",
    "UNSCORED",
    "DETECTORS",
    "DEFAULT_DETECTORS",
    "DEFAULT_REJECT_FPR",
    "make_detector",
    "evaluate_guard",
    "build_guard",
    "calibration_overlap",
    "parse_detectors",
    "parse_preprocess",
    "guard_section",
    "naive_through_guard",
]
