"""The running app through its HTTP API (gradio_client) and raw requests: results, errors, and safety.

Security checks: traversal attempts on Gradio's file routes get 403/404, the 20000x20000 pixel bomb is
refused with its message without being decoded, an upload over ``max_file_size`` gets 413, and failures
reach the client as one line, without a traceback or a server path.
"""

from __future__ import annotations

import http.client
import io
import os
import resource
import time
import urllib.parse

import httpx
import numpy as np
import pytest
from PIL import Image

from i2i import hub
from i2i.data.images import read_image
from i2i.infer.translate import Translator
from i2i_app.ui import public_message

from .conftest import GRADIO_QUEUE_WARNINGS, MAX_PIXELS, has_module, write_pixel_bomb

gradio_client = pytest.importorskip("gradio_client")
pytestmark = GRADIO_QUEUE_WARNINGS


@pytest.fixture(scope="module")
def client(running_app):
    return gradio_client.Client(running_app.url, verbose=False, download_files=False)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "photo.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def _fetch_png(running_app, output) -> np.ndarray:
    """The image of an output file (gradio_client gives its URL when not downloading)."""
    url = output["url"] if isinstance(output, dict) else output
    response = httpx.get(url if url.startswith("http") else f"{running_app.url}/gradio_api/file={url}")
    assert response.status_code == 200
    return np.asarray(Image.open(io.BytesIO(response.content)))


def _error_of(call) -> str:
    with pytest.raises(gradio_client.exceptions.AppError) as err:
        call()
    return str(err.value)


