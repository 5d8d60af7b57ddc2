"""The HTML report: every present part is shown, absent parts are skipped, text is escaped, images decode."""

from __future__ import annotations

import base64
import re
import struct
import zlib

import pytest
import torch

import fortify as ft
from fortify.report.images import png_bytes
from fortify.report.svg import nice_ticks
from fortify.result import Result
from tests.report.factories import HOSTILE, gallery_for, make_result


def test_a_full_result_shows_every_section():
    page = ft.report.render_html(make_result(full=True))
    for anchor in (
        "curve",
        "attacks",
        "classes",
        "calibration",
        "diagnostics",
        "certification",
        "more",
        "environment",
    ):
        assert f'<section id="{anchor}">' in page, anchor
    assert page.count("<svg") == 3  # sweep curve, confidence histograms, certification curve
    assert "linf sweep (per-eps)" in page and "Expected calibration error (10 bins): clean 0.050" in page


def test_absent_parts_are_skipped_not_crashed_on():
    page = ft.report.render_html(Result())
    assert '<section id="environment">' in page
    for anchor in ("calibration", "certification", "gallery", "attacks", "more", "curve"):
        assert f'<section id="{anchor}">' not in page  # nothing attacked: no curve, not "one eps"
    one_eps = ft.report.render_html(make_result())
    assert "Only one eps per norm was measured" in one_eps


def test_text_from_a_result_cannot_inject_html():
    result = make_result(full=True, attack_name=HOSTILE, dataset=HOSTILE)
    page = ft.report.render_html(result, title=HOSTILE)
    assert "<script" not in page
    assert page.count("&lt;script&gt;") >= 4  # title, attack table, group slice, training section


def test_an_unreliable_result_is_flagged_in_red_with_its_reason():
    page = ft.report.render_html(make_result(reliable=False))
    verdict = re.search(r'<div class="verdict bad">(.*?)</div>', page, re.S)
    assert verdict is not None
    assert "UNRELIABLE" in verdict.group(1) and "gradient masking" in verdict.group(1)
    assert ft.report.render_html(make_result()).count('class="verdict good"') == 1


def test_several_results_of_one_norm_form_a_curve_and_an_overview():
    results = [make_result(eps=e, robust=r) for e, r in ((0.05, 0.7), (0.1, 0.4), (0.2, 0.1))]
    page = ft.report.render_html(results)
    assert "linf, 3 evaluations" in page and "<polyline" in page
    curve = ft.report.readers.robustness_curves(results)[0]
    assert curve.xs == [0.0, 0.05, 0.1, 0.2] and curve.ys == [0.9, 0.7, 0.4, 0.1]  # starts at clean accuracy
    assert '<section id="summary">' in page
    for label in ("#1 linf 0.05", "#2 linf 0.1", "#3 linf 0.2"):  # attacks, classes, diagnostics,
        assert page.count(f"<h3>{label}</h3>") == 5, label  # model and environment, per result


def _decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, colour type, raw scanlines) of a PNG written by png_bytes (filter 0 only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        header, idat = (body, idat) if kind == b"IHDR" else (header, idat + body if kind == b"IDAT" else idat)
        pos += 12 + length
    width, height, _, colour, *_ = struct.unpack(">IIBBBBB", header)
    return width, height, colour, zlib.decompress(idat)


@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 3)])
def test_png_encoding_round_trips_pixels(shape):
    image = torch.randint(0, 256, shape, dtype=torch.uint8)
    width, height, colour, raw = _decode_png(png_bytes(image))
    assert (width, height, colour) == (shape[1], shape[0], 0 if len(shape) == 2 else 2)
    row = 1 + image[0].numel()
    pixels = b"".join(raw[r * row + 1 : (r + 1) * row] for r in range(height))
    assert pixels == image.numpy().tobytes()


