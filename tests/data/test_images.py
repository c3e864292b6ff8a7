"""Image I/O: every mode on real files, EXIF, 16-bit precision, junk, and clear errors for bad files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps
from skimage import data as skdata

from i2i.data import images as images_module
from i2i.data.images import (
    IMAGE_EXTENSIONS,
    image_to_tensor,
    is_image_file,
    list_images,
    read_image,
    read_image_size,
    save_image,
    tensor_to_image,
)
from i2i.errors import DataError

RGB = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [128, 64, 32]]], dtype=np.uint8)  # (2, 2, 3)


def _rgb_image(size: tuple[int, int] = (8, 6)) -> Image.Image:
    return Image.fromarray(np.resize(RGB, (size[1], size[0], 3)).astype(np.uint8))


# --- names and folders -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.png", "b.JPG", "c.Jpeg", "d.Png", "e.tif", "f.TIFF", "g.webp", "h.bmp"])
def test_is_image_file_accepts_any_case(name: str) -> None:
    assert is_image_file(name)


@pytest.mark.parametrize(
    "name",
    [".DS_Store", "._photo.jpg", ".hidden.png", "Thumbs.db", "desktop.ini", "notes.txt", "x.gif", "png"],
)
def test_is_image_file_rejects_junk(name: str) -> None:
    assert not is_image_file(name)


def test_extensions_are_lower_case() -> None:
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)
    assert {".png", ".jpg", ".jpeg", ".ppm", ".pgm"} <= IMAGE_EXTENSIONS


def test_list_images_sorted_and_skips_junk(tmp_path) -> None:
    for name in ["b.PNG", "a.jpg", "c.Jpeg"]:
        _rgb_image().save(tmp_path / name, format="PNG" if name.endswith("PNG") else "JPEG")
    for junk in [".DS_Store", "._a.jpg", "notes.txt", "Thumbs.db"]:
        (tmp_path / junk).write_bytes(b"junk")
    (tmp_path / "folder.png").mkdir()  # a folder with an image-like name is not an image
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.Jpeg"]


def test_list_images_recursive_skips_hidden_folders(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".ipynb_checkpoints").mkdir()
    _rgb_image().save(tmp_path / "sub" / "x.png")
    _rgb_image().save(tmp_path / ".ipynb_checkpoints" / "y.png")
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["x.png"]
    with pytest.raises(DataError, match="subfolders"):
        list_images(tmp_path)


def test_list_images_errors_name_the_folder(tmp_path) -> None:
    with pytest.raises(DataError, match="missing.*does not exist"):
        list_images(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="is not a folder"):
        list_images(tmp_path / "file.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match=r"No images found in .*empty.*\.jpeg.*\.png"):
        list_images(tmp_path / "empty")


# --- modes -------------------------------------------------------------------------------------


def _check(image: np.ndarray, shape: tuple[int, int]) -> None:
    assert image.shape == (*shape, 3)
    assert image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0


def test_read_rgb_png_is_exact(tmp_path) -> None:
    Image.fromarray(RGB).save(tmp_path / "x.png")
    image = read_image(tmp_path / "x.png")
    _check(image, (2, 2))
    np.testing.assert_allclose(image, RGB / 255.0, atol=1e-7)


def test_read_gray_modes(tmp_path) -> None:
    gray = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "l.png")
    Image.fromarray(gray, "L").save(tmp_path / "l.pgm")
    Image.fromarray(gray > 100).save(tmp_path / "bilevel.png")  # mode "1"
    for name in ("l.png", "l.pgm"):
        image = read_image(tmp_path / name)
        _check(image, (2, 2))
        np.testing.assert_allclose(image, np.repeat(gray[:, :, None] / 255.0, 3, axis=2), atol=1e-7)
    np.testing.assert_array_equal(
        read_image(tmp_path / "bilevel.png")[:, :, 0], (gray > 100).astype(np.float32)
    )


def test_alpha_is_composited_on_white(tmp_path) -> None:
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = [255, 0, 0, 255]  # opaque red
    rgba[0, 1] = [255, 0, 0, 0]  # fully transparent -> white
    rgba[1, 0] = [0, 0, 0, 128]  # half-transparent black -> mid gray
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    image = read_image(tmp_path / "rgba.png")
    np.testing.assert_allclose(image[0, 0], [1, 0, 0])
    np.testing.assert_allclose(image[0, 1], [1, 1, 1])
    np.testing.assert_allclose(image[1, 0], [127 / 255] * 3, atol=1e-6)
    la = Image.fromarray(rgba[:, :, [0, 3]], "LA")
    la.save(tmp_path / "la.png")
    np.testing.assert_allclose(read_image(tmp_path / "la.png")[0, 1], [1, 1, 1])


def test_palette_with_and_without_transparency(tmp_path) -> None:
    palette_image = _rgb_image().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    palette_image.save(tmp_path / "p.png")
    np.testing.assert_allclose(
        read_image(tmp_path / "p.png"), np.asarray(palette_image.convert("RGB")) / 255.0
    )
    index = int(np.asarray(palette_image)[0, 0])
    palette_image.save(tmp_path / "pt.png", transparency=index)
    image = read_image(tmp_path / "pt.png")
    np.testing.assert_allclose(image[0, 0], [1, 1, 1])  # the transparent palette entry becomes white
    assert not np.allclose(image, 1.0)


def test_cmyk_jpeg(tmp_path) -> None:
    cat = skdata.chelsea()[:160, :200]
    Image.fromarray(cat).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    image = read_image(tmp_path / "cmyk.jpg")
    _check(image, cat.shape[:2])
    assert np.abs(image - cat / 255.0).mean() < 0.03


def test_real_photos_png_and_jpeg(tmp_path) -> None:
    astronaut = skdata.astronaut()
    Image.fromarray(astronaut).save(tmp_path / "astronaut.PNG")
    Image.fromarray(astronaut).save(tmp_path / "astronaut.JPG", quality=95)
    np.testing.assert_allclose(read_image(tmp_path / "astronaut.PNG"), astronaut / 255.0, atol=1e-7)
    assert np.abs(read_image(tmp_path / "astronaut.JPG") - astronaut / 255.0).mean() < 0.02


def test_16bit_gray_keeps_precision(tmp_path) -> None:
    values = np.array([[256, 257], [0, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")  # mode I;16
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    image = read_image(tmp_path / "g16.png")
    np.testing.assert_allclose(image[:, :, 0] * 65535.0, values, atol=1e-2)
    assert image[0, 1, 0] > image[0, 0, 0]
    for name in ("g16.tif", "g16.pgm"):
        cv2.imwrite(str(tmp_path / name), values)
        np.testing.assert_allclose(read_image(tmp_path / name)[:, :, 0] * 65535.0, values, atol=1e-2)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".ppm"])
def test_16bit_rgb_keeps_precision_and_channel_order(tmp_path, suffix: str) -> None:
    rgb = np.array([[[256, 257, 65535], [0, 1000, 30000]]], dtype=np.uint16)  # (1, 2, 3)
    path = tmp_path / f"rgb16{suffix}"
    cv2.imwrite(str(path), rgb[:, :, ::-1])  # OpenCV writes BGR
    image = read_image(path)
    np.testing.assert_allclose(image * 65535.0, rgb, atol=1e-2)
    assert image[0, 0, 1] > image[0, 0, 0]  # 257 vs 256 survives


def test_16bit_rgba_png(tmp_path) -> None:
    bgra = np.array([[[0, 0, 65535, 65535], [0, 0, 65535, 0]]], dtype=np.uint16)  # opaque red, clear
    cv2.imwrite(str(tmp_path / "rgba16.png"), bgra)
    np.testing.assert_allclose(read_image(tmp_path / "rgba16.png")[0], [[1, 0, 0], [1, 1, 1]], atol=1e-6)


def test_32bit_int_and_float_tiffs(tmp_path) -> None:
    ints = np.array([[0, 2**30], [2**31 - 1, 5]], dtype=np.int32)
    Image.fromarray(ints, "I").save(tmp_path / "i32.tif")
    np.testing.assert_allclose(read_image(tmp_path / "i32.tif")[:, :, 0], ints / (2**31 - 1), atol=1e-6)
    floats = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    Image.fromarray(floats, "F").save(tmp_path / "f.tif")
    np.testing.assert_allclose(read_image(tmp_path / "f.tif")[:, :, 1], floats)
    rgb = np.random.default_rng(0).random((3, 4, 3), dtype=np.float32)
    cv2.imwrite(str(tmp_path / "rgbf.tif"), rgb[:, :, ::-1])  # PIL cannot open float RGB TIFFs
    np.testing.assert_allclose(read_image(tmp_path / "rgbf.tif"), rgb)


# --- EXIF orientation ----------------------------------------------------------------------------


def _oriented(tmp_path, orientation: int) -> tuple:
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)  # stored 40 wide, 20 high
    pixels[:5, :5] = [255, 0, 0]  # red marker in the stored top-left corner
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    image.save(path, exif=exif, quality=100)
    return path, pixels


def test_exif_rotated_jpeg(tmp_path) -> None:
    path, _ = _oriented(tmp_path, 6)  # 6: display rotated 90 degrees clockwise
    image = read_image(path)
    assert image.shape == (40, 20, 3)
    assert read_image_size(path) == (20, 40)
    assert image[2, -3, 0] > 0.9 and image[2, 2, 0] < 0.1  # the marker moved to the top-right


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pil(tmp_path, orientation: int) -> None:
    path, _ = _oriented(tmp_path, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB")) / 255.0
    np.testing.assert_allclose(read_image(path), expected, atol=1e-6)
    assert read_image_size(path) == (expected.shape[1], expected.shape[0])


# --- bad files -----------------------------------------------------------------------------------


def test_missing_file(tmp_path) -> None:
    with pytest.raises(DataError, match="nothere.png does not exist"):
        read_image(tmp_path / "nothere.png")


@pytest.mark.parametrize("content", [b"\x00\x01\x02garbage\xff", b"\x89PNG\r\n\x1a\n" + b"\0" * 20])
def test_corrupt_file(tmp_path, content: bytes) -> None:
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(DataError, match=r"bad\.png cannot be decoded.*re-export it or delete it"):
        read_image(tmp_path / "bad.png")


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg"])
def test_truncated_file(tmp_path, name: str) -> None:
    path = tmp_path / name
    Image.fromarray(skdata.astronaut()).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert read_image_size(path) == (512, 512)  # the header is intact: size needs no decode
    with pytest.raises(DataError, match=f"{name} cannot be decoded"):
        read_image(path)


def test_too_small(tmp_path) -> None:
    _rgb_image((20, 15)).save(tmp_path / "tiny.png")
    with pytest.raises(
        DataError, match=r"tiny\.png is 20x15 but at least 256 px per side is needed.*crop_size"
    ):
        read_image(tmp_path / "tiny.png", min_size=256)
    assert read_image(tmp_path / "tiny.png", min_size=15).shape == (15, 20, 3)


def test_decompression_bomb(tmp_path, monkeypatch) -> None:
    _rgb_image((40, 40)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match=r"bomb\.png has too many pixels.*MAX_IMAGE_PIXELS"):
        read_image(tmp_path / "bomb.png")
    with pytest.raises(DataError, match="too many pixels"):
        read_image_size(tmp_path / "bomb.png")


# --- tensors and saving --------------------------------------------------------------------------


def test_tensor_round_trip_is_exact_for_8bit() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    tensor = image_to_tensor(pixels / np.float32(255.0))
    assert tensor.shape == (3, 16, 16) and tensor.dtype == torch.float32
    assert tensor.min() == -1.0 and tensor.max() == 1.0
    np.testing.assert_array_equal(tensor_to_image(tensor), pixels)


def test_tensor_to_image_clamps_and_rounds() -> None:
    tensor = torch.tensor([-3.0, 5.0, 0.0, 1.0 / 255]).reshape(1, 2, 2).expand(3, 2, 2)
    image = tensor_to_image(tensor)
    assert image.dtype == np.uint8 and image.shape == (2, 2, 3)
    assert image[:, :, 0].tolist() == [[0, 255], [128, 128]]


def test_save_image_png_lossless_and_creates_parents(tmp_path) -> None:
    tensor = image_to_tensor(skdata.astronaut()[:64, :48] / np.float32(255.0))
    path = tmp_path / "deep" / "er" / "out.png"
    save_image(tensor, path)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), skdata.astronaut()[:64, :48])
    assert [p.name for p in path.parent.iterdir()] == ["out.png"]  # no temp files left behind


def test_save_image_is_atomic(tmp_path, monkeypatch) -> None:
    path = tmp_path / "keep.png"
    save_image(torch.zeros(3, 4, 4), path)
    before = path.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(torch.ones(3, 4, 4), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_save_image_rejects_unknown_extension(tmp_path) -> None:
    with pytest.raises(DataError, match=r"out\.gifx.*\.png"):
        save_image(torch.zeros(3, 2, 2), tmp_path / "out.gifx")


def test_orientation_helper_is_identity_for_normal() -> None:
    array = np.arange(6).reshape(2, 3, 1)
    assert images_module.apply_orientation(array, 1) is array


# --- messy files: empty, not images at all, 1-bit, image bombs, odd names --------------------------


def test_zero_byte_file_says_it_is_empty(tmp_path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    for read in (read_image, read_image_size):
        with pytest.raises(DataError, match=r"empty\.png is empty \(0 bytes\).*copy it again or delete it"):
            read(tmp_path / "empty.png")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            b"a caption, not a picture\nsecond line\n",
            "is a text file, not an image (it starts with 'a caption",
        ),
        (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n",
            "Git LFS pointer file, not the image: run `git lfs pull`",
        ),
        (b"<!DOCTYPE html><html><body>403 Forbidden</body></html>", "HTML page, not an image"),
    ],
)
def test_files_that_are_not_images_say_what_they_are(tmp_path, content: bytes, reason: str) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"photo\.png cannot be decoded") as err:
        read_image(path)
    assert reason in str(err.value)
    with pytest.raises(DataError, match=r"photo\.png"):
        read_image_size(path)


@pytest.mark.parametrize("suffix", [".bmp", ".tif", ".png"])
def test_one_bit_images(tmp_path, suffix: str) -> None:
    bits = np.array([[True, False, True], [False, False, True]])
    path = tmp_path / f"bits{suffix}"
    Image.fromarray(bits).save(path)
    assert Image.open(path).mode == "1"
    image = read_image(path)
    _check(image, (2, 3))
    np.testing.assert_array_equal(image[:, :, 1], bits.astype(np.float32))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but whose data is a few bytes: an image bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [10_000, 100_000])  # 1e8 px: PIL alone would only warn; 1e10: PIL refuses
def test_image_bomb_header_is_refused_before_decoding(tmp_path, monkeypatch, side: int) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(side, side))
    assert path.stat().st_size < 200

    def no_decoding(self):
        raise AssertionError("the pixels must not be decoded")

    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    for read in (read_image, read_image_size):
        with pytest.raises(DataError, match=r"bomb\.png has too many pixels to open safely"):
            read(path)
    with pytest.raises(DataError, match=f"{side}x{side}" if side == 10_000 else "MAX_IMAGE_PIXELS"):
        read_image(path)


@pytest.mark.parametrize(
    "name",
    ["été 北京 (1).png", "emoji 🦓.jpg", "spaces  and #%&;'.png", "new\nline.png", "-leading-dash.png"],
)
def test_unicode_and_odd_file_names(tmp_path, name: str) -> None:
    folder = tmp_path / "données ✓"
    folder.mkdir()
    _rgb_image().save(folder / name, format="PNG")
    cv2.imwrite(str(tmp_path / "x16.png"), np.full((2, 2, 3), 300, np.uint16))  # 16-bit: decoded by OpenCV
    (tmp_path / "x16.png").rename(folder / f"16 bit {name}.png")
    assert [p.name for p in list_images(folder)] == sorted([name, f"16 bit {name}.png"])
    _check(read_image(folder / name), (6, 8))
    np.testing.assert_allclose(read_image(folder / f"16 bit {name}.png"), 300 / 65535, atol=1e-6)
    (folder / f"broken {name}").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(DataError) as err:
        read_image(folder / f"broken {name}")
    assert f"broken {name}" in str(err.value)


def test_images_smaller_than_the_crop_are_named(tmp_path) -> None:
    from i2i.data.transforms import PairedTransform

    _rgb_image((20, 15)).save(tmp_path / "small.png")
    image = read_image(tmp_path / "small.png")
    a, _ = PairedTransform(36, 32, "resize_and_crop")(image, image, seed=1)  # resized up: fine
    assert a.shape == (3, 32, 32)
    with pytest.raises(DataError, match="image is 20x15, smaller than data.crop_size=32"):
        PairedTransform(32, 32, "crop")(image, image, seed=1)
    with pytest.raises(DataError, match=r"small\.png is 20x15 but at least 32 px"):
        read_image(tmp_path / "small.png", min_size=32)


# --- fuzzing: whatever the bytes, only DataError comes out ------------------------------------------


def _seed_files() -> dict[str, bytes]:
    import io

    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    files = {}
    for fmt, suffix in (
        ("PNG", ".png"),
        ("JPEG", ".jpg"),
        ("TIFF", ".tif"),
        ("BMP", ".bmp"),
        ("WEBP", ".webp"),
    ):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=fmt)
        files[suffix] = buffer.getvalue()
    ok, png16 = cv2.imencode(".png", pixels.astype(np.uint16) * 257)
    files[".16.png"] = png16.tobytes()
    return files


SEEDS = _seed_files()
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples every run: a deterministic test
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _read_or_data_error(path) -> None:
    try:
        image = read_image(path)
    except DataError:
        pass
    else:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.float32
        assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0
    try:
        width, height = read_image_size(path)
    except DataError:
        pass
    else:
        assert width >= 0 and height >= 0


@FUZZ
@given(
    data=st.binary(max_size=1024), suffix=st.sampled_from([".png", ".jpg", ".tif", ".bmp", ".webp", ".ppm"])
)
def test_fuzz_random_bytes(tmp_path, monkeypatch, data: bytes, suffix: str) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1 << 20)  # keep what a random header may claim small
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    _read_or_data_error(path)


@st.composite
def mutated_image(draw) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[suffix])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(chunk)] = chunk
    return suffix.rsplit(".", 1)[-1], bytes(data)


@pytest.mark.filterwarnings("ignore::UserWarning")
@FUZZ
@given(case=mutated_image())
def test_fuzz_mutated_real_images(tmp_path, monkeypatch, case: tuple[str, bytes]) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1 << 20)
    suffix, data = case
    path = tmp_path / f"mutated.{suffix}"
    path.write_bytes(data)
    _read_or_data_error(path)
