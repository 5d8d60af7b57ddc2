"""The dashboard in headless Chromium (Debian's, driven by Playwright): log in, every section, not blank."""

from __future__ import annotations

import importlib
import io

import torch

from fortify.runtime import AlertRule, Monitor
from fortify.service.app import create_app
from tests.service.conftest import KEYS, chromium_path, headers, infer_body, need
from tests.service.server import running

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _traffic(client, guard, x):
    reviewed = [i for i, v in enumerate(guard(x)) if v.status.value == "REVIEW"][:4]
    noise = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    review = 0
    for batch in (x[:30], x[reviewed], noise):
        response = client.post("/v2/models/fortify/infer", json=infer_body(batch), headers=headers())
        assert response.status_code == 200
        review += response.json()["parameters"]["review"]
    return review


def test_dashboard_needs_a_review_key(client):
    assert client.get("/dashboard").status_code == 401
    assert "log in" in client.get("/dashboard").text.lower()
    assert client.get("/dashboard", headers=headers("infer")).status_code == 403
    page = client.get("/dashboard", headers=headers("review"))
    assert page.status_code == 200 and all(
        f"id={s}" in page.text for s in ("versions", "traffic", "scores", "alerts", "review")
    )


def test_dashboard_renders_in_headless_chromium(guard, settings_for, synthetic, tmp_path):
    chromium = chromium_path()
    need(chromium is not None, "no /usr/bin/chromium (apt-get install -y chromium)")
    sync_api, image = _module("playwright.sync_api"), _module("PIL.Image")
    need(sync_api is not None, "no playwright (pip install 'fortify[serve-test]')")
    need(image is not None, "no pillow to read the screenshot (dev extra)")
    x, _ = synthetic
    rule = AlertRule(name="attack", metric="review_rate", window=10, threshold=0.2, min_count=10)
    app = create_app(settings_for(), guard=guard, monitor=Monitor(rules=[rule]))
    with running(app) as url:
        import httpx

        with httpx.Client(base_url=url) as http:
            in_review = _traffic(http, guard, x)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 1600})
                page.goto(url + "/dashboard", timeout=20_000)
                page.fill("input[name=key]", KEYS["infer"])
                page.click("button[type=submit]")
                assert "lacks the 'review' role" in page.content()
                page.fill("input[name=key]", KEYS["review"])
                page.click("button[type=submit]")
                page.wait_for_selector("#review img", timeout=20_000)
                assert page.title() == "fortify dashboard"
                images = page.locator("#review img").count()
                alerts = page.locator("#alerts").inner_text()
                bars = page.locator("#traffic rect").count()
                shot = page.screenshot(full_page=False)
            finally:
                browser.close()
    assert images == min(12, in_review) and in_review >= 4 and "attack" in alerts and bars >= 3
    pixels = image.open(io.BytesIO(shot)).convert("RGB")
    background = pixels.getpixel((2, 2))
    colours = pixels.getcolors(maxcolors=1 << 20)
    inked = sum(count for count, colour in colours if colour != background)
    assert inked > 0.05 * pixels.size[0] * pixels.size[1], "the dashboard is mostly blank"
    assert len(colours) > 50, "no charts or images were drawn"
    green = sum(count for count, (r, g, b) in colours if g > 100 and r < 80 and b < 80)
    assert green > 50, "the ACCEPTED bars are not drawn"
