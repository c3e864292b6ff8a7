"""Upscaler: run a super-resolution net on images of any size with memory bounded by the tile size.

The image stays on the CPU in its own dtype (uint8/uint16); tiles of ``tile`` x ``tile`` input pixels are cut
from it, converted to float one batch at a time and sent to the device, so only ``batch_size`` tiles are ever
there. Neighbouring tiles overlap by ``tile_overlap`` pixels and are blended with linear ramps across the
overlap (weights that sum to one), so there are no seams. The blended result is written straight into the
output array: only the overlap strips still waiting for their next tile are kept in float (one strip of
``tile_overlap * scale`` rows across the image, one strip of ``tile_overlap * scale`` columns across a tile),
never a float copy of the whole image. Tiles start at multiples of the net's input multiple (RRDBNet x2
pixel-unshuffles by 2), so a pixel far enough from every tile edge gets exactly the untiled value.

Grayscale images go through a colour net as three equal channels and come back as BT.601 luma; an alpha
channel is upscaled on its own (by the net, as Real-ESRGAN does; a constant alpha is just repeated). On CUDA,
``precision`` ``auto`` runs bf16/fp16 autocast, and a batch whose output is not finite runs again in fp32.

Example:
    >>> upscaler = Upscaler.from_file("realesr-general-x4v3", tile=256)  # doctest: +SKIP
    >>> big = upscaler.upscale_image(np.asarray(Image.open("photo.png")))  # doctest: +SKIP
    >>> upscaler.upscale_files(["photos/"], "out/")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from i2i.data.images import apply_orientation, read_image_size
from i2i.device import autocast_dtype, select_device, select_precision
from i2i.errors import ConfigError, DataError
from i2i.hub import load_model_with_info
from i2i.infer.tiling import AxisTiles, blend_weights, plan_axis
from i2i.infer.translate import _input_channels, expand_inputs

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None] | bool
_LUMA = (0.299, 0.587, 0.114)  # BT.601, what OpenCV's BGR2GRAY uses (Real-ESRGAN's grey output)
_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class Upscaler:
    """Applies a super-resolution net to images of any size, tiled, batched, on CPU or GPU.

    Args:
        net: Takes (B, C, h, w) and gives (B, C_out, h * scale, w * scale), in ``value_range``.
        scale: The net's factor; default: ``net.scale``.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``auto`` (bf16/fp16 on CUDA, fp32 elsewhere), ``fp32``, ``bf16`` or ``fp16``.
        tile: Input tile side in pixels; memory is bounded by it, not by the image. 0: the whole image.
        tile_overlap: Input pixels shared by neighbouring tiles and blended.
        batch_size: Tiles per forward pass.
        value_range: Pixel range of the net, ``(0, 1)`` for BasicSR / Real-ESRGAN / i2i SR models.

    Attributes:
        scale: Output size / input size.
        device: Where the net runs.
        tile: May be changed between calls (e.g. lowered after ``torch.OutOfMemoryError``).
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        scale: int | None = None,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int = 512,
        tile_overlap: int = 32,
        batch_size: int = 4,
        value_range: Sequence[float] = (0.0, 1.0),
    ) -> None:
        net_scale = getattr(net, "scale", None)
        scale = net_scale if scale is None else scale
        if scale is None or int(scale) < 1:
            raise ConfigError("the net has no `scale` attribute: give the upscaling factor (scale=4)")
        if net_scale is not None and int(net_scale) != int(scale):
            raise ConfigError(f"scale={scale} but the net upscales x{net_scale}; leave scale out or match it")
        self.scale = int(scale)
        self.device = select_device(device)
        self.dtype = autocast_dtype(select_precision(precision, self.device))
        self.net = net.to(self.device).eval()
        self.multiple = int(getattr(net, "multiple", 1))
        self.tile, self.tile_overlap, self.batch_size = int(tile), int(tile_overlap), int(batch_size)
        self.value_range = (float(value_range[0]), float(value_range[1]))
        # RRDBNet x2/x1 pixel-unshuffle the input by `multiple`: the first conv sees C * multiple**2 channels.
        self.in_channels = (_input_channels(net) or 3) // self.multiple**2

    @classmethod
    def from_file(
        cls,
        path_or_name: str | Path,
        *,
        device: str = "auto",
        precision: str = "auto",
        tile: int = 512,
        tile_overlap: int = 32,
        batch_size: int = 4,
    ) -> Upscaler:
        """An Upscaler for a registry name (``RealESRGAN_x4plus``), an i2i checkpoint/exported model or a
        BasicSR / Real-ESRGAN ``.pth``.

        Raises:
            ConfigError: the model is not an upscaler (a translator, a generator, a discriminator).
            CheckpointError: the file is missing, corrupt or of an unknown format.
        """
        model, info = load_model_with_info(path_or_name)
        if info.task != "upscale":
            tool = {"translate": "i2i translate", "generate": "i2i generate"}.get(info.task, "another tool")
            raise ConfigError(
                f"{path_or_name} is a {info.task} model ({info.name}), not a super-resolution model: "
                f"`i2i upscale` needs a net that enlarges images; use {tool} for it"
            )
        return cls(
            model,
            scale=info.scale,
            device=device,
            precision=precision,
            tile=tile,
            tile_overlap=tile_overlap,
            batch_size=batch_size,
            value_range=info.value_range,
        )

    # ------------------------------------------------------------------ images

    def upscale_image(self, image: np.ndarray, *, progress: Progress = False) -> np.ndarray:
        """Upscale one image, keeping its layout and dtype.

        Args:
            image: (H, W) grey, (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA; uint8, uint16, or float in [0, 1].
            progress: True for a progress bar, or a function called with (tiles done, tiles in all).

        Returns:
            The same layout and dtype, (H * scale, W * scale[, C]).
        """
        image = np.asarray(image)
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
            raise DataError(f"expected an (H, W) or (H, W, C) image with C in 1-4, got shape {image.shape}")
        if image.dtype not in _MAX and image.dtype.kind != "f":
            raise DataError(f"unsupported pixel type {image.dtype}; give uint8, uint16 or float images")
        planes = image[:, :, None] if image.ndim == 2 else image
        height, width, channels = planes.shape
        out = np.empty((height * self.scale, width * self.scale, channels), image.dtype)
        color_channels = 1 if channels <= 2 else 3
        alpha = planes[:, :, color_channels] if channels in (2, 4) else None
        self._upscale_into(
            planes[:, :, :color_channels],
            alpha,
            out[:, :, :color_channels],
            out[:, :, color_channels] if alpha is not None else None,
            progress,
        )
        return out[:, :, 0] if image.ndim == 2 else out

    def upscale_files(
        self,
        inputs: Iterable[str | Path],
        out_dir: str | Path,
        *,
        outscale: float | None = None,
        progress: Progress = False,
    ) -> list[Path]:
        """Upscale image files and folders of images into ``out_dir/<stem>.png`` (8 or 16 bits, as the input).

        Args:
            inputs: Image files and/or folders.
            out_dir: Output folder (created).
            outscale: Final size factor when it differs from the net's (Lanczos resampling of the result).
            progress: As in :meth:`upscale_image`, per image.
        """
        if outscale is not None and not 0 < outscale <= 16:
            raise ConfigError(f"--scale must be in (0, 16], got {outscale}")
        out_dir = Path(out_dir)
        files = expand_inputs(inputs, out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for path in files:
            bgr = read_image_keep_layout(path)  # OpenCV's channel order, which is also what it writes
            height, width = bgr.shape[:2]
            channels = 1 if bgr.ndim == 2 else bgr.shape[2]
            out = np.empty((height * self.scale, width * self.scale, channels), bgr.dtype)
            planes = bgr[:, :, None] if bgr.ndim == 2 else bgr
            color = planes[:, :, 2::-1] if channels >= 3 else planes[:, :, :1]  # RGB views, no copies
            out_color = out[:, :, 2::-1] if channels >= 3 else out[:, :, :1]
            alpha = (planes[:, :, 3], out[:, :, 3]) if channels == 4 else (None, None)
            log.info("upscaling %s (%dx%d, x%d)", path, width, height, self.scale)
            self._upscale_into(color, alpha[0], out_color, alpha[1], progress)
            if outscale is not None and outscale != self.scale:
                size = (max(1, round(width * outscale)), max(1, round(height * outscale)))
                shrink = outscale < self.scale
                out = cv2.resize(out, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
            target = out_dir / f"{path.stem}.png"
            write_png(out[:, :, 0] if channels == 1 and out.ndim == 3 else out, target)
            written.append(target)
        return written

    # ------------------------------------------------------------------ the tiled core

    def _upscale_into(
        self,
        color: np.ndarray,
        alpha: np.ndarray | None,
        out_color: np.ndarray,
        out_alpha: np.ndarray | None,
        progress: Progress,
    ) -> None:
        """Upscale ``color`` (H, W, 1|3) into ``out_color``, ``alpha`` (H, W) into ``out_alpha`` (views)."""
        gray = color.shape[2] == 1
        if self.in_channels not in (1, 3) or (self.in_channels == 1 and not gray):
            raise ConfigError(
                f"the net takes {self.in_channels}-channel images; give "
                f"{'grayscale' if self.in_channels == 1 else 'RGB or grayscale'} images"
            )
        jobs = [(color, out_color, gray)]
        if alpha is not None:
            if alpha.min() == alpha.max():  # opaque (or uniformly transparent): nothing to upscale
                out_alpha[...] = alpha.flat[0]
            else:
                jobs.append((alpha[:, :, None], out_alpha[:, :, None], True))
        plans = [self._plan(job[0].shape[:2]) for job in jobs]
        total = sum(len(rows.starts) * len(cols.starts) for rows, cols in plans)
        bar = tqdm(total=total, unit="tile", disable=progress is not True, leave=False)
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            bar.update(1)
            if callable(progress):
                progress(done, total)

        try:
            for (planes, out, to_gray), plan in zip(jobs, plans, strict=True):
                self._blend_tiles(planes, out, to_gray, plan, tick)
        finally:
            bar.close()

    def _plan(self, shape: tuple[int, int]) -> tuple[AxisTiles, AxisTiles]:
        if self.batch_size < 1 or self.tile < 0 or self.tile_overlap < 0:
            raise ConfigError(
                f"tile ({self.tile}), tile_overlap ({self.tile_overlap}) must be >= 0 and batch_size "
                f"({self.batch_size}) >= 1"
            )
        tile = self.tile
        if 0 < tile < 4 * self.multiple:
            raise ConfigError(f"tile {tile} is too small for this net; use at least {4 * self.multiple}")
        height, width = (-(-side // self.multiple) * self.multiple for side in shape)
        return (
            plan_axis(height, tile, self.tile_overlap, self.multiple),
            plan_axis(width, tile, self.tile_overlap, self.multiple),
        )

    def _tiles(
        self, planes: np.ndarray, rows: AxisTiles, cols: AxisTiles
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(row, col, upscaled tile)`` in row-major order, the net run on batches of tiles.

        Shape of each tile: (rows.size * scale, cols.size * scale, C_out) float32 in [0, 1].
        """
        maximum = _MAX.get(planes.dtype, 1.0)
        lo, hi = self.value_range
        coords = [(r, c) for r in range(len(rows.starts)) for c in range(len(cols.starts))]
        for first in range(0, len(coords), self.batch_size):
            batch = coords[first : first + self.batch_size]
            crops = []
            for r, c in batch:
                y, x = rows.starts[r], cols.starts[c]
                crop = planes[y : y + rows.size, x : x + cols.size]
                pad = (rows.size - crop.shape[0], cols.size - crop.shape[1])  # the net's input multiple
                if any(pad):
                    mode = "reflect" if pad[0] < crop.shape[0] and pad[1] < crop.shape[1] else "edge"
                    crop = np.pad(crop, ((0, pad[0]), (0, pad[1]), (0, 0)), mode=mode)
                crops.append(torch.from_numpy(np.ascontiguousarray(crop)))
            x = torch.stack(crops).to(self.device).permute(0, 3, 1, 2).float()  # (B, C, t, t)
            x = x / maximum * (hi - lo) + lo
            if x.shape[1] == 1 and self.in_channels == 3:
                x = x.expand(-1, 3, -1, -1)
            y = ((self._run(x).float() - lo) / (hi - lo)).clamp_(0, 1)
            for (r, c), tile in zip(batch, y.permute(0, 2, 3, 1).cpu().numpy(), strict=True):
                yield r, c, tile

    @torch.inference_mode()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        expected = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        if self.dtype is None:
            y = self.net(x)
        else:
            with torch.autocast(self.device.type, dtype=self.dtype):
                y = self.net(x)
            if not torch.isfinite(y).all():
                # Half precision overflows in some nets (large activations); fp32 is safe, only slower.
                log.warning("non-finite output in %s; running this batch of tiles again in fp32", self.dtype)
                y = self.net(x)
        if y.ndim != 4 or tuple(y.shape[-2:]) != expected:
            raise ConfigError(
                f"the net gave {tuple(y.shape)} for a {tuple(x.shape)} input, not x{self.scale} larger; "
                "is this a super-resolution model of that scale?"
            )
        return y

    def _blend_tiles(
        self,
        planes: np.ndarray,
        out: np.ndarray,
        to_gray: bool,
        plan: tuple[AxisTiles, AxisTiles],
        tick: Callable[[], None],
    ) -> None:
        """Blend the upscaled tiles of ``planes`` into ``out``, keeping only pending overlap strips in float.

        Tile (r, c)'s weighted output covers its owned rows x columns. Its right blend zone waits in
        ``right`` for tile (r, c + 1); the rest of its bottom blend zone is summed into ``below`` for row
        r + 1; everything else is final once ``above`` (row r - 1's bottom zone) and ``right`` from tile
        (r, c - 1) are added, and is written to ``out`` in its dtype.
        """
        rows, cols = plan
        s = self.scale
        height, width = planes.shape[:2]
        full_h, full_w = out.shape[:2]
        maximum = _MAX.get(out.dtype)
        channels = out.shape[2]
        above = below = right = None
        for r, c, tile in self._tiles(planes, rows, cols):
            if tile.shape[2] != channels:
                if not to_gray or tile.shape[2] != 3:
                    raise ConfigError(f"the net gives {tile.shape[2]} channels for {channels}-channel images")
                tile = tile @ np.asarray(_LUMA, np.float32)[:, None]  # (h, w, 1)
            (y0, y1), (x0, x1) = rows.owned(r, height), cols.owned(c, width)
            oy, ox = rows.starts[r] * s, cols.starts[c] * s
            part = tile[y0 * s - oy : y1 * s - oy, x0 * s - ox : x1 * s - ox]
            part = (
                part
                * blend_weights(rows, r, height, s)[:, None, None]
                * blend_weights(cols, c, width, s)[None, :, None]
            )
            if c == 0:  # a new row of tiles: its bottom zone starts empty; the last row's is carried down
                above = below
                zone = rows.zones[r] if r < len(rows.starts) - 1 else None
                below = np.zeros(((zone[1] - zone[0]) * s, width * s, channels), np.float32) if zone else None
            if c > 0:
                part[:, : right.shape[1]] += right
            split = (cols.zones[c][0] - x0) * s if c < len(cols.starts) - 1 else part.shape[1]
            right = part[:, split:]
            done = part[:, :split]
            if r > 0:
                done[: above.shape[0]] += above[:, x0 * s : x0 * s + split]
            final_rows = (rows.zones[r][0] - y0) * s if r < len(rows.starts) - 1 else done.shape[0]
            if below is not None:
                below[:, x0 * s : x0 * s + split] += done[final_rows:]
            region = done[:final_rows]
            ys, xs = y0 * s, x0 * s
            ye, xe = min(ys + region.shape[0], full_h), min(xs + region.shape[1], full_w)
            region = region[
                : ye - ys, : xe - xs
            ]  # what lies in the padding for the net's multiple is dropped
            if maximum is None:
                out[ys:ye, xs:xe] = region
            else:
                out[ys:ye, xs:xe] = np.rint(region * maximum).astype(out.dtype)
            tick()


# ----------------------------------------------------------------------------- files


def read_image_keep_layout(path: str | Path) -> np.ndarray:
    """An image file as OpenCV gives it, upright: (H, W) grey, (H, W, 3) BGR or (H, W, 4) BGRA, uint8/16.

    Unlike :func:`i2i.data.images.read_image`, grey stays one channel, alpha is kept and 16 bits stay 16
    bits. Float images become uint16.

    Raises:
        DataError: missing, empty, undecodable or oversized files (the checks of i2i's reader).
    """
    path = Path(path)
    read_image_size(path)  # existence, emptiness, decompression-bomb limit, a readable header
    try:
        with Image.open(path) as header:
            orientation = int(header.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block must not make the pixels unreadable
        orientation = 1
    decoded = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        try:
            with Image.open(path) as image:
                mode = "RGBA" if "A" in image.mode or "transparency" in image.info else "RGB"
                pixels = np.asarray(image.convert(mode))
        except Exception as exc:
            raise DataError(f"{path} cannot be decoded ({exc}); re-export it as PNG or JPEG") from exc
        decoded = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if mode == "RGBA" else cv2.COLOR_RGB2BGR)
    if decoded.dtype.kind == "f":
        decoded = np.rint(np.clip(np.nan_to_num(decoded), 0, 1) * 65535).astype(np.uint16)
    elif decoded.dtype not in _MAX:
        raise DataError(f"{path} has {decoded.dtype} pixels; re-export it as an 8- or 16-bit PNG")
    if decoded.ndim == 3 and decoded.shape[2] == 1:
        decoded = decoded[:, :, 0]
    elif decoded.ndim == 3 and decoded.shape[2] == 2:  # grey + alpha: PNG has no 2-channel colour type here
        decoded = np.dstack([decoded[:, :, :1].repeat(3, axis=2), decoded[:, :, 1:]])
    return np.ascontiguousarray(apply_orientation(decoded, orientation if 1 <= orientation <= 8 else 1))


def write_png(image: np.ndarray, path: str | Path) -> None:
    """Write (H, W), (H, W, 3) BGR or (H, W, 4) BGRA uint8/uint16 as PNG, atomically, without a copy."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    try:
        if not cv2.imwrite(str(tmp), image):  # streams rows to the file; no encoded copy in memory
            ok, encoded = cv2.imencode(".png", image)
            if not ok:
                raise DataError(f"cannot encode {path} as PNG")
            encoded.tofile(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
