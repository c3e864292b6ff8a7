"""Translator: run an image-to-image generator on images of any size, on CPU or GPU.

The generator's input size constraint (a U-Net with 8 downsamplings needs sides divisible by 256) is met
by reflection-padding the image up to the next multiple and cropping the output back, so a 300x451 photo
comes out 300x451.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.data.images import image_to_tensor, is_image_file, list_images, read_image, save_image
from i2i.device import autocast_dtype, select_device, select_precision
from i2i.errors import ConfigError, DataError
from i2i.hub import load_model_with_info
from i2i.statefile import is_checkpoint, load_checkpoint

log = logging.getLogger(__name__)


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad the bottom/right of ``x`` so H and W are multiples of ``multiple``.

    Reflection padding avoids the dark borders zero padding would leave; it needs the pad to be smaller
    than the side, so very small images are padded by replication instead.

    Shape:
        x: (B, C, H, W) -> (B, C, H', W'); also returns the original (H, W).
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (h, w)
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (h, w)


class Translator:
    """Applies a generator to images, handling size, batching, device and precision.

    Args:
        net: A generator taking and giving (B, C, H, W) images in ``value_range``.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``auto`` (bf16/fp16 on CUDA, fp32 elsewhere), ``fp32``, ``bf16`` or ``fp16``.
        multiple: Input sides must be multiples of this; default: ``net.multiple`` or 1.
        value_range: The pixel range the net works in, ``(-1, 1)`` for pix2pix/CycleGAN models.

    Example:
        >>> translator = Translator.from_file("runs/demo/checkpoints/last.safetensors")  # doctest: +SKIP
        >>> translator.translate_files(["photo.jpg"], "out/")  # doctest: +SKIP
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        multiple: int | None = None,
        value_range: Sequence[float] = (-1.0, 1.0),
    ) -> None:
        self.device = select_device(device)
        self.dtype = autocast_dtype(select_precision(precision, self.device))
        self.net = net.to(self.device).eval()
        self.multiple = int(multiple or getattr(net, "multiple", 1))
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.in_channels = _input_channels(net)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        net: str | None = None,
        direction: str | None = None,
        device: str = "auto",
        precision: str = "auto",
    ) -> Translator:
        """A Translator for an i2i checkpoint or a reference ``.pth`` generator.

        Args:
            path: The checkpoint or weights file.
            net: Which net of an i2i checkpoint (default: its first generator).
            direction: ``AtoB`` or ``BtoA``: the generator of that direction in a two-way (CycleGAN)
                checkpoint. A single-generator file translates the way it was trained (``AtoB``).
            device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
            precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        """
        if direction is not None:
            if net is not None:
                raise ConfigError("give either --net or --direction, not both")
            net = generator_for_direction(path, direction)
        model, info = load_model_with_info(path, net=net)
        return cls(model, device=device, precision=precision, value_range=info.value_range)

    @torch.inference_mode()
    def translate(self, images: Tensor) -> Tensor:
        """Translate a batch.

        Shape:
            images: (B, C, H, W) in [-1, 1], any H and W -> (B, C_out, H, W) in [-1, 1].
        """
        if self.in_channels is not None and images.shape[1] != self.in_channels:
            raise ConfigError(
                f"the net takes {self.in_channels}-channel images, got {images.shape[1]} channels; "
                "translate with an image generator (e.g. the checkpoint's generator, --net g)"
            )
        lo, hi = self.value_range
        x = (images.to(self.device, torch.float32) + 1) * 0.5 * (hi - lo) + lo
        x, (h, w) = pad_to_multiple(x, self.multiple)
        y = self._run(x)
        if y.ndim == 4 and y.shape[-1] > x.shape[-1] and y.shape[-1] % x.shape[-1] == 0:
            raise ConfigError(
                f"this is a x{y.shape[-1] // x.shape[-1]} super-resolution model, not a translator: its "
                "output is larger than its input; `i2i translate` does not upscale (`i2i upscale` will)"
            )
        if y.ndim != 4 or y.shape[-2:] != x.shape[-2:]:
            raise ConfigError(
                f"the net gave an output of shape {tuple(y.shape)} for a {tuple(x.shape)} input, so it is "
                "not an image-to-image generator; use the checkpoint's generator (e.g. --net g)"
            )
        y = y[..., :h, :w].float()
        return ((y - lo) / (hi - lo) * 2 - 1).clamp(-1, 1)

    def _run(self, x: Tensor) -> Tensor:
        if self.dtype is None:
            return self.net(x)
        with torch.autocast(self.device.type, dtype=self.dtype):
            y = self.net(x)
        if torch.isfinite(y).all():
            return y
        # Half precision can overflow in some nets; fp32 is always safe, only slower.
        log.warning("non-finite output in %s; running this batch again in fp32", self.dtype)
        return self.net(x)

    def translate_image(self, image: np.ndarray) -> np.ndarray:
        """Translate one (H, W, 3) float image in [0, 1]; returns the same layout."""
        y = self.translate(image_to_tensor(image).unsqueeze(0))[0]
        return ((y.permute(1, 2, 0).cpu().numpy() + 1) * 0.5).clip(0, 1)

    def translate_files(
        self, inputs: Iterable[str | Path], output_dir: str | Path, *, batch_size: int = 1
    ) -> list[Path]:
        """Translate image files and folders of images; writes ``output_dir/<stem>.png`` for each.

        Images of equal size are batched together up to ``batch_size``.
        """
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
        output_dir = Path(output_dir)
        files = expand_inputs(inputs, output_dir)
        written: list[Path] = []
        pending: list[tuple[Path, Tensor]] = []

        def flush() -> None:
            if not pending:
                return
            outputs = self.translate(torch.stack([t for _, t in pending]))
            for (src, _), out in zip(pending, outputs, strict=True):
                target = output_dir / f"{src.stem}.png"
                save_image(out.cpu(), target)
                written.append(target)
            pending.clear()

        for path in files:
            tensor = image_to_tensor(read_image(path))
            if pending and (pending[0][1].shape != tensor.shape or len(pending) >= batch_size):
                flush()
            pending.append((path, tensor))
        flush()
        return written