def test_gallery_embeds_clean_adversarial_and_amplified_perturbation():
    result = make_result(n=6, clean=1.0, robust=0.5)
    x = torch.rand(6, 1, 8, 8)
    x_adv = (x + 0.01 * torch.randn_like(x)).clamp(0, 1)
    page = ft.report.render_html(result, x=x, x_adv=x_adv, class_names=["a", "b", "c", "d"])
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3 * 6
    assert all(_decode_png(base64.b64decode(i))[:2] == (8, 8) for i in images)
    assert "perturbation ×" in page and "true 3 d" in page


def _png_pixels(uri_data: str) -> bytes:
    width, height, _, raw = _decode_png(base64.b64decode(uri_data))
    row = 1 + width
    return b"".join(raw[r * row + 1 : (r + 1) * row] for r in range(height))


def test_the_results_own_gallery_is_drawn_without_a_model():
    result = make_result(n=6, clean=1.0, robust=0.5)
    result.gallery = gallery_for(result)
    result.gallery[-1].attack = HOSTILE
    ignored = torch.zeros(6, 1, 8, 8)
    page = ft.report.render_html(result, x=ignored, x_adv=ignored, class_names=["a", "b", "c", "d"])
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3 * len(result.gallery) == 3 * 3  # clean, adversarial, perturbation
    for k, entry in enumerate(result.gallery):
        clean, adv = entry.images()
        for shown, image in ((images[3 * k], clean), (images[3 * k + 1], adv)):
            assert _png_pixels(shown) == image[0].mul(255).round().to(torch.uint8).numpy().tobytes()
    assert "#3: true 3 d, clean 3 d, adversarial 0 a (pgd, perturbation norm 0.1)" in page
    assert "carries no gallery" not in page and "<script" not in page


def test_without_a_gallery_the_report_says_so_or_draws_the_images_passed_in():
    result = make_result(n=6, clean=1.0, robust=0.5)
    assert "This result carries no gallery" in ft.report.render_html(result)
    x = torch.rand(6, 1, 8, 8)
    page = ft.report.render_html(result, x=x, x_adv=(x + 0.1).clamp(0, 1))
    assert "need not be the points its evaluation found" in page
    assert page.count("data:image/png;base64,") == 3 * 6
    result.gallery = []
    assert "No sample was broken" in ft.report.render_html(result)


def test_gallery_refuses_misaligned_tensors_and_skips_non_images():
    result = make_result(n=4)
    with pytest.raises(ft.FortifyError, match="same shape"):
        ft.report.render_html(result, x=torch.rand(4, 1, 8, 8), x_adv=torch.rand(3, 1, 8, 8))
    with pytest.raises(ft.FortifyError, match="both x and x_adv"):
        ft.report.render_html(result, x=torch.rand(4, 1, 8, 8))
    page = ft.report.render_html(result, x=torch.rand(4, 30), x_adv=torch.rand(4, 30))
    assert "are not images" in page


def test_the_page_is_self_contained(tmp_path):
    path = ft.report.write_html(
        make_result(full=True),
        tmp_path / "sub" / "report.html",
        x=torch.rand(20, 3, 8, 8),
        x_adv=torch.rand(20, 3, 8, 8),
    )
    page = path.read_text(encoding="utf-8")
    assert "<script" not in page and "<link" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_axis_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(0.0, 0.3)
    assert ticks[0] == 0.0 and ticks[-1] == pytest.approx(0.3) and len(ticks) >= 4


def test_a_model_that_masks_gradients_is_named_on_the_page_without_calling_the_number_unreliable(tmp_path):
    from fortify.report import write_html
    from fortify.result import Diagnostic
    from tests.report.factories import make_result

    masking = Diagnostic(
        name="gradient_masking",
        passed=False,
        evidence="the model masks its gradients: zero input gradients; the evaluation compensated with BPDA",
        scope="model",
    )
    result = make_result()
    result = result.model_copy(update={"diagnostics": [*result.diagnostics, masking]})
    page = write_html([result], tmp_path / "r.html").read_text()
    assert "THE MODEL MASKS GRADIENTS" in page and "compensated with BPDA" in page
    assert "UNRELIABLE" not in page and "checks of the evaluation passed" in page
