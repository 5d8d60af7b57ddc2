"""Threat models: the set of perturbations an adversary may apply.

A threat is a ball of radius ``eps`` around each clean input, intersected with the input bounds of the
classifier. Attacks never branch on the norm; they call the threat's hooks (``threat.base``).
``Linf`` and ``L2`` live in ``threat.lp``, the pixel-count ``L0`` in ``threat.sparse``.
"""

from fortify.threat.base import Threat, make_threat, register_threat
from fortify.threat.lp import L2, Linf
from fortify.threat.sparse import L0

__all__ = ["Threat", "Linf", "L2", "L0", "make_threat", "register_threat"]