def generator_for_direction(path: str | Path, direction: str) -> str | None:
    """The net of checkpoint ``path`` that translates in ``direction`` (None: the file's only generator)."""
    if direction not in ("AtoB", "BtoA"):
        raise ConfigError(f"--direction must be AtoB or BtoA, got {direction!r}")
    if not is_checkpoint(path):
        if direction == "BtoA":
            raise ConfigError(
                f"{path} holds a single generator, which translates one way; drop --direction BtoA "
                "(or use the generator file trained for the other direction)"
            )
        return None
    specs = load_checkpoint(path, prefix="specs")
    for name, spec in specs.items():
        if spec.get("direction") == direction:
            return name
    if direction == "AtoB":
        return None  # a one-way (Pix2Pix) model: its generator is the AtoB one
    raise ConfigError(
        f"{path} translates one way only (nets: {', '.join(specs)}); for BtoA train a model with "
        "data.direction=BtoA, or use a CycleGAN checkpoint"
    )


def expand_inputs(inputs: Iterable[str | Path], output_dir: str | Path | None = None) -> list[Path]:
    """Files as given, folders expanded to the images they hold; errors name what is missing.

    With ``output_dir``, also refuses inputs whose output ``output_dir/<stem>.png`` would overwrite an
    input image.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(list_images(path))
        elif path.is_file():
            if not is_image_file(path):
                raise DataError(f"{path}: not an image file (use .png, .jpg, .bmp, .tif or .webp)")
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    stems: dict[str, Path] = {}
    unique: list[Path] = []
    for f in files:
        if f.stem in stems:
            if stems[f.stem].resolve() == f.resolve():
                continue  # the same file given twice (e.g. on its own and in its folder): translate it once
            raise DataError(f"{f} and {stems[f.stem]} would both be written as {f.stem}.png; rename one")
        stems[f.stem] = f
        unique.append(f)
    if not unique:
        raise DataError("no input images given")
    if output_dir is not None:
        sources = {f.resolve() for f in unique}
        for f in unique:
            out = Path(output_dir) / f"{f.stem}.png"
            if out.resolve() in sources:
                raise DataError(
                    f"{out}: writing the output would overwrite an input image; choose another output folder"
                )
    return unique


def _input_channels(net: nn.Module) -> int | None:
    """The channels the net's first convolution takes, or None when it has none."""
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            return module.in_channels
    return None
