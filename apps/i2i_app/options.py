"""The app's settings and their command-line flags, shared by ``i2i serve`` and ``python -m i2i_app``.

Only argparse and dataclasses here: ``i2i --help`` builds the ``serve`` parser from this module, so it
must not import gradio or torch. The defaults are those of a server that may face the public: loopback
only, no share link, bounded uploads, pixels, queue and model memory.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 7860


@dataclass
class AppSettings:
    """Everything the app needs to start; one field per command-line flag.

    Attributes:
        host: Interface to bind; ``127.0.0.1`` keeps the app private to this machine.
        port: TCP port; ``None`` lets Gradio pick a free one from 7860 up.
        share: Ask Gradio for a public ``*.gradio.live`` link (off unless asked for).
        models_dir: A folder scanned (recursively) for ``.safetensors``/``.pth`` models to offer.
        device: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N``.
        precision: ``auto`` (bf16/fp16 on CUDA with an fp32 retry on non-finite output), ``fp32``...
        max_file_size: Largest upload, e.g. ``"25mb"``; bigger uploads get HTTP 413.
        max_pixels: Largest image (width x height, from its header) accepted, and largest upscaled result.
        concurrency: Inference jobs running at once, over all tabs (they share the GPU).
        max_queue: Jobs waiting beyond those; more are refused with "queue full".
        cache_mb: Memory for loaded models (LRU); ``None``: half the GPU's memory, or 2 GiB on the CPU.
        tile: Upscaler tile size in pixels; halved on out-of-memory and retried.
        max_images: Most images one text-to-image request may ask for.
        allow_downloads: Let visitors download registry weights from the Models tab.
    """

    host: str = "127.0.0.1"
    port: int | None = DEFAULT_PORT
    share: bool = False
    models_dir: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    max_file_size: str = "25mb"
    max_pixels: int = 4096 * 4096
    concurrency: int = 1
    max_queue: int = 16
    cache_mb: int | None = None
    tile: int = 512
    max_images: int = 8
    allow_downloads: bool = False


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the app's flags to ``parser`` (the ``i2i serve`` subparser or the module's own)."""
    d = AppSettings()
    parser.add_argument(
        "--host", default=d.host, help="interface to bind (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=d.port, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument(
        "--models",
        dest="models_dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="offer the .safetensors/.pth models in DIR (and its subfolders)",
    )
    parser.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--precision", default=d.precision, choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--max-file-size", default=d.max_file_size, help="largest upload (default 25mb)")
    parser.add_argument(
        "--max-pixels",
        type=_positive,
        default=d.max_pixels,
        help="largest image in pixels, input or upscaled output (default 4096*4096)",
    )
    parser.add_argument(
        "--concurrency", type=_positive, default=d.concurrency, help="inference jobs at once (default 1)"
    )
    parser.add_argument(
        "--max-queue", type=_positive, default=d.max_queue, help="jobs allowed to wait (default 16)"
    )
    parser.add_argument(
        "--cache-mb",
        type=_positive,
        default=None,
        help="memory for loaded models (default: half the GPU, or 2048 on CPU)",
    )
    parser.add_argument("--tile", type=_positive, default=d.tile, help="upscaling tile size (default 512)")
    parser.add_argument(
        "--allow-downloads",
        action="store_true",
        help="let visitors download registry weights from the Models tab",
    )


def settings_from_args(args: argparse.Namespace) -> AppSettings:
    """The settings the parsed flags of :func:`add_arguments` describe."""
    return AppSettings(
        host=args.host,
        port=args.port,
        share=args.share,
        models_dir=args.models_dir,
        device=args.device,
        precision=args.precision,
        max_file_size=args.max_file_size,
        max_pixels=args.max_pixels,
        concurrency=args.concurrency,
        max_queue=args.max_queue,
        cache_mb=args.cache_mb,
        tile=args.tile,
        allow_downloads=args.allow_downloads,
    )
