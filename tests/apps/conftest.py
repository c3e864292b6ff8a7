"""Fixtures of the web app's tests: tiny models written by the test, one running app, a real browser.

The app runs in-process on a free port (``prevent_thread_lock``), shared by the API, security and browser
tests of the session. Its models are built here with random weights and narrow channels: the tests check
that the app shows exactly what i2i's inference API computes, so trained weights are not needed.

Screenshots go to ``$I2I_TEST_OUTPUT/app`` (default ``runs/test-output/app`` in the checkout, which git
ignores); CI keeps that folder as the test output.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from i2i import nets
from i2i.hub import ModelInfo, export_model
from i2i.statefile import save_checkpoint

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TRANSLATE_ARGS = {"num_downs": 5, "base_channels": 8, "norm": "batch"}
UPSCALE_ARGS = {"in_channels": 3, "out_channels": 3, "base_channels": 8, "num_convs": 2, "scale": 2}
MAX_PIXELS = 1024 * 1024
# Gradio 6.31's queue statistics use pandas options that pandas 3 deprecates; nothing the app can change.
GRADIO_QUEUE_WARNINGS = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
MAX_FILE_SIZE = "2mb"


def has_module(name: str) -> bool:
    """Whether ``name`` imports (the Upscale and Text-to-image tabs need their inference modules)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def output_dir() -> Path:
    """Where the app tests leave screenshots for people to look at."""
    root = Path(os.environ.get("I2I_TEST_OUTPUT", REPO / "runs" / "test-output"))
    folder = root / "app"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_pixel_bomb(path: Path, side: int = 20000) -> Path:
    """A valid ``side`` x ``side`` RGB PNG of about 1 MB (all black), written in a fraction of a second.

    One deflate block of 1000 zero rows is compressed once and repeated: with a full flush each block
    stands alone, so the repeats decode to the whole image. The Adler-32 of n zero bytes is ``n << 16 | 1``.
    """
    row = side * 3 + 1  # filter byte + RGB
    rows_per_block = 1000
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = raw.compress(b"\0" * (row * rows_per_block)) + raw.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    adler = (((row * side) % 65521) << 16) | 1
    idat = b"\x78\xda" + block * (side // rows_per_block) + final + struct.pack(">I", adler)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


@dataclass
class TinyModels:
    """The models folder the test app serves, and its files."""

    folder: Path
    translate: Path  # exported one-way U-Net, task translate
    two_way: Path  # i2i checkpoint with g_ab (AtoB) and g_ba (BtoA)
    upscale: Path  # exported x2 compact SR net, task upscale
    broken: Path  # not a model: listed as unusable, offered nowhere
    text2image: Path | None  # i2i checkpoint: text2image_g + its trainable char_gru text encoder


def make_tiny_models(folder: Path) -> TinyModels:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    translate = export_model(
        nets.build("unet", **TRANSLATE_ARGS),
        ModelInfo("unet", dict(TRANSLATE_ARGS), (-1.0, 1.0), "i2i", task="translate"),
        folder / "tiny_unet.safetensors",
    )
    specs, weights = {}, {}
    for name, direction in (("g_ab", "AtoB"), ("g_ba", "BtoA")):
        net = nets.build("unet", **TRANSLATE_ARGS)
        specs[name] = {
            "name": "unet",
            "args": dict(TRANSLATE_ARGS),
            "value_range": [-1, 1],
            "direction": direction,
            "task": "translate",
        }
        weights[name] = net.state_dict()
    two_way = folder / "cyclegan" / "two_way.safetensors"
    two_way.parent.mkdir(exist_ok=True)
    save_checkpoint({"specs": specs, "nets": weights, "step": 1}, two_way)
    sr = nets.build("srvgg_compact", **UPSCALE_ARGS)
    upscale = export_model(
        sr,
        ModelInfo("srvgg_compact", dict(UPSCALE_ARGS), (0.0, 1.0), "i2i", task="upscale"),
        folder / "tiny_x2.safetensors",
    )
    broken = folder / "broken.pth"
    broken.write_bytes(b"this is not a model")
    text2image = (
        write_tiny_text2image(folder / "tiny_t2i.safetensors") if "text2image_g" in nets.list() else None
    )
    return TinyModels(folder, translate, two_way, upscale, broken, text2image)


def write_tiny_text2image(path: Path) -> Path:
    """A text-to-image checkpoint as ``method: text2image`` writes it, with a trainable (char_gru) text
    encoder so that no pretrained sentence model is loaded."""
    g_args = {"latent_dim": 8, "text_dim": 16, "image_size": 32, "base_channels": 4, "cond_dim": 16}
    text_args = {"out_dim": 16, "embed_dim": 8, "hidden_dim": 8, "max_length": 32}
    specs = {
        "g": {
            "name": "text2image_g",
            "args": g_args,
            "value_range": [-1, 1],
            "task": "text2image",
            "text_encoder": {"kind": "trainable", "net": "text", "dim": 16},
        },
        "text": {"name": "char_gru", "args": text_args},
    }
    weights = {"g": nets.build("text2image_g", **g_args).state_dict()}
    weights["text"] = nets.build("char_gru", **text_args).state_dict()
    return save_checkpoint({"specs": specs, "nets": weights, "step": 1}, path)


@pytest.fixture(scope="session")
def app_env(tmp_path_factory) -> Iterator[Path]:
    """Environment of the session's app: the weights cache and Gradio's upload folder in temp folders.

    The root conftest points ``I2I_HOME`` at ``<basetemp>/i2i_home`` per test; session fixtures run before
    it, so the same folder is set here for the app's whole life.
    """
    base = tmp_path_factory.getbasetemp()
    saved = {k: os.environ.get(k) for k in ("I2I_HOME", "GRADIO_TEMP_DIR")}
    os.environ["I2I_HOME"] = str(base / "i2i_home")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio_uploads"))
    yield base
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def tiny_models(app_env, tmp_path_factory) -> TinyModels:
    return make_tiny_models(tmp_path_factory.mktemp("app_models"))


@dataclass
class RunningApp:
    url: str
    demo: object
    settings: object
    models: TinyModels


@pytest.fixture(scope="session")
def running_app(app_env, tiny_models) -> Iterator[RunningApp]:
    """The app on a free port, serving :func:`tiny_models`, with small limits to test against."""
    pytest.importorskip("gradio")
    from i2i_app import AppSettings, launch

    settings = AppSettings(
        port=free_port(),
        models_dir=tiny_models.folder,
        device="cpu",
        max_pixels=MAX_PIXELS,
        max_file_size=MAX_FILE_SIZE,
        tile=64,
    )
    demo, url = launch(settings, block=False, quiet=True)
    yield RunningApp(url.rstrip("/"), demo, settings, tiny_models)
    demo.close()


@pytest.fixture(scope="session")
def browser(running_app) -> Iterator[object]:
    """Headless Debian chromium driven by Playwright (``.ci/run`` installs it when missing)."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        if os.environ.get("I2I_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing; install it with: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); CI installs it")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shots() -> Path:
    return output_dir()
