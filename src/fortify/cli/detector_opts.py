"""The `--detector` options of `fortify evaluate` and `fortify sweep`: a calibrated detector in front.

``--detector squeeze`` puts feature squeezing (``fortify.detect.FeatureSqueezing``) in front of the
loaded model, calibrated at ``--detector-fpr`` on clean images that the evaluation does not score
(``fortify.detect.calibration.with_detector``, which this module re-exports). The evaluation then
judges and attacks the model together with its detector, and the result's ``detector`` record says
where it was calibrated. This module only turns the options into a ``DetectorSpec`` and a summary line.
"""

from __future__ import annotations

from typing import Annotated

import typer

from fortify import data as datasets
from fortify.detect import DEFAULT_FPR
from fortify.detect.calibration import (
    CALIBRATION_SPLIT,
    DEFAULT_CALIBRATION_N,
    DEFAULT_SQUEEZE_BITS,
    DEFAULT_SQUEEZE_MEDIAN,
    DETECTORS,
    CalibrationSource,
    DetectorSpec,
    with_detector,
)
from fortify.result import Result
from fortify.types import FortifyError

__all__ = ["detector_spec", "detector_line", "with_detector", "DetectorSpec"]


DetectorName = Annotated[
    str | None,
    typer.Option(
        "--detector",
        help="put a runtime detector in front of the model and judge and attack them together: "
        "'squeeze' (feature squeezing, Xu et al. 2018). It is calibrated on clean images the "
        f"evaluation does not score: the first --calibration-n images of the {CALIBRATION_SPLIT} "
        "split of --data (those after the evaluated ones if --split is train).",
    ),
]
DetectorFpr = Annotated[
    float | None,
    typer.Option(
        "--detector-fpr",
        help=f"target false-positive rate on clean images, strictly between 0 and 1 "
        f"(default {DEFAULT_FPR:g})",
    ),
]
CalibrationN = Annotated[
    int | None,
    typer.Option(
        "--calibration-n",
        help=f"clean {CALIBRATION_SPLIT}-split images to calibrate the detector on (fewer if the "
        f"split has fewer; at least 1/fpr) (default {DEFAULT_CALIBRATION_N})",
    ),
]
SqueezeBits = Annotated[
    int | None,
    typer.Option(
        "--squeeze-bits",
        help=f"--detector squeeze: bit depth to squeeze to, 1-16; 0 leaves this squeezer out "
        f"(default {DEFAULT_SQUEEZE_BITS})",
    ),
]
SqueezeMedian = Annotated[
    int | None,
    typer.Option(
        "--squeeze-median",
        help="--detector squeeze: median-filter window (size x size), 2 up to the image side; 0 "
        f"leaves this squeezer out (default {DEFAULT_SQUEEZE_MEDIAN} for images, 0 for tables)",
    ),
]


def detector_spec(
    name: str | None,
    fpr: float | None,
    calibration_n: int | None,
    squeeze_bits: int | None,
    squeeze_median: int | None,
    dataset: str,
) -> DetectorSpec | None:
    """Validate the options before anything is loaded; ``None`` without ``--detector``.

    Raises ``FortifyError`` (one line, exit 2) for an unknown detector, an FPR outside (0, 1), a bit
    depth outside 1-16, a median window that does not fit ``dataset``'s images, no squeezer left,
    or a detector option given without ``--detector``.
    """
    if name is None:
        given = [
            flag
            for flag, value in (
                ("--detector-fpr", fpr),
                ("--calibration-n", calibration_n),
                ("--squeeze-bits", squeeze_bits),
                ("--squeeze-median", squeeze_median),
            )
            if value is not None
        ]
        if given:
            raise FortifyError(f"{given[0]} needs --detector (one of: {', '.join(DETECTORS)})")
        return None
    if name not in DETECTORS:
        raise FortifyError(f"unknown detector {name!r}; choose one of: {', '.join(DETECTORS)}")
    fpr = DEFAULT_FPR if fpr is None else fpr
    if not 0.0 < fpr < 1.0:
        raise FortifyError(f"--detector-fpr must be strictly between 0 and 1, got {fpr:g}")
    calibration_n = DEFAULT_CALIBRATION_N if calibration_n is None else calibration_n
    if calibration_n < 1:
        raise FortifyError(f"--calibration-n must be >= 1, got {calibration_n}")
    bits = DEFAULT_SQUEEZE_BITS if squeeze_bits is None else squeeze_bits
    if bits != 0 and not 1 <= bits <= 16:
        raise FortifyError(f"--squeeze-bits must be 1-16, or 0 to leave it out, got {bits}")
    shape = datasets.info(dataset).shape
    is_image = len(shape) == 3
    median = (DEFAULT_SQUEEZE_MEDIAN if is_image else 0) if squeeze_median is None else squeeze_median
    if median != 0:
        if not is_image:
            raise FortifyError(
                f"--squeeze-median needs images, but {dataset} has inputs {shape}; pass --squeeze-median 0"
            )
        if not 2 <= median <= min(shape[1:]):
            raise FortifyError(
                f"--squeeze-median must be 2-{min(shape[1:])} for {dataset}, or 0 to leave it out, "
                f"got {median}"
            )
    if not bits and not median:
        raise FortifyError("--detector squeeze needs a squeezer: --squeeze-bits or --squeeze-median > 0")
    return DetectorSpec(name, float(fpr), calibration_n, bits, median)


def detector_line(result: Result, calibration: CalibrationSource) -> str:
    """One line for the CLI summary: threshold, target FPR, flag rates, and how robustness was judged."""
    record = result.detector or {}
    return (
        f"detector {record.get('name')}: threshold {_num(record.get('threshold'))} calibrated at FPR "
        f"{_pct(record.get('fpr'))} on {calibration.describe()}; flags {_pct(record.get('clean_flag_rate'))}"
        f" of the scored clean images and {_pct(record.get('adversarial_flag_rate'))} of the final attack "
        "points. Robust accuracy counts a sample broken only by a misclassified, unflagged point (detector "
        "in the attack objective)."
    )


def _num(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "—"


def _pct(value: object) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "—"
