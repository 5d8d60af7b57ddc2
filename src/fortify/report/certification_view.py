"""The report's Certification section: smoothing parameters, certified accuracy per radius, the curve.

A certification Result (``sections["certification"]``, written by ``fortify.certify``) is read in
its own terms: sigma, n0, n and alpha, the abstain rate, the throughput as a rate, and certified
accuracy at each listed radius, the one at radius 0 being the smoothed classifier's accuracy.
"""

from __future__ import annotations

from html import escape

from fortify._validate import is_number
from fortify.report.sections import count, fraction, number, pct, rate, table
from fortify.report.svg import Series, line_chart
from fortify.result import Result, readers


def certification_rows(result: Result) -> list[tuple[float, float, float]]:
    """``(radius, certified accuracy, smoothed accuracy)`` at each radius the certificate lists (or,
    for per-sample records only, at 0 and at quarters of the largest radius certified); the smoothed
    accuracy is the certified accuracy at radius 0: correct and not abstained."""
    section_ = result.sections.get("certification")
    if section_ is None:
        return []
    radii = list(section_.get("radii") or [])
    if not radii:
        top = max((float(s.get("radius") or 0.0) for s in section_.get("samples", [])), default=0.0)
        radii = [top * i / 4 for i in range(5)] if top > 0 else [0.0]
    smoothed = readers.certified_accuracy_at(result, 0.0)
    rows = []
    for radius in radii:
        accuracy = readers.certified_accuracy_at(result, radius)
        if accuracy is not None:
            rows.append((float(radius), accuracy, smoothed if smoothed is not None else accuracy))
    return rows


def certification_body(result: Result) -> str:
    """The smoothing parameters, certified accuracy at each radius, the abstain rate and the curve."""
    section_ = result.sections.get("certification")
    curve = readers.certification_curve(result)
    if section_ is None or curve is None:
        return ""
    alpha = section_.get("alpha")
    facts = [
        ["noise level sigma", number(section_.get("sigma"))],
        ["selection draws n0", count(section_.get("n0"))],
        ["estimation draws n", count(section_.get("n"))],
        ["failure probability alpha (per certificate)", number(alpha)],
        ["largest radius n draws can certify", number(section_.get("max_radius"))],
        ["abstain rate", pct(fraction(section_.get("abstain_rate")))],
        ["samples certified", str(result.n_samples)],
    ]
    if "noise_samples_per_s" in result.timing:
        facts.append(["throughput (noisy forward samples)", rate(result.timing["noise_samples_per_s"])])
    guarantee = (
        f"with probability at least 1 − {number(alpha)}" if is_number(alpha) else "with high probability"
    )
    note = (
        f"<p>Randomized smoothing: each certificate holds {escape(guarantee)} over the noise. Certified "
        "accuracy at radius r counts samples predicted correctly with a certified L2 radius of at least r; "
        "abstentions count as wrong. At radius 0 it is the smoothed classifier's accuracy.</p>"
    )
    radii_rows = [
        [f"{radius:g}" + (" (smoothed accuracy)" if radius == 0 else ""), pct(accuracy)]
        for radius, accuracy, _ in certification_rows(result)
    ]
    chart = line_chart(
        [Series(curve.name, curve.xs, curve.ys)],
        title="certified accuracy against radius",
        x_label="L2 radius",
        y_label="certified accuracy",
        markers=len(curve.xs) <= 30,
    )
    return note + table(["", ""], facts) + table(["L2 radius", "certified accuracy"], radii_rows) + chart
