"""The app's inference layer: the same results as i2i's API, models kept loaded, out-of-memory survived."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.data.images import read_image
from i2i.errors import I2IError
from i2i.infer.translate import Translator
from i2i_app.catalog import Catalog
from i2i_app.options import AppSettings
from i2i_app.service import InferenceService, OutOfMemory

from .conftest import has_module

needs_text2image = pytest.mark.skipif(
    not has_module("i2i.infer.text2image"), reason="i2i.infer.text2image not there yet"
)
needs_upscaler = pytest.mark.skipif(
    not has_module("i2i.infer.upscale"), reason="i2i.infer.upscale not there yet"
)


@pytest.fixture
def service(tiny_models):
    settings = AppSettings(models_dir=tiny_models.folder, device="cpu", max_pixels=256 * 256, tile=64)
    return InferenceService(settings, Catalog(tiny_models.folder).scan())


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


def _expected(path, image, **kwargs) -> np.ndarray:
    out = Translator.from_file(path, device="cpu", **kwargs).translate_image(read_image(image))
    return (out * 255.0 + 0.5).astype(np.uint8)


def test_translate_matches_the_translator_and_keeps_the_model_loaded(
    service, tiny_models, photo, monkeypatch
):
    out = service.translate("local:tiny_unet.safetensors", "AtoB", photo)
    assert out.dtype == np.uint8 and out.shape == (40, 56, 3)
    np.testing.assert_array_equal(out, _expected(tiny_models.translate, photo))
    monkeypatch.setattr(Translator, "from_file", lambda *a, **k: pytest.fail("reloaded a cached model"))
    np.testing.assert_array_equal(service.translate("local:tiny_unet.safetensors", "AtoB", photo), out)


def test_two_way_checkpoints_translate_both_directions(service, tiny_models, photo):
    ab = service.translate("local:cyclegan/two_way.safetensors", "AtoB", photo)
    ba = service.translate("local:cyclegan/two_way.safetensors", "BtoA", photo)
    np.testing.assert_array_equal(ba, _expected(tiny_models.two_way, photo, direction="BtoA"))
    assert np.abs(ab.astype(int) - ba.astype(int)).mean() > 1  # two different generators


def test_user_errors_name_the_field(service, photo, tmp_path):
    with pytest.raises(I2IError, match="direction: tiny_unet.safetensors translates AtoB only"):
        service.translate("local:tiny_unet.safetensors", "BtoA", photo)
    with pytest.raises(I2IError, match="model: choose one of the listed models"):
        service.translate("local:nope.safetensors", "AtoB", photo)
    big = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(big)
    with pytest.raises(I2IError, match=r"300x300 is 0\.1 Mpx, more than the 0\.1 Mpx"):
        service.translate("local:tiny_unet.safetensors", "AtoB", big)


def test_out_of_memory_frees_other_models_retries_then_explains(service, photo, monkeypatch):
    service.translate("local:cyclegan/two_way.safetensors", "AtoB", photo)  # another model in the cache
    real = Translator.translate_image
    failures = {"left": 1}

    def flaky(self, image):
        if failures["left"]:
            failures["left"] -= 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, image)

    monkeypatch.setattr(Translator, "translate_image", flaky)
    out = service.translate("local:tiny_unet.safetensors", "AtoB", photo)  # retried after freeing memory
    assert out.shape == (40, 56, 3)
    assert [k[1] for k in service.cache.loaded()] == ["local:tiny_unet.safetensors"]

    failures["left"] = 10**6
    with pytest.raises(OutOfMemory, match=r"translating a 56x40 image; try a smaller one \(the server's CPU"):
        service.translate("local:tiny_unet.safetensors", "AtoB", photo)
    failures["left"] = 0
    np.testing.assert_array_equal(service.translate("local:tiny_unet.safetensors", "AtoB", photo), out)


def test_the_cpu_allocator_failure_counts_as_out_of_memory(service, photo, monkeypatch):
    calls = []

    def failing(self, image):
        calls.append(1)
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(Translator, "translate_image", failing)
    with pytest.raises(OutOfMemory):
        service.translate("local:tiny_unet.safetensors", "AtoB", photo)
    assert len(calls) == 2  # tried, freed memory, tried once more


@needs_upscaler
def test_upscale_matches_the_upscaler_and_lowers_the_tile_on_out_of_memory(service, tiny_models, tmp_path):
    from i2i.infer.upscale import Upscaler

    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (96, 80, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "small.png")
    whole = Upscaler.from_file(tiny_models.upscale, device="cpu", tile=0).upscale_image(image)
    tiled = Upscaler.from_file(tiny_models.upscale, device="cpu", tile=64).upscale_image(image)
    before, after = service.upscale("local:tiny_x2.safetensors", tmp_path / "small.png", tile=128)
    np.testing.assert_array_equal(before, image)
    np.testing.assert_array_equal(after, whole)  # one 128 px tile holds the whole 96x80 image

    upscaler = service.cache.get(("upscale", "local:tiny_x2.safetensors", "cpu", "fp32"), lambda: None)
    net_forward = upscaler.net.forward
    seen = []

    def small_tiles_only(x):
        seen.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > 80:  # the whole image does not "fit" in memory; 64 px tiles do
            raise torch.OutOfMemoryError("CUDA out of memory")
        return net_forward(x)

    upscaler.net.forward = small_tiles_only
    _, again = service.upscale("local:tiny_x2.safetensors", tmp_path / "small.png", tile=128)
    np.testing.assert_array_equal(again, tiled)
    assert seen == [96, 64]  # the whole image failed; four 64 px tiles in one batch did not

    def no_memory(x):
        raise torch.OutOfMemoryError("CUDA out of memory")

    upscaler.net.forward = no_memory
    with pytest.raises(OutOfMemory, match="even with 64 px tiles"):
        service.upscale("local:tiny_x2.safetensors", tmp_path / "small.png", tile=128)
    upscaler.net.forward = net_forward
    np.testing.assert_array_equal(
        service.upscale("local:tiny_x2.safetensors", tmp_path / "small.png")[1], tiled
    )


@needs_upscaler
def test_upscale_refuses_a_result_over_the_pixel_limit(service, tmp_path):
    Image.new("RGB", (200, 200)).save(tmp_path / "mid.png")  # 0.04 Mpx in, 0.16 Mpx out at x2
    with pytest.raises(I2IError, match=r"400x400 is 0\.2 Mpx, more than the 0\.1 Mpx.*x2 result"):
        service.upscale("local:tiny_x2.safetensors", tmp_path / "mid.png")


@needs_upscaler
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_real_out_of_memory_is_recovered(tiny_models, tmp_path):
    settings = AppSettings(models_dir=tiny_models.folder, device="auto", max_pixels=256 * 256, tile=128)
    service = InferenceService(settings, Catalog(tiny_models.folder).scan())
    assert service.device.type == "cuda" and service.precision in ("bf16", "fp16")
    Image.fromarray(np.zeros((96, 80, 3), np.uint8)).save(tmp_path / "small.png")
    service.upscale("local:tiny_x2.safetensors", tmp_path / "small.png")
    upscaler = service.cache.get(
        ("upscale", "local:tiny_x2.safetensors", "cuda", service.precision), lambda: None
    )
    forward = upscaler.net.forward

    def greedy(x):
        if max(x.shape[-2:]) > 80:
            torch.empty(2**50, dtype=torch.uint8, device=x.device)  # a real CUDA out-of-memory error
        return forward(x)

    upscaler.net.forward = greedy
    _, out = service.upscale("local:tiny_x2.safetensors", tmp_path / "small.png")
    assert out.shape == (192, 160, 3)


@needs_text2image
def test_text2image_matches_the_library_and_checks_its_inputs(service, tiny_models):
    from i2i.infer.text2image import TextToImage

    images = service.text2image("local:tiny_t2i.safetensors", "  a red   bird ", seed=3, count=3)
    expected = TextToImage.from_file(tiny_models.text2image, device="cpu").generate("a red bird", n=3, seed=3)
    assert [im.size for im in images] == [(32, 32)] * 3
    for got, want in zip(images, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))  # n different samples
    for prompt, seed, count, message in [
        ("   ", 0, 1, "prompt: describe the image"),
        ("x" * 501, 0, 1, "prompt: 501 characters is too long"),
        ("a bird", 0, 9, "count: choose between 1 and 8"),
        ("a bird", -1, 1, "seed: use a whole number"),
    ]:
        with pytest.raises(I2IError, match=message):
            service.text2image("local:tiny_t2i.safetensors", prompt, seed=seed, count=count)
