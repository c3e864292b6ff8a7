"""Uploaded images: the pixel count checked from the header before anything decodes the file.

A PNG of a few hundred kilobytes can promise 20000 x 20000 pixels (1.2 GB as RGB); decoding it first
and checking after would already have spent the memory. :func:`checked_size` reads only the header
(PIL's lazy ``open``) and refuses more than the server's ``max_pixels``, and PIL's own decompression-bomb
limit stays armed for files whose header it refuses to trust.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from i2i.data.images import read_image
from i2i.errors import DataError

READABLE = "PNG, JPEG, WebP, BMP or TIFF"


def _mpx(pixels: float) -> str:
    return f"{pixels / 1e6:.1f} Mpx"


def too_large(width: int, height: int, max_pixels: int) -> DataError:
    """The message for an image of ``width`` x ``height`` over the limit."""
    return DataError(
        f"image: {width}x{height} is {_mpx(width * height)}, more than the {_mpx(max_pixels)} this server "
        "accepts; downscale it and try again"
    )


def checked_size(path: str | Path, max_pixels: int) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header, refusing more than ``max_pixels``.

    Raises:
        DataError: not an image, a damaged header, or too many pixels; the message is for the user and
            names no server path.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # lazy: parses the header, decodes nothing
                width, height = image.size
    except Image.DecompressionBombError as exc:
        # PIL refuses before telling the size; its message has the pixel count ("Image size (N pixels)").
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = _mpx(int(found.group(1))) if found else f"more than {_mpx(2 * (Image.MAX_IMAGE_PIXELS or 0))}"
        raise DataError(
            f"image: its header says {size} (a decompression bomb, or a huge image), more than the "
            f"{_mpx(max_pixels)} this server accepts; downscale it and try again"
        ) from None
    except UnidentifiedImageError:
        raise DataError(f"image: not an image file this server reads; upload a {READABLE} file") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"image: the file is damaged ({_reason(exc, path)}); re-export it") from None
    if width * height > max_pixels:
        raise too_large(width, height, max_pixels)
    return width, height


def read_rgb(path: str | Path, max_pixels: int) -> np.ndarray:
    """An upload as ``(H, W, 3)`` float32 RGB in ``[0, 1]`` (what the Translator takes), header checked first.

    Any mode, EXIF orientation and 16-bit depth are handled by i2i's reader; transparency is composited on
    white.
    """
    checked_size(path, max_pixels)
    try:
        return read_image(path)
    except DataError as exc:
        raise DataError(f"image: {_reason(exc, path)}") from None


def read_uint8(path: str | Path, max_pixels: int) -> np.ndarray:
    """An upload as uint8 ``(H, W)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, header checked first.

    Grayscale and transparency are kept (the Upscaler preserves them); EXIF orientation is applied; palette
    images become RGB(A); deeper-than-8-bit and other modes go through i2i's reader to RGB.
    """
    checked_size(path, max_pixels)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("L", "RGB", "RGBA", "1", "P", "PA", "LA", "RGBa", "La"):
                image = ImageOps.exif_transpose(image)
                if mode == "1":
                    image = image.convert("L")
                elif mode in ("P", "PA"):
                    keep_alpha = mode == "PA" or "transparency" in image.info
                    image = image.convert("RGBA" if keep_alpha else "RGB")
                elif mode in ("LA", "RGBa", "La"):
                    image = image.convert("RGBA")
                return np.array(image)  # a writable copy (torch.from_numpy warns on read-only arrays)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"image: the file is damaged ({_reason(exc, path)}); re-export it") from None
    return (read_rgb(path, max_pixels) * 255.0 + 0.5).astype(np.uint8)


def _reason(exc: BaseException, path: str | Path) -> str:
    """The exception's text on one line, the server-side path replaced (it means nothing to a visitor)."""
    text = " ".join(str(exc).split())
    return text.replace(str(path), "the image").replace(Path(path).name, "the image")
