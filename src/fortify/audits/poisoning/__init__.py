"""Poisoned training data and backdoors: attacks that measure the risk, inspections that lower it.

>>> from fortify.audits import poisoning as P
>>> attack = P.BadNets(trigger="patch", size=3, rate=0.05, target=0, seed=0)
>>> x_p, y_p, poisoned = attack.poison(x_train, y_train)
>>> asr = attack.success_rate(clf, x_test, y_test)      # triggered non-target inputs -> target
>>> flagged = P.spectral_signatures(clf, x_p, y_p, expected_rate=0.05)
>>> flagged = P.activation_clustering(clf, x_p, y_p)
>>> strip = P.STRIP(clf, x_pool).calibrate(x_val, fpr=0.05)   # a run-time Detector for ft.Guard
>>> section = P.audit(attack, train_fn, x_train, y_train, x_test, y_test)
"""

from fortify.audits.poisoning.audit import INSPECTIONS, audit
from fortify.audits.poisoning.backdoor import BadNets, CleanLabel
from fortify.audits.poisoning.inspection import activation_clustering, precision_recall, spectral_signatures
from fortify.audits.poisoning.triggers import BlendTrigger, PatchTrigger
from fortify.detect.strip import STRIP

__all__ = [
    "BadNets",
    "CleanLabel",
    "PatchTrigger",
    "BlendTrigger",
    "spectral_signatures",
    "activation_clustering",
    "precision_recall",
    "STRIP",
    "audit",
    "INSPECTIONS",
]
