"""The report renders in a real browser: headless Chromium draws a non-blank page with charts and images."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import torch

import fortify as ft
from tests.report.factories import make_result

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")


def screenshot(html_path, png_path, profile, height=2400):
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            f"--window-size=1200,{height}",
            f"--screenshot={png_path}",
            html_path.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_report_renders_non_blank_in_headless_chromium(tmp_path):
    image = pytest.importorskip("PIL.Image", reason="pillow reads the screenshot (dev extra)")
    torch.manual_seed(0)
    x = torch.rand(20, 1, 12, 12)
    x_adv = (x + 0.05 * torch.randn_like(x).sign()).clamp(0, 1)
    page = ft.report.write_html(
        make_result(full=True, reliable=False), tmp_path / "report.html", x=x, x_adv=x_adv
    )
    shot = tmp_path / "report.png"
    screenshot(page, shot, tmp_path / "profile")

    pixels = image.open(shot).convert("RGB")
    assert pixels.size == (1200, 2400)
    background = pixels.getpixel((5, 5))
    colours = pixels.getcolors(maxcolors=1 << 20)
    inked = sum(count for count, colour in colours if colour != background)
    assert inked > 0.10 * 1200 * 2400, "the page is mostly blank"
    assert len(colours) > 200, "no charts or images were drawn"
    red = sum(count for count, (r, g, b) in colours if r > 180 and g < 80 and b < 80)
    assert red > 100, "the UNRELIABLE verdict is not drawn in red"