def _raw_get(running_app, path: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (no client-side normalising of ``..`` or of %-escapes)."""
    host, port = urllib.parse.urlsplit(running_app.url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_translate_through_the_api_matches_the_library(running_app, client, photo):
    output = client.predict(
        "local:cyclegan/two_way.safetensors", "BtoA", gradio_client.handle_file(str(photo)),
        api_name="/translate",
    )  # fmt: skip
    got = _fetch_png(running_app, output)
    translator = Translator.from_file(running_app.models.two_way, direction="BtoA", device="cpu")
    expected = (translator.translate_image(read_image(photo)) * 255.0 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(got, expected)


def test_the_pixel_bomb_is_refused_cheaply_with_its_message(running_app, client, tmp_path):
    bomb = write_pixel_bomb(tmp_path / "bomb.png")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the app runs in this process
    start = time.perf_counter()
    message = _error_of(
        lambda: client.predict(
            "local:tiny_unet.safetensors", "AtoB", gradio_client.handle_file(str(bomb)), api_name="/translate"
        )
    )
    assert "400.0 Mpx" in message and "more than the 1.0 Mpx this server accepts" in message
    assert time.perf_counter() - start < 20  # upload + refusal; decoding 1.2 GB would take far longer
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - peak_mb < 300


def test_an_image_over_the_limit_is_refused_by_its_header(running_app, client, tmp_path):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (MAX_PIXELS // 1000 + 100, 1000)).save(wide)
    message = _error_of(
        lambda: client.predict(
            "local:tiny_unet.safetensors", "AtoB", gradio_client.handle_file(str(wide)), api_name="/translate"
        )
    )
    assert "1148x1000" in message and "downscale it" in message


def test_an_upload_over_max_file_size_gets_413(running_app):
    payload = np.random.default_rng(0).bytes(3 * 2**20)  # the test app allows 2 MB
    response = httpx.post(
        f"{running_app.url}/gradio_api/upload", files={"files": ("big.png", payload, "image/png")}, timeout=60
    )
    assert response.status_code == 413
    small = httpx.post(
        f"{running_app.url}/gradio_api/upload", files={"files": ("ok.png", payload[:1000], "image/png")}
    )
    assert small.status_code == 200  # the limit, not the route, refused the big one


def test_unexpected_failures_reach_the_client_as_one_line_without_details(client, photo, monkeypatch):
    def broken(self, image):
        raise RuntimeError("secret detail in /root/private/file.py line 3")

    monkeypatch.setattr(Translator, "translate_image", broken)
    message = _error_of(
        lambda: client.predict(
            "local:tiny_unet.safetensors",
            "AtoB",
            gradio_client.handle_file(str(photo)),
            api_name="/translate",
        )
    )
    assert "internal error" in message and "\n" not in message
    for leak in ("secret", "/root", "Traceback", "RuntimeError", 'File "'):
        assert leak not in message


def test_user_errors_name_the_field_and_hide_server_folders(client, photo, running_app):
    message = _error_of(
        lambda: client.predict(
            "local:tiny_unet.safetensors",
            "BtoA",
            gradio_client.handle_file(str(photo)),
            api_name="/translate",
        )
    )
    assert message.startswith("direction: tiny_unet.safetensors translates AtoB only")
    folder = running_app.models.folder
    text = public_message(ValueError(f"{folder}/sub/x.pth: bad <b>file</b>\n  at line 2"), [folder])
    assert text == "sub/x.pth: bad &lt;b&gt;file&lt;/b&gt; at line 2"  # one line, escaped, no server path


def test_file_routes_serve_nothing_outside_gradios_cache(running_app, client, photo):
    hub.weights_dir().mkdir(parents=True, exist_ok=True)
    weights = hub.weights_dir() / "private_weights.pth"
    weights.write_bytes(b"PRIVATE-WEIGHTS")
    checkpoint = str(running_app.models.translate)
    uploads = os.environ["GRADIO_TEMP_DIR"]  # Gradio's upload folder, set by the app_env fixture
    attempts = [
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=../../../../../../etc/passwd",
        "/gradio_api/file=..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/gradio_api/file=%2Fetc%2Fpasswd",
        "/gradio_api/file=file:///etc/passwd",
        "/gradio_api/file=~/.bashrc",
        f"/gradio_api/file={checkpoint}",
        f"/gradio_api/file={urllib.parse.quote(checkpoint, safe='')}",
        f"/gradio_api/file={running_app.models.two_way}",
        f"/gradio_api/file={weights}",
        f"/gradio_api/file={uploads}/../../../../etc/passwd",
        f"/gradio_api/file={uploads}/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/gradio_api/file=pyproject.toml",
        "/gradio_api/file/etc/passwd",
        "/file=/etc/passwd",
        "/static/../../../../etc/passwd",
        "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/assets/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/gradio_api/static/../../etc/passwd",
        f"/gradio_api/file=http://{urllib.parse.urlsplit(running_app.url).netloc}/config",
    ]
    for path in attempts:
        status, body = _raw_get(running_app, path)
        assert status in (403, 404), f"{path} -> {status}"
        assert b"root:" not in body and b"PRIVATE-WEIGHTS" not in body and b"safetensors\x00" not in body
    status, _ = _raw_get(running_app, "/gradio_api/proxy=http://127.0.0.1:1/x")
    assert status >= 400
    for remote in ("https://example.com/cat.png", "HTTP://example.com/cat.png", "https%3A//example.com/a"):
        status, body = _raw_get(running_app, f"/gradio_api/file={remote}")  # refused before any fetch
        assert (status, body) == (403, b"remote files are not served here")

    # The route itself works: a result the app made is served (so the refusals above are not vacuous).
    output = client.predict(
        "local:tiny_unet.safetensors", "AtoB", gradio_client.handle_file(str(photo)), api_name="/translate"
    )
    served = urllib.parse.urlsplit(output["url"]).path
    assert _raw_get(running_app, served)[0] == 200


def test_queue_is_bounded_and_inference_shares_one_concurrency_group(running_app):
    demo, settings = running_app.demo, running_app.settings
    assert demo._queue.max_size == settings.max_queue
    inference = [fn for fn in demo.fns.values() if fn.api_name in ("translate", "upscale", "text2image")]
    assert inference and {fn.concurrency_id for fn in inference} == {"inference"}
    assert {fn.concurrency_limit for fn in inference} == {settings.concurrency}


def test_tabs_are_those_whose_inference_module_imports(running_app):
    config = httpx.get(f"{running_app.url}/config").json()
    elem_ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    assert {"tab-translate", "tab-models"} <= elem_ids
    assert ("tab-upscale" in elem_ids) == has_module("i2i.infer.upscale")
    assert ("tab-text2image" in elem_ids) == has_module("i2i.infer.text2image")
    config_text = str(config)
    assert str(running_app.models.folder) not in config_text  # the page knows ids, never model paths


@pytest.mark.skipif(not has_module("i2i.infer.text2image"), reason="i2i.infer.text2image is not there yet")
def test_text2image_through_the_api_gives_the_requested_images(running_app, client):
    from i2i.infer.text2image import TextToImage

    gallery = client.predict("local:tiny_t2i.safetensors", "a yellow bird", 5, 2, api_name="/text2image")
    assert len(gallery) == 2
    expected = TextToImage.from_file(running_app.models.text2image, device="cpu").generate(
        "a yellow bird", n=2, seed=5
    )
    np.testing.assert_array_equal(_fetch_png(running_app, gallery[0]["image"]), np.asarray(expected[0]))
