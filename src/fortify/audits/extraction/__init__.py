"""Model extraction: knockoff / copycat stealing against a black box, and output hardening.

>>> from fortify.audits import extraction
>>> x_queries = extraction.query_set("natural", x_pool, 5000)      # or "noise", "perturbed"
>>> stolen, curve = extraction.knockoff(victim_bb, x_queries, [500, 1000, 5000], make_student, x_test, y_test)
>>> curve.accuracy, curve.agreement, curve.detected_at        # detected_at: with detected=AlertWatch(...)
>>> served = extraction.hardened(clf, "reverse-sigmoid")     # or "top1", "round:2"
>>> extraction.transfer(stolen, victim_bb, x, y, ft.Linf(0.1), "di-mi-fgsm")   # steal, then evade
"""

from fortify.audits.extraction.hardening import MODES, accuracy_cost, hardened, reverse_sigmoid
from fortify.audits.extraction.knockoff import ExtractionCurve, fit_student, knockoff
from fortify.audits.extraction.queries import KINDS as QUERY_KINDS
from fortify.audits.extraction.queries import query_set
from fortify.audits.extraction.transfer import transfer

__all__ = [
    "knockoff",
    "fit_student",
    "ExtractionCurve",
    "hardened",
    "reverse_sigmoid",
    "accuracy_cost",
    "MODES",
    "transfer",
    "query_set",
    "QUERY_KINDS",
]
