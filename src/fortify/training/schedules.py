"""Schedules over training progress: learning rates and the epsilon curriculum.

Both are functions of the fraction of training done, ``t`` in ``[0, 1]`` (``(step + 1) / total`` at the
end of a step), so they work the same for any number of epochs and batches.

- ``lr_factor("constant" | "cosine" | "cyclic", t)``: multiplier of the base learning rate.
  ``cosine`` decays from 1 to 0 (Loshchilov & Hutter, SGDR, ICLR 2017, without restarts); ``cyclic`` is
  the one-cycle triangle used by fast adversarial training (Wong, Rice & Kolter, ICLR 2020): linear up to
  1 at ``t = 0.4``, then linear down to 0.
- ``eps_factor(t, ramp)``: the epsilon curriculum, a linear ramp from 0 to 1 over the first ``ramp``
  fraction of training, then 1 (as in Gowal et al. 2018 and the IBP/CROWN training recipes).
"""

from __future__ import annotations

import math

from fortify._validate import is_number
from fortify.types import FortifyError

LR_SCHEDULES = ("constant", "cosine", "cyclic")
CYCLIC_PEAK = 0.4


def check_schedule(name: str) -> str:
    if name not in LR_SCHEDULES:
        raise FortifyError(f"unknown lr schedule {name!r}; choose one of {list(LR_SCHEDULES)}")
    return name


def lr_factor(name: str, t: float) -> float:
    """Learning-rate multiplier at training fraction ``t`` in ``[0, 1]``."""
    t = min(max(t, 0.0), 1.0)
    if name == "constant":
        return 1.0
    if name == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if name == "cyclic":
        return t / CYCLIC_PEAK if t < CYCLIC_PEAK else (1.0 - t) / (1.0 - CYCLIC_PEAK)
    raise FortifyError(f"unknown lr schedule {name!r}; choose one of {list(LR_SCHEDULES)}")


def check_ramp(ramp: float) -> float:
    if not is_number(ramp) or not 0.0 <= ramp <= 1.0:
        raise FortifyError(f"eps_ramp must be a fraction of training in [0, 1], got {ramp!r}")
    return float(ramp)


def eps_factor(t: float, ramp: float) -> float:
    """Fraction of the target epsilon to train against at training fraction ``t`` (1 once ramped up)."""
    if ramp <= 0.0:
        return 1.0
    return min(max(t, 0.0) / ramp, 1.0)
