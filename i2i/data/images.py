"""Robust image I/O: every mode, EXIF orientation, 16-bit files, and clear errors for bad files.

Images leave this module as ``(H, W, 3)`` float32 RGB arrays in ``[0, 1]`` and become ``(3, H, W)``
tensors in ``[-1, 1]`` via :func:`image_to_tensor`; :func:`tensor_to_image` and :func:`save_image` go back.

Example:
    >>> image = read_image("photo.jpg", min_size=256)  # doctest: +SKIP
    >>> save_image(image_to_tensor(image), "out/photo.png")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from i2i.errors import DataError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)

# Files that OS tools drop next to images; they carry image extensions sometimes (AppleDouble "._x.jpg").
_JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx"})
_EXIF_ORIENTATION = 0x0112
_MAX_BY_DTYPE = {
    np.dtype(np.uint8): 255.0,
    np.dtype(np.uint16): 65535.0,
    np.dtype(np.uint32): 4294967295.0,
    np.dtype(np.int16): 32767.0,
    np.dtype(np.int32): 2147483647.0,
}
_ACCEPTED = ", ".join(sorted(IMAGE_EXTENSIONS))


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` names an image we read, judged by its name only (case-insensitive extension).

    Hidden files, AppleDouble ``._*`` files, ``.DS_Store``, ``Thumbs.db`` and ``desktop.ini`` are junk.
    """
    name = Path(path).name
    if not name or name.startswith(".") or name.lower() in _JUNK_NAMES:
        return False
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """Sorted image files in ``folder`` (junk skipped; hidden folders skipped when recursive).

    Raises:
        DataError: the folder is missing, is not a folder, or holds no images.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataError(
            f"Image folder {folder} does not exist; check the path (data.root) and the split name."
        )
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder; point data.root at the folder that holds the images.")
    if recursive:
        found = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d.lower() not in _JUNK_NAMES]
            found.extend(Path(dirpath, f) for f in filenames if is_image_file(f))
        images = sorted(found)
    else:
        images = sorted(p for p in folder.iterdir() if is_image_file(p) and p.is_file())
    if not images:
        hint = ""
        if not recursive and any(p.is_dir() for p in folder.iterdir()):
            hint = " It has subfolders: move the images up or list them recursively."
        raise DataError(
            f"No images found in {folder} (accepted extensions: {_ACCEPTED}, any case).{hint} "
            "Put the images there or point data.root at the right folder."
        )
    return images


def ensure_min_size(path: str | Path, width: int, height: int, min_size: int) -> None:
    """Raise :class:`DataError` if an image of ``width`` x ``height`` is below ``min_size`` on a side."""
    if min(width, height) < min_size:
        raise DataError(
            f"{path} is {width}x{height} but at least {min_size} px per side is needed; "
            "use larger images or lower data.crop_size / data.load_size."
        )


def _undecodable(path: Path, reason: object) -> DataError:
    return DataError(f"{path} cannot be decoded ({reason}); re-export it or delete it.")


def _bomb(path: Path, width: int | None = None, height: int | None = None, detail: object = "") -> DataError:
    size = f" ({width}x{height} = {width * height} px per its header)" if width and height else ""
    size = size or (f" ({detail})" if detail else "")
    return DataError(
        f"{path} has too many pixels to open safely{size}; the decompression-bomb limit is "
        f"{Image.MAX_IMAGE_PIXELS} px (PIL.Image.MAX_IMAGE_PIXELS). Downscale it, or raise "
        "PIL.Image.MAX_IMAGE_PIXELS if you trust it."
    )


def _check_pixel_count(path: Path, width: int, height: int) -> None:
    """Refuse a header that promises more pixels than the limit, before anything is decoded.

    PIL itself only warns up to twice its limit and would decode such an image.
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise _bomb(path, width, height)


