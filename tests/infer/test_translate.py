"""Translator: any image size, files and folders, batching, reference weights, device and precision."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from skimage import data as skdata
from torch import Tensor, nn

from i2i.errors import ConfigError, DataError
from i2i.infer.translate import Translator, expand_inputs, pad_to_multiple
from i2i.nets import PatchDiscriminator, UNetGenerator

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reference"
CASES = {c["name"]: c for c in json.loads((FIXTURES / "manifest.json").read_text())["cases"]}
GENERATORS = sorted(name for name, case in CASES.items() if "UnetGenerator" in case["reference_arch"])


def tiny_unet(seed: int = 0) -> UNetGenerator:
    """A random 32-multiple U-Net, with BatchNorm statistics that are not the defaults."""
    torch.manual_seed(seed)
    net = UNetGenerator(3, 3, num_downs=5, base_channels=8, norm="batch")
    with torch.no_grad():
        net(torch.rand(4, 3, 32, 32) * 2 - 1)  # train mode: updates the running statistics
    return net.eval()


def translator(net: nn.Module | None = None, **kwargs) -> Translator:
    return Translator(net if net is not None else tiny_unet(), device="cpu", precision="fp32", **kwargs)


def write_image(path: Path, height: int, width: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


# ----------------------------------------------------------------------------- padding


@pytest.mark.parametrize(
    ("h", "w", "multiple", "padded", "mode"),
    [
        (37, 53, 32, (64, 64), "reflect"),
        (300, 451, 32, (320, 480), "reflect"),
        (20, 20, 32, (32, 32), "reflect"),  # pad 12 < 20: reflection still possible
        (10, 45, 32, (32, 64), "replicate"),  # pad 22 >= 10: too small to reflect
        (3, 3, 256, (256, 256), "replicate"),
        (64, 32, 32, (64, 32), None),  # already a multiple: untouched
        (5, 7, 1, (5, 7), None),
    ],
)
def test_pad_to_multiple(h: int, w: int, multiple: int, padded: tuple[int, int], mode: str | None) -> None:
    x = torch.rand(2, 3, h, w)
    y, size = pad_to_multiple(x, multiple)
    assert size == (h, w)
    assert tuple(y.shape) == (2, 3, *padded)
    assert torch.equal(y[..., :h, :w], x)  # the image stays top-left, unchanged
    if mode is None:
        assert y is x
    elif mode == "reflect":
        # Reflection mirrors around the last row/column without repeating it: row h is row h - 2.
        if padded[0] > h:
            assert torch.equal(y[..., h, :w], x[..., h - 2, :])
        if padded[1] > w:
            assert torch.equal(y[..., :h, w], x[..., :, w - 2])
    else:
        assert torch.equal(y[..., -1, :w], x[..., -1, :])
        assert torch.equal(y[..., :h, -1], x[..., :, -1])
        assert torch.equal(y[..., -1, -1], x[..., -1, -1])


# ----------------------------------------------------------------------------- any size


@pytest.mark.parametrize(("h", "w"), [(37, 53), (300, 451), (20, 20), (10, 45), (1, 1), (32, 64)])
def test_output_size_equals_input_size(h: int, w: int) -> None:
    net = tiny_unet()
    x = torch.rand(1, 3, h, w) * 2 - 1
    y = translator(net).translate(x)
    assert y.shape == x.shape
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all() and y.abs().max() <= 1
    # It is the net's output on the padded image, cropped back to the top-left h x w.
    with torch.no_grad():
        expected = net(pad_to_multiple(x, 32)[0])[..., :h, :w]
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)


def test_translate_image_keeps_layout_and_range() -> None:
    image = skdata.chelsea().astype(np.float32) / 255  # (300, 451, 3), odd width
    out = translator().translate_image(image)
    assert out.shape == image.shape
    assert out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1


def test_value_range_maps_to_and_from_the_nets_range() -> None:
    seen: list[Tensor] = []

    class Record(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            seen.append(x)
            return x

    x = torch.linspace(-1, 1, 3 * 4 * 5).reshape(1, 3, 4, 5)
    y = translator(Record(), value_range=(0, 1)).translate(x)
    assert seen[0].min() == 0 and seen[0].max() == 1
    torch.testing.assert_close(y, x)


# ----------------------------------------------------------------------------- files and folders


def test_translate_files_folder_and_single_file(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skdata.chelsea()).save(photos / "cat.jpg")  # 300x451
    Image.fromarray(skdata.astronaut()).save(photos / "astronaut.png")  # 512x512
    write_image(photos / "odd.PNG", 37, 53)
    # Junk next to the images: ignored, not errors.
    (photos / ".DS_Store").write_bytes(b"\0junk")
    (photos / "._cat.jpg").write_bytes(b"AppleDouble")
    (photos / "Thumbs.db").write_bytes(b"junk")
    (photos / "notes.txt").write_text("not an image")
    write_image(photos / "nested" / "deeper.png", 8, 8)  # subfolders are not searched
    single = write_image(tmp_path / "elsewhere" / "single.bmp", 20, 20)
    out = tmp_path / "out"

    written = translator().translate_files([photos, single], out, batch_size=2)

    assert written == [out / "astronaut.png", out / "cat.png", out / "odd.png", out / "single.png"]
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "cat.png", "odd.png", "single.png"]
    sizes = {p.stem: Image.open(p).size for p in written}  # PIL sizes are (width, height)
    assert sizes == {"astronaut": (512, 512), "cat": (451, 300), "odd": (53, 37), "single": (20, 20)}


def test_batching_equal_sizes_matches_one_at_a_time(tmp_path: Path) -> None:
    shapes: list[tuple[int, ...]] = []
    net = tiny_unet()

    class Record(nn.Module):
        multiple = net.multiple

        def forward(self, x: Tensor) -> Tensor:
            shapes.append(tuple(x.shape))
            return net(x)

    src = tmp_path / "in"
    for i in range(3):
        write_image(src / f"a{i}.png", 40, 50, seed=i)
    for i in range(2):
        write_image(src / f"b{i}.png", 33, 33, seed=10 + i)

    one = translator(Record()).translate_files([src], tmp_path / "one", batch_size=1)
    assert [s[0] for s in shapes] == [1, 1, 1, 1, 1]
    shapes.clear()
    many = translator(Record()).translate_files([src], tmp_path / "many", batch_size=2)
    # Sorted names: a0 a1 | a2 | b0 b1 -- equal sizes batched up to 2, a new size starts a new batch.
    assert shapes == [(2, 3, 64, 64), (1, 3, 64, 64), (2, 3, 64, 64)]
    assert [p.name for p in one] == [p.name for p in many]
    for a, b in zip(one, many, strict=True):
        assert np.abs(read_png(a) - read_png(b)).max() <= 1  # 8-bit rounding of a <= 1e-6 difference

    # At tensor level (eval mode: BatchNorm uses running statistics) a batch equals its items.
    t = translator(net)
    x = torch.rand(3, 3, 40, 50) * 2 - 1
    batched = t.translate(x)
    single = torch.cat([t.translate(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-6)


def test_duplicate_stems_are_refused(tmp_path: Path) -> None:
    a = write_image(tmp_path / "one" / "photo.png", 8, 8)
    b = write_image(tmp_path / "two" / "photo.jpg", 8, 8)
    with pytest.raises(DataError, match=r"photo\.png.*rename one") as err:
        translator().translate_files([a.parent, b], tmp_path / "out")
    assert str(a) in str(err.value) and str(b) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_the_same_file_twice_is_translated_once(tmp_path: Path) -> None:
    a = write_image(tmp_path / "in" / "photo.png", 8, 8)
    assert expand_inputs([a.parent, a, Path(f"{tmp_path}/in/../in/photo.png")]) == [a]


def test_missing_input_is_named(tmp_path: Path) -> None:
    present = write_image(tmp_path / "here.png", 8, 8)
    missing = tmp_path / "not_here.png"
    with pytest.raises(DataError, match="no such file or folder") as err:
        translator().translate_files([present, missing], tmp_path / "out")
    assert str(missing) in str(err.value)


def test_bad_inputs_are_data_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="not an image file"):
        expand_inputs([tmp_path / "notes.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No images found"):
        expand_inputs([tmp_path / "empty"])
    with pytest.raises(DataError, match="no input images"):
        expand_inputs([])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match="broken.png"):
        translator().translate_files([tmp_path / "broken.png"], tmp_path / "out")
    with pytest.raises(ConfigError, match="batch-size"):
        translator().translate_files([tmp_path / "broken.png"], tmp_path / "out", batch_size=0)


def test_output_never_overwrites_an_input(tmp_path: Path) -> None:
    src = write_image(tmp_path / "photo.png", 8, 8)
    before = src.read_bytes()
    with pytest.raises(DataError, match="overwrite an input"):
        translator().translate_files([tmp_path], tmp_path)
    assert src.read_bytes() == before


def test_a_net_that_is_not_an_image_generator_is_refused() -> None:
    with pytest.raises(ConfigError, match="6-channel"):
        translator(PatchDiscriminator(in_channels=6, base_channels=4)).translate(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ConfigError, match="not an image-to-image generator"):
        translator(PatchDiscriminator(in_channels=3, base_channels=4)).translate(torch.zeros(1, 3, 32, 32))


# ----------------------------------------------------------------------------- reference weights


@pytest.mark.parametrize("name", GENERATORS)
def test_junyanz_checkpoint_reproduces_the_reference_output(name: str) -> None:
    case = CASES[name]
    io = load_file(FIXTURES / case["io"])
    t = Translator.from_file(FIXTURES / case["checkpoint"], device="cpu", precision="fp32")
    assert t.multiple == io["input"].shape[-1]  # 256 for unet_256, 128 for unet_128: no padding here
    assert not any(m.training for m in t.net.modules())
    y = t.translate(io["input"])
    torch.testing.assert_close(y, io["output"], rtol=0, atol=case["tolerance_abs"])


def test_junyanz_generator_translates_an_odd_sized_photo(tmp_path: Path) -> None:
    # unet_128 with a 300x451 photo: padded to 384x512 and cropped back.
    photo = tmp_path / "cat.jpg"
    Image.fromarray(skdata.chelsea()).save(photo)
    t = Translator.from_file(FIXTURES / CASES["jz_unet_128_instance"]["checkpoint"], device="cpu")
    (out,) = t.translate_files([photo], tmp_path / "out")
    assert Image.open(out).size == (451, 300)


# ----------------------------------------------------------------------------- device and precision


def test_half_precision_on_cpu_falls_back_to_fp32(caplog: pytest.LogCaptureFixture) -> None:
    net = tiny_unet()
    x = torch.rand(2, 3, 37, 53) * 2 - 1
    with caplog.at_level(logging.WARNING):
        bf16 = Translator(net, device="cpu", precision="bf16")
    assert bf16.dtype is None and bf16.device.type == "cpu"
    assert "needs CUDA" in caplog.text
    assert Translator(net, device="cpu", precision="auto").dtype is None
    assert torch.equal(bf16.translate(x), translator(net).translate(x))


def test_bad_device_or_precision_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="precision"):
        Translator(tiny_unet(), device="cpu", precision="fp8")
    with pytest.raises(ConfigError, match="device"):
        Translator(tiny_unet(), device="toaster")


class NaNInHalf(nn.Module):
    """A 1x1 conv whose output is NaN when it ran in reduced precision (like an fp16 overflow)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.dtypes: list[torch.dtype] = []

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        self.dtypes.append(y.dtype)  # bfloat16 under CPU autocast, float32 otherwise
        return torch.full_like(y, float("nan")) if y.dtype != torch.float32 else torch.tanh(y)


def test_non_finite_half_precision_output_is_recomputed_in_fp32(caplog: pytest.LogCaptureFixture) -> None:
    net = NaNInHalf()
    t = translator(net)
    x = torch.rand(1, 3, 9, 11) * 2 - 1
    expected = t.translate(x)
    t.dtype = torch.bfloat16  # CPU autocast supports bf16: exercise the mixed-precision path here
    net.dtypes.clear()
    with caplog.at_level(logging.WARNING, logger="i2i.infer.translate"):
        y = t.translate(x)
    assert net.dtypes == [torch.bfloat16, torch.float32]  # autocast first, then the fp32 rerun
    assert "non-finite output" in caplog.text
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, expected, rtol=0, atol=0)


def test_finite_half_precision_output_is_kept() -> None:
    net = tiny_unet()
    t = translator(net)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    fp32 = t.translate(x)
    t.dtype = torch.bfloat16
    y = t.translate(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert not torch.equal(y, fp32)  # it really ran in bf16...
    torch.testing.assert_close(y, fp32, rtol=0, atol=0.1)  # ...and close to fp32
