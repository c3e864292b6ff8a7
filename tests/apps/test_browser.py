"""The app in a real browser: Debian chromium driven by Playwright, against the session's running app.

Each test drives one tab as a visitor would (pick a model, upload, click, wait for the result), checks the
result against i2i's own API pixel for pixel, and saves a screenshot under ``runs/test-output/app/``
(``$I2I_TEST_OUTPUT``). The README's screenshot comes from ``apps/screenshots.py`` with a trained model.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from i2i.data.images import read_image
from i2i.infer.translate import Translator
from i2i_app.ui import EXAMPLES

from .conftest import GRADIO_QUEUE_WARNINGS, MAX_PIXELS, has_module

pytestmark = [pytest.mark.slow, *GRADIO_QUEUE_WARNINGS]
expect = pytest.importorskip("playwright.sync_api").expect
TIMEOUT_MS = 90_000  # generous: the CI machine has 2 cores and chromium shares them with the app


@pytest.fixture
def page(browser, running_app):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(running_app.url, wait_until="domcontentloaded")
    page.wait_for_selector("#tabs")
    yield page
    context.close()


def _image_at(page, url: str) -> np.ndarray:
    """Fetch an image the page shows, as the browser got it (same session, same server)."""
    response = page.request.get(url)
    assert response.ok, url
    return np.asarray(Image.open(io.BytesIO(response.body())))


def _choose(page, dropdown_id: str, label: str) -> None:
    page.locator(f"#{dropdown_id} input").click()
    page.get_by_role("option", name=label, exact=True).click()


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 96x128 photo-like image: smooth gradients plus texture, so a screenshot shows what happened."""
    yy, xx = np.mgrid[0:96, 0:128] / 96.0
    rng = np.random.default_rng(4)
    rgb = np.stack([xx, yy, 1 - xx * yy], -1) * 200 + rng.normal(0, 20, (96, 128, 3))
    path = tmp_path_factory.mktemp("browser") / "photo.png"
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(path)
    return path


def test_translate_tab(page, running_app, photo, shots):
    _choose(page, "tr-model", "tiny_unet.safetensors")
    expect(page.locator("#tr-direction").get_by_label("BtoA")).to_have_count(0)  # a one-way model
    _choose(page, "tr-model", "cyclegan/two_way.safetensors")
    page.locator("#tr-direction").get_by_label("BtoA").check()
    page.locator("#tr-input input[type=file]").set_input_files(str(photo))
    page.locator("#tr-run").click()
    result = page.locator("#tr-output img")
    result.wait_for()
    got = _image_at(page, result.get_attribute("src"))

    translator = Translator.from_file(running_app.models.two_way, direction="BtoA", device="cpu")
    expected = (translator.translate_image(read_image(photo)) * 255.0 + 0.5).astype(np.uint8)
    assert got.shape == (96, 128, 3)
    np.testing.assert_array_equal(got, expected)  # the page shows exactly what the library computes
    assert np.abs(got.astype(int) - np.asarray(Image.open(photo)).astype(int)).mean() > 5  # not the input
    page.screenshot(path=str(shots / "translate.png"), full_page=True)


def test_translate_tab_explains_a_refused_image(page, tmp_path, shots):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (MAX_PIXELS // 1000 + 100, 1000), (40, 90, 160)).save(wide)
    page.locator("#tr-input input[type=file]").set_input_files(str(wide))
    page.locator("#tr-run").click()
    toast = page.get_by_text("more than the 1.0 Mpx this server accepts")
    toast.first.wait_for()
    assert "Traceback" not in page.content()
    page.screenshot(path=str(shots / "translate_refused.png"), full_page=True)


@pytest.mark.skipif(not has_module("i2i.infer.upscale"), reason="i2i.infer.upscale is not there yet")
def test_upscale_tab(page, running_app, shots):
    from i2i.infer.upscale import Upscaler

    _open_tab(page, "Upscale")
    _choose(page, "up-model", "tiny_x2.safetensors (x2)")
    example = EXAMPLES / "astronaut_face_128.png"  # a 128x128 RGB crop shipped with the app
    page.locator("#up-input input[type=file]").set_input_files(str(example))
    page.locator("#up-run").click()
    link = page.locator("#up-file a").first
    link.wait_for()
    got = _image_at(page, link.get_attribute("href"))
    upscaler = Upscaler.from_file(running_app.models.upscale, device="cpu", tile=running_app.settings.tile)
    expected = upscaler.upscale_image(np.array(Image.open(example)))
    assert got.shape == (256, 256, 3)
    np.testing.assert_array_equal(got, expected)  # the downloaded PNG is the full-resolution result
    expect(page.locator("#up-compare img")).to_have_count(2)  # before and after, one over the other
    page.get_by_text("128x128 →").wait_for()
    page.screenshot(path=str(shots / "upscale.png"), full_page=True)


def test_models_tab(page, shots):
    _open_tab(page, "Models")
    table = page.locator("#models-table")
    table.get_by_text("tiny_unet.safetensors").wait_for()
    text = table.inner_text()
    assert "cyclegan/two_way.safetensors" in text and "horse2zebra" in text and "downloadable" in text
    assert "broken.pth" in text and "not usable" in text
    status = page.locator("#models-status").inner_text()
    assert "Device: cpu" in status and "fp32" in status
    page.screenshot(path=str(shots / "models.png"), full_page=True)


@pytest.mark.skipif(not has_module("i2i.infer.text2image"), reason="i2i.infer.text2image is not there yet")
def test_text2image_tab(page, running_app, shots):
    from i2i.infer.text2image import TextToImage

    _open_tab(page, "Text to image")
    page.locator("#t2i-prompt textarea").fill("a small bird with a red head and black wings")
    page.locator("#t2i-seed input").fill("7")
    page.locator("#t2i-count input[type=number]").fill("3")
    page.locator("#t2i-count input[type=number]").press("Enter")
    page.locator("#t2i-run").click()
    thumbs = page.locator("#t2i-gallery img")
    expect(thumbs).to_have_count(3)
    t2i = TextToImage.from_file(running_app.models.text2image, device="cpu")
    expected = t2i.generate("a small bird with a red head and black wings", n=3, seed=7)
    for i in range(3):
        np.testing.assert_array_equal(
            _image_at(page, thumbs.nth(i).get_attribute("src")), np.asarray(expected[i])
        )
    page.screenshot(path=str(shots / "text2image.png"), full_page=True)


def test_shipped_examples_load_and_translate_offline(page):
    _choose(page, "tr-model", "tiny_unet.safetensors")
    page.locator("#tr-examples").get_by_role("button").first.click()  # the label map, from the package
    page.locator("#tr-input img").wait_for()
    page.locator("#tr-run").click()
    result = page.locator("#tr-output img")
    result.wait_for()
    assert _image_at(page, result.get_attribute("src")).shape == (256, 256, 3)