def _sniff(path: Path) -> str:
    """Why a file no decoder recognises is not an image, judged from its first bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as err:
        return f"unreadable: {err.strerror or err}"
    if head.startswith(b"version https://git-lfs"):
        return "it is a Git LFS pointer file, not the image: run `git lfs pull` where the dataset came from"
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "it is an HTML page, not an image: the download probably failed; download it again"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and b"\0" not in head and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"it is a text file, not an image (it starts with {first!r})"
    return "not a recognised image format"


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"Image file {path} does not exist; check the path.")
    if not path.is_file():
        raise DataError(f"{path} is not a file; pass an image file.")
    if path.stat().st_size == 0:
        raise DataError(
            f"{path} is empty (0 bytes); the copy or download was probably interrupted: copy it again or "
            "delete it."
        )
    return path


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block must not make the pixels unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1-8) to an ``(H, W, ...)`` array, like ``ImageOps.exif_transpose``."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(array, k=-1)
    if orientation == 7:
        return np.rot90(array, k=2).swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(array, k=1)
    return array


def _rawmode(image: Image.Image) -> str:
    """The decoder's raw mode, e.g. ``"RGB;16B"``: it tells the true bit depth that ``image.mode`` hides."""
    if not image.tile:
        return ""
    args = image.tile[0][3]
    return str(args[0] if isinstance(args, tuple) and args else args)


def _cv2_decode(path: Path) -> np.ndarray | None:
    # imdecode on bytes rather than imread: it copes with non-ASCII paths on every OS.
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        return None
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def _to_unit_float(array: np.ndarray, path: Path) -> np.ndarray:
    """Scale an integer or float array to float32 ``[0, 1]`` by its dtype's full range."""
    if array.dtype.kind == "f":
        finite = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
            logger.warning("%s holds float values outside [0, 1]; clipping them.", path)
        return np.clip(finite, 0.0, 1.0)
    scale = _MAX_BY_DTYPE.get(array.dtype.newbyteorder("="))
    if scale is None:
        raise DataError(f"{path} has unsupported pixel type {array.dtype}; re-export it as 8- or 16-bit PNG.")
    # float64 first: a 16- or 32-bit value keeps its precision until the final rounding to float32.
    return (np.clip(array.astype(np.float64), 0.0, None) / scale).astype(np.float32)


def _to_rgb(array: np.ndarray, path: Path, *, bgr: bool) -> np.ndarray:
    """``(H, W)``/``(H, W, 1..4)`` in any dtype -> ``(H, W, 3)`` float32 RGB, alpha composited on white."""
    unit = _to_unit_float(array, path)
    if unit.ndim == 2:
        unit = unit[:, :, None]
    channels = unit.shape[2]
    if channels in (1, 2):
        color, alpha = np.repeat(unit[:, :, :1], 3, axis=2), unit[:, :, 1:2] if channels == 2 else None
    elif channels in (3, 4):
        color = unit[:, :, 2::-1] if bgr else unit[:, :, :3]
        alpha = unit[:, :, 3:4] if channels == 4 else None
    else:
        raise DataError(f"{path} has {channels} channels; re-export it as RGB or grayscale.")
    if alpha is not None:
        color = color * alpha + (1.0 - alpha)
    return np.ascontiguousarray(color, dtype=np.float32)


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """Convert a PIL image of a <=8-bit or single-channel mode to a numpy array we can scale by dtype."""
    mode = image.mode
    if mode == "1":
        return np.asarray(image.convert("L"))
    if mode in ("P", "PA"):
        keep_alpha = mode == "PA" or "transparency" in image.info
        return np.asarray(image.convert("RGBA" if keep_alpha else "RGB"))
    if mode == "RGBa":
        return np.asarray(image.convert("RGBA"))
    if mode == "La":
        return np.asarray(image.convert("LA"))
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)
    if mode == "I":
        return np.asarray(image)
    if mode in ("L", "LA", "RGB", "RGBA", "F"):
        return np.asarray(image)
    return np.asarray(image.convert("RGB"))  # CMYK, YCbCr, LAB, HSV


def _needs_cv2(image: Image.Image) -> bool:
    """Whether OpenCV must decode the pixels instead of PIL.

    PIL silently truncates multi-channel 16-bit data to 8 bits, wraps unsigned 32-bit gray, and its
    mode "I" hides whether the data were 16 or 32 bits.
    """
    if image.mode in ("RGB", "RGBA", "LA"):
        rawmode = _rawmode(image)
        if ";16" in rawmode or ";32" in rawmode:
            return True
        # 16-bit PPM: the "ppm" decoder's args are (rawmode, maxval).
        args = image.tile[0][3] if image.tile else None
        return isinstance(args, tuple) and len(args) == 2 and isinstance(args[1], int) and args[1] > 255
    return image.mode == "I"


