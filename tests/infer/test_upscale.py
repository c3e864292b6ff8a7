"""Upscaler: seam-free tiles (tiled == untiled), layouts and dtypes kept, bounded memory, files, fallbacks."""

from __future__ import annotations

import json
import logging
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from skimage import data as skdata
from torch import Tensor, nn

from i2i import nets
from i2i.errors import ConfigError, DataError
from i2i.infer.tiling import blend_weights, plan_axis
from i2i.infer.upscale import Upscaler, read_image_keep_layout

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reference"
CASES = {c["name"]: c for c in json.loads((FIXTURES / "manifest.json").read_text())["cases"]}


class Nearest(nn.Module):
    """An exact upscaler (nearest neighbour), so expected outputs are known to the last bit."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(3, 3, 1)  # gives the net an input-channel count, as a real one has
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: Tensor) -> Tensor:
        self.calls.append(tuple(x.shape))
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


def compact(seed: int = 0, scale: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nets.build("srvgg_compact", base_channels=8, num_convs=4, scale=scale).eval()


def upscaler(net: nn.Module, **kwargs) -> Upscaler:
    return Upscaler(net, device="cpu", precision="fp32", **kwargs)


def photo(height: int = 96, width: int = 120) -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[100 : 100 + height, 150 : 150 + width])


# ----------------------------------------------------------------------------- seams


def test_tiled_output_equals_untiled_output_on_a_real_photo() -> None:
    net = compact()  # 6 convs: a 6-pixel receptive radius, well inside the 12-pixel overlap
    image = photo()
    whole = upscaler(net, tile=0).upscale_image(image)
    tiled = upscaler(net, tile=40, tile_overlap=12, batch_size=3).upscale_image(image)
    assert whole.shape == tiled.shape == (384, 480, 3)
    diff = np.abs(whole.astype(int) - tiled.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01  # float summation order only
    # Without overlap the tiles' zero-padded borders differ from the untiled result: the seams blending hides.
    seamed = upscaler(net, tile=40, tile_overlap=0).upscale_image(image)
    assert np.abs(whole.astype(int) - seamed.astype(int)).max() > 4


def test_rrdbnet_x2_tiles_start_on_its_unshuffle_grid_and_odd_sizes_pad() -> None:
    torch.manual_seed(0)
    net = nets.build("rrdbnet", base_channels=8, num_blocks=1, growth_channels=4, scale=2).eval()
    image = photo(37, 51)
    whole = upscaler(net, tile=0).upscale_image(image)
    tiled = upscaler(net, tile=24, tile_overlap=8).upscale_image(image)
    assert whole.shape == tiled.shape == (74, 102, 3)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 3  # receptive field > overlap: nearly equal


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(1, 700),
    tile=st.integers(0, 300),
    overlap=st.integers(0, 64),
    multiple=st.sampled_from([1, 2, 4]),
    scale=st.sampled_from([1, 2, 4]),
)
def test_tile_plan_covers_the_axis_with_weights_summing_to_one(
    length, tile, overlap, multiple, scale
) -> None:
    length = -(-length // multiple) * multiple
    if 0 < tile < 4 * multiple:
        tile = 4 * multiple
    axis = plan_axis(length, tile, overlap, multiple)
    assert axis.starts[0] == 0 and axis.starts[-1] + axis.size == length
    assert all(s % multiple == 0 for s in axis.starts) and axis.size % multiple == 0
    assert list(axis.starts) == sorted(set(axis.starts))
    total = np.zeros(length * scale)
    for i, start in enumerate(axis.starts):
        lo, hi = axis.owned(i, length)
        assert start <= lo < hi <= start + axis.size  # a tile only contributes where it has pixels
        total[lo * scale : hi * scale] += blend_weights(axis, i, length, scale)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


# ----------------------------------------------------------------------------- layouts and dtypes


def test_layouts_and_dtypes_are_kept() -> None:
    net = Nearest(2)
    up = upscaler(net, tile=16, tile_overlap=4)
    rgb = photo(30, 40)
    expected = rgb.repeat(2, 0).repeat(2, 1)
    np.testing.assert_array_equal(up.upscale_image(rgb), expected)
    gray = rgb[:, :, 1]
    out = up.upscale_image(gray)
    assert out.shape == (60, 80) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, gray.repeat(2, 0).repeat(2, 1))  # R=G=B in, luma out: the same grey
    assert up.upscale_image(gray[:, :, None]).shape == (60, 80, 1)
    deep = (rgb.astype(np.uint16) * 257 + 3).astype(np.uint16)
    out16 = up.upscale_image(deep)
    assert out16.dtype == np.uint16
    np.testing.assert_array_equal(out16, deep.repeat(2, 0).repeat(2, 1))  # 16 bits survive
    unit = rgb.astype(np.float32) / 255
    np.testing.assert_allclose(up.upscale_image(unit), expected / 255, atol=1e-6)


def test_alpha_is_upscaled_on_its_own_and_kept() -> None:
    net = Nearest(2)
    up = upscaler(net, tile=0)
    rgba = np.dstack([photo(20, 24), np.linspace(0, 255, 20 * 24).reshape(20, 24).astype(np.uint8)])
    out = up.upscale_image(rgba)
    assert out.shape == (40, 48, 4)
    np.testing.assert_array_equal(out, rgba.repeat(2, 0).repeat(2, 1))
    assert len(net.calls) == 2  # colour, then alpha
    opaque = rgba.copy()
    opaque[:, :, 3] = 255
    net.calls.clear()
    assert (up.upscale_image(opaque)[:, :, 3] == 255).all() and len(net.calls) == 1  # nothing to upscale


def test_only_one_batch_of_tiles_reaches_the_net_at_a_time_and_progress_is_reported() -> None:
    net = Nearest(2)
    seen: list[tuple[int, int]] = []
    out = upscaler(net, tile=32, tile_overlap=8, batch_size=3).upscale_image(
        photo(100, 70), progress=lambda done, total: seen.append((done, total))
    )
    assert out.shape == (200, 140, 3)
    assert all(shape[0] <= 3 and shape[2:] == (32, 32) for shape in net.calls)
    tiles = sum(shape[0] for shape in net.calls)
    assert seen == [(i + 1, tiles) for i in range(tiles)]


def test_memory_is_bounded_by_the_tile_not_the_image() -> None:
    """No float copy of the whole image: numpy's peak is the uint8 output plus tile-sized buffers."""
    image = np.ascontiguousarray(np.tile(photo(128, 128), (3, 3, 1)))  # 384 x 384
    up = upscaler(Nearest(4), tile=64, tile_overlap=8, batch_size=2)
    tracemalloc.start()
    try:
        out = up.upscale_image(image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole_float = out.size * 4  # 28 MB: what a float accumulator of the output would cost
    assert peak < out.nbytes + 6e6 < whole_float  # output 7 MB + strips and tiles (a few MB)


def test_non_finite_half_precision_output_is_rerun_in_fp32(caplog: pytest.LogCaptureFixture) -> None:
    class Overflows(Nearest):
        def forward(self, x: Tensor) -> Tensor:
            y = super().forward(x)
            return y * float("inf") if torch.is_autocast_enabled("cpu") else y

    up = upscaler(Overflows(2), tile=0)
    up.dtype = torch.bfloat16  # CPU autocast in bf16, standing in for CUDA fp16
    with caplog.at_level(logging.WARNING):
        out = up.upscale_image(photo(16, 16))
    np.testing.assert_array_equal(out, photo(16, 16).repeat(2, 0).repeat(2, 1))
    assert "running this batch of tiles again in fp32" in caplog.text


def test_tile_can_be_lowered_between_calls_and_bad_settings_are_named() -> None:
    up = upscaler(compact(), tile=64)
    image = photo(40, 40)
    first = up.upscale_image(image)
    up.tile = 32  # what a caller does after torch.OutOfMemoryError (the overlap is capped at tile / 4)
    assert np.abs(up.upscale_image(image).astype(int) - first.astype(int)).max() <= 1
    up.tile = 2
    with pytest.raises(ConfigError, match="tile 2 is too small"):
        up.upscale_image(image)
    with pytest.raises(ConfigError, match="upscales x4"):
        upscaler(compact(), scale=2)
    with pytest.raises(ConfigError, match="no `scale` attribute"):
        upscaler(nn.Conv2d(3, 3, 1))
    with pytest.raises(DataError, match="expected an"):
        upscaler(compact()).upscale_image(np.zeros((4, 4, 5), np.uint8))


# ----------------------------------------------------------------------------- models and files


def test_from_file_reads_basicsr_weights_and_matches_the_reference_output() -> None:
    case = CASES["bsr_srvgg_compact_x4"]
    up = Upscaler.from_file(FIXTURES / case["checkpoint"], device="cpu", tile=12, tile_overlap=4)
    assert up.scale == 4 and up.tile == 12 and up.device == torch.device("cpu")
    image = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    with torch.no_grad():
        reference = up.net(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    expected = (reference[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(up.upscale_image(image).astype(float) - expected).max() <= 1


def test_from_file_refuses_a_translation_model() -> None:
    with pytest.raises(ConfigError, match="is a translate model .* not a super-resolution model"):
        Upscaler.from_file(FIXTURES / CASES["jz_resnet_9blocks_instance"]["checkpoint"], device="cpu")


def test_upscale_files_keeps_grey_alpha_and_16_bits(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    rgb = photo(20, 30)
    Image.fromarray(rgb).save(src / "colour.jpg", quality=95)
    Image.fromarray(rgb[:, :, 0]).save(src / "grey.png")
    Image.fromarray(np.dstack([rgb, np.full((20, 30), 128, np.uint8)])).save(src / "alpha.png")
    deep = rgb[:, :, 1].astype(np.uint16) * 257
    Image.fromarray(deep).save(src / "deep.png")  # 16-bit grey
    written = upscaler(Nearest(2), tile=16, tile_overlap=4).upscale_files([src], tmp_path / "out")
    assert sorted(p.name for p in written) == ["alpha.png", "colour.png", "deep.png", "grey.png"]
    modes = {p.stem: Image.open(p).mode for p in written}
    assert modes == {"alpha": "RGBA", "colour": "RGB", "grey": "L", "deep": "I;16"}
    np.testing.assert_array_equal(
        read_image_keep_layout(tmp_path / "out" / "deep.png"), deep.repeat(2, 0).repeat(2, 1)
    )
    colour = np.asarray(Image.open(tmp_path / "out" / "colour.png"))
    np.testing.assert_array_equal(
        colour, np.asarray(Image.open(src / "colour.jpg")).repeat(2, 0).repeat(2, 1)
    )
    resized = upscaler(Nearest(2), tile=0).upscale_files([src / "grey.png"], tmp_path / "half", outscale=1.0)
    assert Image.open(resized[0]).size == (30, 20)
    with pytest.raises(DataError, match="would overwrite an input image"):
        upscaler(Nearest(2)).upscale_files([src / "grey.png"], src)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.fromarray(photo(10, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image_keep_layout(tmp_path / "rotated.jpg").shape == (20, 10, 3)


def test_cli_upscale_writes_the_images_and_refuses_a_translator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from i2i.cli import main

    Image.fromarray(photo(12, 20)).save(tmp_path / "small.png")
    weights = str(FIXTURES / CASES["bsr_srvgg_compact_x4"]["checkpoint"])
    args = ["upscale", str(tmp_path / "small.png"), "-o", str(tmp_path / "out"), "--device", "cpu"]
    assert main([*args, "--weights", weights, "--tile", "8", "--tile-overlap", "2", "--quiet"]) == 0
    assert Image.open(tmp_path / "out" / "small.png").size == (80, 48)
    assert "wrote" in capsys.readouterr().out
    assert main([*args, "--weights", weights, "--scale", "2", "--quiet"]) == 0  # final size x2
    assert Image.open(tmp_path / "out" / "small.png").size == (40, 24)
    translator = str(FIXTURES / CASES["jz_resnet_9blocks_instance"]["checkpoint"])
    assert main([*args, "--weights", translator]) == 2
    assert "not a super-resolution model" in capsys.readouterr().err
