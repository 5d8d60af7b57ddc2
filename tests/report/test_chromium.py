"""The report renders in a real browser: headless Chromium draws every kind of page, non-blank, with
its key numbers in the DOM. Under ``CI=true`` a missing Chromium or Pillow fails these tests."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess

import pytest
import torch

import fortify as ft
from tests.report.factories import make_result
from tests.report.pages import PAGES, key_numbers

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
IN_CI = os.environ.get("CI") == "true"


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is missing, and under CI=true the browser tests must run")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="module")
def browser() -> str:
    if CHROMIUM is None:
        _missing("chromium (apt-get install -y chromium)")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def image():
    try:
        from PIL import Image
    except ImportError:
        _missing("pillow (dev extra), which reads the screenshot")
    return Image


def render(browser, html_path, png_path, profile, height=2400) -> str:
    """Screenshot ``html_path`` into ``png_path`` and return the DOM as Chromium built it."""
    done = subprocess.run(
        [
            browser,
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
            "--dump-dom",
            html_path.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return done.stdout.decode("utf-8")


def visible_text(dom: str) -> str:
    """The page's text as a reader sees it: no style, no tags, entities decoded, spaces collapsed."""
    dom = re.sub(r"<(style|script)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def inked(image, png_path) -> tuple[float, int]:
    """Share of pixels that differ from the background, and the number of distinct colours."""
    pixels = image.open(png_path).convert("RGB")
    background = pixels.getpixel((5, 5))
    colours = pixels.getcolors(maxcolors=1 << 22)
    width, height = pixels.size
    return sum(n for n, c in colours if c != background) / (width * height), len(colours)


def test_report_renders_non_blank_in_headless_chromium(browser, image, tmp_path):
    torch.manual_seed(0)
    x = torch.rand(20, 1, 12, 12)
    x_adv = (x + 0.05 * torch.randn_like(x).sign()).clamp(0, 1)
    page = ft.report.write_html(
        make_result(full=True, reliable=False), tmp_path / "report.html", x=x, x_adv=x_adv
    )
    shot = tmp_path / "report.png"
    render(browser, page, shot, tmp_path / "profile")

    share, colours = inked(image, shot)
    assert image.open(shot).size == (1200, 2400)
    assert share > 0.10, "the page is mostly blank"
    assert colours > 200, "no charts or images were drawn"
    pixels = image.open(shot).convert("RGB").getcolors(maxcolors=1 << 22)
    red = sum(n for n, (r, g, b) in pixels if r > 180 and g < 80 and b < 80)
    assert red > 100, "the UNRELIABLE verdict is not drawn in red"


@pytest.mark.parametrize("kind", sorted(PAGES))
def test_every_kind_of_page_draws_with_its_key_numbers(browser, image, tmp_path, kind):
    results = PAGES[kind]()
    page = ft.report.write_html(results, tmp_path / f"{kind}.html")
    shot = tmp_path / f"{kind}.png"
    text = visible_text(render(browser, page, shot, tmp_path / "profile", height=1600))

    share, colours = inked(image, shot)
    assert share > 0.05 and colours > 20, f"the {kind} page is blank"
    for number in key_numbers(kind, results):
        assert number in text, f"{number} is not on the {kind} page"
    assert "Summary" in text and "Environment" in text
