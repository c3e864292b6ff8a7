"""Uploads: the pixel count is refused from the header, cheaply; every mode decodes to what the tabs take."""

from __future__ import annotations

import resource
import time

import numpy as np
import pytest
from PIL import Image

from i2i.errors import DataError
from i2i_app.uploads import checked_size, read_rgb, read_uint8

from .conftest import write_pixel_bomb


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def test_pixel_bomb_is_refused_from_the_header_cheaply(tmp_path):
    bomb = write_pixel_bomb(tmp_path / "bomb.png")
    assert 0.5e6 < bomb.stat().st_size < 2e6  # a ~1 MB file promising 20000 x 20000 pixels
    assert bomb.read_bytes()[16:24] == (20000).to_bytes(4, "big") * 2  # IHDR: width, height
    peak, start = _peak_rss_mb(), time.perf_counter()
    with pytest.raises(DataError, match=r"400\.0 Mpx.*more than the 1\.0 Mpx this server accepts"):
        checked_size(bomb, 1024 * 1024)
    with pytest.raises(DataError, match="400.0 Mpx"):
        read_rgb(bomb, 1024 * 1024)  # the decoding readers check first too
    with pytest.raises(DataError, match="400.0 Mpx"):
        read_uint8(bomb, 1024 * 1024)
    assert time.perf_counter() - start < 2.0  # decoding would take many seconds (1.2 GB of pixels)
    assert _peak_rss_mb() - peak < 200  # and raise the peak memory by over 1 GB


def test_image_over_the_server_limit_is_refused_with_its_size(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (1100, 1000)).save(path)
    with pytest.raises(DataError, match=r"1100x1000 is 1\.1 Mpx, more than the 1\.0 Mpx"):
        checked_size(path, 1024 * 1024)
    assert checked_size(path, 1100 * 1000) == (1100, 1000)


def test_non_images_and_damaged_files_get_messages_without_server_paths(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(DataError, match="not an image file this server reads") as err:
        checked_size(text, 10**6)
    assert str(tmp_path) not in str(err.value)
    good = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    good.write_bytes(good.read_bytes()[:600])  # header intact, pixels truncated
    with pytest.raises(DataError, match="^image: ") as err:
        read_rgb(good, 10**6)
    assert str(tmp_path) not in str(err.value)


def test_read_uint8_keeps_gray_and_alpha_and_applies_orientation(tmp_path):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 255, (20, 30), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(read_uint8(tmp_path / "gray.png", 10**6), gray)

    rgba = rng.integers(0, 255, (20, 30, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_uint8(tmp_path / "rgba.png", 10**6), rgba)

    Image.fromarray(gray).convert("LA").save(tmp_path / "la.png")
    assert read_uint8(tmp_path / "la.png", 10**6).shape == (20, 30, 4)

    palette = Image.fromarray(rgba[..., :3]).convert("P")
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png", transparency=0)
    assert read_uint8(tmp_path / "p.png", 10**6).shape == (20, 30, 4)

    deep = (rng.integers(0, 65535, (20, 30), dtype=np.uint16)).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    out = read_uint8(tmp_path / "deep.png", 10**6)
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    np.testing.assert_allclose(out[..., 0], deep / 257.0, atol=1)

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(rgba[..., :3]).save(tmp_path / "rot.jpg", exif=exif)
    assert read_uint8(tmp_path / "rot.jpg", 10**6).shape == (30, 20, 3)
    assert read_rgb(tmp_path / "rot.jpg", 10**6).shape == (30, 20, 3)