def read_image(path: str | Path, *, min_size: int = 1) -> np.ndarray:
    """Read any supported image as RGB float32 in ``[0, 1]``, upright per its EXIF orientation.

    Grayscale is replicated to three channels, transparency is composited on white, and 16-/32-bit
    data is scaled by its true bit depth (a 16-bit value 257 stays distinct from 256).

    Args:
        path: the image file.
        min_size: the smallest allowed width and height, in pixels.

    Returns:
        The image. Shape: ``(H, W, 3)``, float32.

    Raises:
        DataError: the file is missing, cannot be decoded, is a decompression bomb or is too small.
    """
    path = _check_file(path)
    try:
        array, orientation = _decode(path)
    except DataError:
        raise
    except Image.DecompressionBombError as err:
        raise _bomb(path, detail=err) from err
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as err:
        raise _undecodable(path, err) from err
    except Exception as err:  # decoders fail in many ways on hostile files: all of them mean "bad file"
        raise _undecodable(path, f"{type(err).__name__}: {err}") from err
    array = np.ascontiguousarray(apply_orientation(array, orientation))
    ensure_min_size(path, array.shape[1], array.shape[0], min_size)
    return array


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """The pixels of ``path`` as RGB float32 and its EXIF orientation (not yet applied)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except UnidentifiedImageError as err:
        # PIL cannot open e.g. float RGB TIFFs; OpenCV can (it ignores EXIF orientation there).
        decoded = _cv2_decode(path)
        if decoded is None:
            raise _undecodable(path, _sniff(path)) from err
        return _to_rgb(decoded, path, bgr=True), 1
    with image:
        _check_pixel_count(path, *image.size)  # from the header, before any decoding
        high_depth = _needs_cv2(image)  # before load(): decoding clears the tile info it reads
        image.load()  # decode now: truncation and corruption surface here, not later
        orientation = _orientation(image)
        decoded = _cv2_decode(path) if high_depth else None
        if decoded is not None:
            return _to_rgb(decoded, path, bgr=True), orientation
        if high_depth:
            logger.warning("%s: OpenCV cannot read it; falling back to PIL's decoding.", path)
        return _to_rgb(_pil_to_array(image), path, bgr=False), orientation


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` as :func:`read_image` would return it, read from the header only.

    Raises:
        DataError: the file is missing, its header cannot be read or promises too many pixels.
    """
    path = _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)  # lazy: reads the header, not the pixels
        with image:
            width, height = image.size
            _check_pixel_count(path, width, height)
            orientation = _orientation(image)
    except DataError:
        raise
    except Image.DecompressionBombError as err:
        raise _bomb(path, detail=err) from err
    except UnidentifiedImageError:
        height, width = read_image(path).shape[:2]  # rare formats only PIL can't parse: decode fully
        return width, height
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise _undecodable(path, err) from err
    except Exception as err:  # see read_image
        raise _undecodable(path, f"{type(err).__name__}: {err}") from err
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """Convert an RGB image in ``[0, 1]`` to a channels-first tensor in ``[-1, 1]``.

    Shape:
        - Input: ``(H, W, 3)`` float.
        - Output: ``(3, H, W)`` float32.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
    return tensor * 2.0 - 1.0


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """Convert a ``[-1, 1]`` tensor to an 8-bit RGB image (clamped, rounded to nearest).

    Shape:
        - Input: ``(3, H, W)`` or ``(1, H, W)`` (gray, replicated).
        - Output: ``(H, W, 3)`` uint8.
    """
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) tensor, got shape {tuple(tensor.shape)}")
    values = ((tensor.detach().float().cpu().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    if values.shape[0] == 1:
        values = values.expand(3, -1, -1)
    return np.ascontiguousarray(values.permute(1, 2, 0).numpy())


def save_image(tensor: torch.Tensor, path: str | Path) -> None:
    """Write a ``[-1, 1]`` tensor as an 8-bit image, atomically (temp file + rename in the same folder).

    The format follows the extension (``.png`` is lossless); parent folders are created. An existing
    file at ``path`` is replaced only once the new one is completely written.

    Shape:
        - Input: ``(3, H, W)``.
    """
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if path.suffix.lower() not in IMAGE_EXTENSIONS or image_format is None:
        raise DataError(f"Cannot save {path}: use one of the extensions {_ACCEPTED} (.png is lossless).")
    pixels = Image.fromarray(tensor_to_image(tensor))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            extra = {"quality": 95} if image_format in ("JPEG", "WEBP") else {}
            pixels.save(handle, format=image_format, **extra)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
