"""Text -> images with a text-to-image GAN checkpoint: samples, single files and interpolation strips.

A checkpoint of ``method: text2image`` holds everything needed: the generator (its EMA weights when the run
kept them) and, in its spec, the text encoder it was trained with (the bundled all-MiniLM-L6-v2, a local
sentence-transformers or CLIP folder, or the trainable ``char_gru`` whose weights are in the checkpoint).

- :meth:`TextToImage.generate`: ``n`` images for a prompt, the same for the same seed.
- :meth:`TextToImage.interpolate_prompts`: sentence interpolation (Reed et al. 2016, fig. 5): the noise is
  fixed per row and the sentence embedding moves from one prompt to another, so only what the text says
  changes (colour, shape...), not the pose or layout the noise chose.
- :meth:`TextToImage.interpolate_noise`: latent interpolation: the sentence is fixed and the noise moves
  (slerp or linear), showing the variety the model draws for one prompt.

All noise comes from a CPU ``torch.Generator`` seeded by ``seed``, so a seed gives the same images on every
device (up to floating point).

Example:
    >>> t2i = TextToImage.from_file("runs/t2i_demo/checkpoints/step_00001500.safetensors")  # doctest: +SKIP
    >>> images = t2i.generate("a red circle on a white background", n=4, seed=0)  # doctest: +SKIP
    >>> images[0].size  # doctest: +SKIP
    (32, 32)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn

from i2i.data.images import save_image, tensor_to_image
from i2i.device import autocast_dtype, select_device, select_precision
from i2i.errors import CheckpointError, ConfigError
from i2i.hub import load_model, load_model_with_info
from i2i.infer.generate import interpolate, save_strip
from i2i.nets.text import load_text_encoder, text_scale

log = logging.getLogger(__name__)

Encode = Callable[[Sequence[str]], Tensor]
GRID_COLUMNS = 8


def _check_prompts(prompts: Sequence[str]) -> list[str]:
    cleaned = [" ".join(str(p).split()) for p in prompts]
    if not cleaned or not all(cleaned):
        raise ConfigError("--prompt: the prompt is empty; describe the image, e.g. 'a small red bird'")
    return cleaned


class TextToImage:
    """Runs a text-conditional generator (``text2image_g``) on prompts.

    Args:
        generator: The generator; it takes ``(noise (N, latent_dim), text (N, text_dim))``.
        encode: Prompts -> raw sentence embeddings ``(N, text_dim)`` (the checkpoint's text encoder).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``auto`` (bf16/fp16 on CUDA, fp32 elsewhere), ``fp32``, ``bf16`` or ``fp16``.

    Attributes:
        image_size: Side of the generated images in pixels.
        latent_dim: Size of the noise vector.
    """

    def __init__(
        self,
        generator: nn.Module,
        encode: Encode,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
    ) -> None:
        if not all(hasattr(generator, a) for a in ("text_dim", "latent_dim", "image_size")):
            raise ConfigError(
                f"{type(generator).__name__} is not a text-to-image generator; use a checkpoint trained with "
                "method: text2image"
            )
        self.device = select_device(device)
        self.dtype = autocast_dtype(select_precision(precision, self.device))
        self.net = generator.to(self.device).eval()
        self.encode = encode
        self.image_size: int = int(generator.image_size)
        self.latent_dim: int = int(generator.latent_dim)

    @classmethod
    def from_file(cls, path: str | Path, *, device: str = "auto", precision: str = "auto") -> TextToImage:
        """The generator of a text-to-image checkpoint (EMA weights when present) with its text encoder.

        Raises:
            ConfigError: the file is not a text-to-image model.
            CheckpointError: it does not say which text encoder it needs, or the encoder does not fit.
        """
        generator, info = load_model_with_info(path)
        if info.task != "text2image":
            raise ConfigError(
                f"{path} is a {info.task} model, not a text-to-image one; "
                + (
                    "use `i2i generate` without --prompt"
                    if info.task == "generate"
                    else f"use `i2i {info.task}`"
                )
            )
        spec = info.extra.get("text_encoder")
        if not isinstance(spec, dict) or "kind" not in spec:
            raise CheckpointError(
                f"{path}: the generator's spec does not name its text encoder; use the training checkpoint "
                "(runs/NAME/checkpoints/*.safetensors) of a method: text2image run"
            )
        encode = _encoder(path, spec)
        dim = int(spec.get("dim", generator.text_dim))
        if dim != generator.text_dim:
            raise CheckpointError(
                f"{path}: the text encoder gives {dim}-dim embeddings but the generator takes "
                f"{generator.text_dim}"
            )
        return cls(generator, encode, device=device, precision=precision)

    def embed(self, prompts: Sequence[str]) -> Tensor:
        """Sentence embeddings as the generator takes them (unit RMS), on its device. Shape: ``(N, D)``."""
        with torch.no_grad():
            return text_scale(self.encode(_check_prompts(prompts)).float()).to(self.device)

    def noise(self, num: int, seed: int) -> Tensor:
        """``num`` noise vectors from a CPU generator seeded by ``seed``. Shape: ``(num, latent_dim)``.

        Drawn one vector at a time, so the first ``k`` are the same for any ``num >= k`` (one call for the
        whole batch would not be: torch fills small and large tensors with different algorithms).
        """
        generator = torch.Generator().manual_seed(seed)
        return torch.stack([torch.randn(self.latent_dim, generator=generator) for _ in range(num)])

    @torch.no_grad()
    def render(self, text: Tensor, noise: Tensor) -> Tensor:
        """Images for embeddings (from :meth:`embed`) and noise.

        Shape: ``(N, D)``, ``(N, latent_dim)`` -> ``(N, 3, S, S)`` in ``[-1, 1]``, float32 on the CPU.
        """
        text, noise = text.to(self.device), noise.to(self.device)
        if self.dtype is None:
            return self.net(noise, text).float().clamp(-1, 1).cpu()
        with torch.autocast(self.device.type, dtype=self.dtype):
            out = self.net(noise, text)
        if not torch.isfinite(out).all():  # half precision can overflow; fp32 is always safe
            out = self.net(noise.float(), text.float())
        return out.float().clamp(-1, 1).cpu()

    def images(self, prompt: str, *, n: int = 4, seed: int = 0) -> Tensor:
        """``n`` images for ``prompt`` as a tensor. Shape: ``(n, 3, S, S)`` in ``[-1, 1]``."""
        if n < 1:
            raise ConfigError(f"-n/--num must be at least 1, got {n}")
        text = self.embed([prompt])
        return self.render(text.expand(n, -1), self.noise(n, seed))

    def generate(self, prompt: str, *, n: int = 4, seed: int = 0) -> list[Image.Image]:
        """``n`` RGB images for ``prompt``, deterministic for a given ``seed``."""
        return [Image.fromarray(tensor_to_image(x)) for x in self.images(prompt, n=n, seed=seed)]

    def interpolate_prompts(
        self, start: str, end: str, *, rows: int = 4, steps: int = 8, seed: int = 0
    ) -> tuple[Tensor, int]:
        """Sentence interpolation: per row a fixed noise, the embedding moving from ``start`` to ``end``.

        Returns:
            ``(images (rows * steps, 3, S, S), steps)``: one strip per row.
        """
        if rows < 1:
            raise ConfigError(f"-n/--num (rows) must be at least 1, got {rows}")
        ends = self.embed([start, end]).cpu()
        text = interpolate(ends[0], ends[1], steps, "linear").repeat(rows, 1)  # (rows * steps, D)
        noise = self.noise(rows, seed).repeat_interleave(steps, dim=0)
        return self.render(text, noise), steps

    def interpolate_noise(
        self, prompt: str, *, rows: int = 4, steps: int = 8, mode: str = "slerp", seed: int = 0
    ) -> tuple[Tensor, int]:
        """Latent interpolation: ``prompt`` fixed, per row the noise moving between two random vectors."""
        if rows < 1:
            raise ConfigError(f"-n/--num (rows) must be at least 1, got {rows}")
        ends = self.noise(2 * rows, seed).view(rows, 2, -1)
        noise = torch.cat([interpolate(ends[r, 0], ends[r, 1], steps, mode) for r in range(rows)])
        text = self.embed([prompt]).cpu().expand(len(noise), -1)
        return self.render(text, noise), steps


def _encoder(path: str | Path, spec: dict) -> Encode:
    """The checkpoint's text encoder as a function: the trained ``char_gru`` or a pretrained model."""
    if spec["kind"] == "trainable":
        net = load_model(path, net=spec.get("net", "text"))
        if not hasattr(net, "tokenize"):  # an exported file holds the generator alone
            raise CheckpointError(
                f"{path}: the generator was trained with its own text encoder, whose weights are only in the "
                "training checkpoint (runs/NAME/checkpoints/*.safetensors); generate from that file"
            )

        def encode(texts: Sequence[str]) -> Tensor:
            with torch.no_grad():
                return net(net.tokenize(texts))

        return encode
    encoder = load_text_encoder(spec["kind"], spec["name"])
    return encoder.encode


def text_to_image_files(
    checkpoint: str | Path,
    output: str | Path,
    *,
    prompt: str | None,
    num: int | None = None,
    seed: int = 0,
    prompt_to: str | None = None,
    interpolation: str | None = None,
    steps: int = 8,
    device: str = "auto",
    precision: str = "auto",
) -> list[Path]:
    """What ``i2i generate --prompt`` writes into ``output``.

    ``samples.png`` (a grid of ``num`` images, default 8) and ``sample_000.png``...; with ``prompt_to``,
    ``interpolation_text.png`` (sentence interpolation, ``num`` rows of ``steps``); with ``interpolation``
    (``slerp`` or ``linear``), ``interpolation_<mode>.png`` (noise interpolation for the prompt).

    Raises:
        ConfigError: no or an empty prompt, or a checkpoint that is not text-to-image.
    """
    if prompt is None:
        raise ConfigError(
            f"{checkpoint} is a text-to-image model: give --prompt 'a sentence describing the image'"
        )
    t2i = TextToImage.from_file(checkpoint, device=device, precision=precision)
    output = Path(output)
    n = GRID_COLUMNS if num is None else num
    images = t2i.images(prompt, n=n, seed=seed)
    written = [save_strip(images, min(n, GRID_COLUMNS), output / "samples.png")]
    for i, image in enumerate(images):
        save_image(image, output / f"sample_{i:03d}.png")
        written.append(output / f"sample_{i:03d}.png")
    rows = num or 4
    if prompt_to is not None:
        strips, nrow = t2i.interpolate_prompts(prompt, prompt_to, rows=rows, steps=steps, seed=seed)
        written.append(save_strip(strips, nrow, output / "interpolation_text.png"))
    if interpolation:
        strips, nrow = t2i.interpolate_noise(prompt, rows=rows, steps=steps, mode=interpolation, seed=seed)
        written.append(save_strip(strips, nrow, output / f"interpolation_{interpolation}.png"))
    return written
