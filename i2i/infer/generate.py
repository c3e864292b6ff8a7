"""Noise -> images with the classic GANs: sample grids (by class or by code), interpolations, arithmetic.

- Grids: random samples; a class-conditional model gives one row per class and an InfoGAN one row per value
  of its categorical code, the noise shared down each column, so a column shows one "style" in every class.
- Interpolation strips (Radford et al. 2016, sec. 6.1): images along the path between two latents, ``linear``
  or ``slerp``; slerp follows the great circle and interpolates the norm linearly (White 2016), so a
  Gaussian latent never passes through the low-norm, unlikely middle of a straight line.
- Latent arithmetic (Radford et al. 2016, sec. 6.3): ``mean(A) - mean(B) + mean(C)`` over a few samples
  per concept ("smiling woman - neutral woman + neutral man"), shown with noisy variants of the result.

All latents come from a CPU ``torch.Generator`` seeded by ``seed``, so an image is the same on every device.

Example:
    >>> gen = ImageGenerator.from_file("cgan.safetensors")  # doctest: +SKIP
    >>> images, nrow = gen.grid(class_index=3)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.utils import make_grid

from i2i.data.images import save_image
from i2i.device import select_device
from i2i.errors import ConfigError
from i2i.hub import load_model_with_info
from i2i.nets.dcgan import NoiseGenerator

INTERPOLATIONS = ("linear", "slerp")
GRID_COLUMNS = 8


def lerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """``(1 - t) z0 + t z1`` for each ``t``, exact at 0 and 1. Shape: ``(D,), (D,), (T,) -> (T, D)``."""
    t = t[:, None].to(z0.dtype)
    return (1 - t) * z0 + t * z1


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of the direction, linear interpolation of the norm.

    With ``||z0|| = ||z1||`` every point keeps that norm. Nearly (anti)parallel endpoints fall back to
    :func:`lerp`, where the arc is undefined. Shape: ``(D,), (D,), (T,) -> (T, D)``; exact at the endpoints.
    """
    n0, n1 = z0.norm(), z1.norm()
    u0, u1 = z0 / n0, z1 / n1
    omega = torch.arccos((u0 * u1).sum().clamp(-1, 1))
    if torch.sin(omega) < 1e-6:
        return lerp(z0, z1, t)
    tt = t[:, None].to(z0.dtype)
    direction = (torch.sin((1 - tt) * omega) * u0 + torch.sin(tt * omega) * u1) / torch.sin(omega)
    out = direction * ((1 - tt) * n0 + tt * n1)
    out[t == 0], out[t == 1] = z0, z1  # bit-exact endpoints (u * n is not always z to the last bit)
    return out


def interpolate(z0: Tensor, z1: Tensor, steps: int, mode: str = "slerp") -> Tensor:
    """``steps`` latents from ``z0`` to ``z1`` inclusive. Shape: ``(D,), (D,) -> (steps, D)``."""
    if mode not in INTERPOLATIONS:
        raise ConfigError(f"--interpolate: unknown mode {mode!r}; choose {' or '.join(INTERPOLATIONS)}")
    if steps < 2:
        raise ConfigError(f"--steps must be at least 2, got {steps}")
    t = torch.linspace(0, 1, steps, dtype=z0.dtype)
    return (lerp if mode == "linear" else slerp)(z0, z1, t)


def latent_arithmetic(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """``mean(a) - mean(b) + mean(c)`` over exemplars. Shape: ``(Na, D), (Nb, D), (Nc, D) -> (D,)``."""
    return a.mean(0) - b.mean(0) + c.mean(0)


@dataclass
class Latents:
    """The inputs of a batch of images: noise plus class labels or InfoGAN codes where the model has them."""

    noise: Tensor  # (N, latent_dim)
    labels: Tensor | None = None  # (N,) classes of a conditional model
    categorical: Tensor | None = None  # (N,) InfoGAN categorical code
    continuous: Tensor | None = None  # (N, code_continuous)

    def take(self, index: Tensor | Sequence[int]) -> Latents:
        index = torch.as_tensor(index, dtype=torch.long)
        pick = {k: (v[index] if v is not None else None) for k, v in vars(self).items()}
        return Latents(**pick)


class ImageGenerator:
    """Runs a noise-to-image generator (``mlp_g``, ``dcgan_g``) from a checkpoint.

    Args:
        net: The generator.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    """

    def __init__(self, net: nn.Module, *, device: str | torch.device = "auto") -> None:
        if not isinstance(net, NoiseGenerator):
            raise ConfigError(
                f"{type(net).__name__} is not a noise-to-image generator; `i2i generate` needs a checkpoint "
                "trained with method: gan (use `i2i translate` for image-to-image models)"
            )
        self.device = select_device(device)
        self.net = net.to(self.device).eval()

    @classmethod
    def from_file(cls, path: str | Path, *, net: str | None = None, device: str = "auto") -> ImageGenerator:
        return cls(load_model_with_info(path, net=net)[0], device=device)

    def _check(self, class_index: int | None, code: Sequence[float] | None) -> None:
        g = self.net
        if class_index is not None and not g.num_classes:
            raise ConfigError("--class: this generator is not class-conditional")
        if class_index is not None and not 0 <= class_index < g.num_classes:
            raise ConfigError(
                f"--class: {class_index} is out of range; the model has {g.num_classes} classes"
            )
        if code is None:
            return
        if not g.code_categories + g.code_continuous:
            raise ConfigError("--code: this generator has no InfoGAN codes")
        values = list(code)
        if g.code_categories and not (values[0] == int(values[0]) and 0 <= values[0] < g.code_categories):
            raise ConfigError(
                f"--code: the first value is the category, an integer in [0, {g.code_categories})"
            )
        if len(values) > int(bool(g.code_categories)) + g.code_continuous:
            raise ConfigError(
                f"--code: too many values; give the category, then up to {g.code_continuous} continuous"
            )

    def latents(
        self, num: int, seed: int, *, class_index: int | None = None, code: Sequence[float] | None = None
    ) -> Latents:
        """``num`` latents: the given class/code, else the row-by-class (cGAN) or row-by-code (InfoGAN)
        layout of :meth:`grid` with ``num`` images per row and the noise shared down each column.
        """
        self._check(class_index, code)
        g, gen = self.net, torch.Generator().manual_seed(seed)
        if g.num_classes and class_index is None:  # one row per class
            rows = torch.arange(g.num_classes).repeat_interleave(num)
            noise = torch.randn(num, g.latent_dim, generator=gen).repeat(g.num_classes, 1)
            return Latents(noise, labels=rows, **self._codes(len(rows), code, None))
        if g.code_categories and code is None:  # one row per value of the categorical code
            rows = torch.arange(g.code_categories).repeat_interleave(num)
            noise = torch.randn(num, g.latent_dim, generator=gen).repeat(g.code_categories, 1)
            return Latents(noise, categorical=rows, continuous=torch.zeros(len(rows), g.code_continuous))
        noise = torch.randn(num, g.latent_dim, generator=gen)
        labels = torch.full((num,), class_index) if class_index is not None else None
        return Latents(noise, labels=labels, **self._codes(num, code, None))

    def _codes(self, n: int, code: Sequence[float] | None, row: Tensor | None) -> dict[str, Tensor | None]:
        g, values = self.net, list(code or [])
        out: dict[str, Tensor | None] = {"categorical": None, "continuous": None}
        if g.code_categories:
            first = int(values.pop(0)) if values else 0
            out["categorical"] = (
                row % g.code_categories if row is not None and code is None else torch.full((n,), first)
            )
        if g.code_continuous:
            cont = torch.zeros(g.code_continuous)
            cont[: len(values)] = torch.tensor(values, dtype=torch.float32)
            out["continuous"] = cont.expand(n, -1).clone()
        return out

    @torch.no_grad()
    def render(self, latents: Latents) -> Tensor:
        """Images for ``latents``. Shape: ``(N, C, H, W)`` in ``[-1, 1]``, on the CPU."""
        g, dev = self.net, self.device

        def to(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(dev)

        z = g.compose_latent(latents.noise.to(dev), to(latents.categorical), to(latents.continuous))
        return g(z, to(latents.labels)).float().cpu()

    def grid(
        self,
        num: int | None = None,
        seed: int = 0,
        *,
        class_index: int | None = None,
        code: Sequence[float] | None = None,
    ) -> tuple[Tensor, int, Latents]:
        """A sample grid: ``(images, images per row, their latents)``.

        ``num`` is the number of images (default 64), or per row (default 8) for the by-class/by-code layout.
        """
        by_rows = (self.net.num_classes and class_index is None) or (
            self.net.code_categories and code is None
        )
        per_row = num or (GRID_COLUMNS if by_rows else GRID_COLUMNS**2)
        latents = self.latents(per_row, seed, class_index=class_index, code=code)
        return self.render(latents), (per_row if by_rows else GRID_COLUMNS), latents

    def interpolation(
        self,
        rows: int = 8,
        steps: int = 10,
        mode: str = "slerp",
        seed: int = 0,
        *,
        class_index: int | None = None,
        code: Sequence[float] | None = None,
    ) -> tuple[Tensor, int]:
        """``rows`` strips of ``steps`` images between pairs of random noise vectors; ``(images, steps)``.

        Labels and codes stay fixed along a strip: the given ones, else row ``r`` uses class (or category)
        ``r`` modulo their count.
        """
        self._check(class_index, code)
        g, gen = self.net, torch.Generator().manual_seed(seed)
        ends = torch.randn(rows, 2, g.latent_dim, generator=gen)
        noise = torch.cat([interpolate(ends[r, 0], ends[r, 1], steps, mode) for r in range(rows)])
        row = torch.arange(rows).repeat_interleave(steps)
        labels = None
        if g.num_classes:
            labels = torch.full_like(row, class_index) if class_index is not None else row % g.num_classes
        latents = Latents(noise, labels=labels, **self._codes(len(row), code, row))
        return self.render(latents), steps

    def arithmetic(
        self, groups: Sequence[Sequence[int]], latents: Latents, *, variants: int = 8, seed: int = 0
    ) -> tuple[Tensor, int]:
        """``A - B + C`` on the noise of three groups of indices into ``latents`` (e.g. of :meth:`grid`).

        Returns the strip ``[G(mean A), G(mean B), G(mean C), G(result), variants...]`` where the variants add
        uniform noise in ``[-0.25, 0.25]`` to the result, as in the DCGAN paper; labels and codes are those of
        the first image of C. Shape: ``(4 + variants, C, H, W)``.
        """
        if len(groups) != 3 or not all(groups):
            raise ConfigError(
                "--arithmetic: expected three non-empty index groups, A-B+C, e.g. 0,1,2-3,4,5+6,7,8"
            )
        count = len(latents.noise)
        bad = [i for grp in groups for i in grp if not 0 <= i < count]
        if bad:
            raise ConfigError(
                f"--arithmetic: index {bad[0]} is out of range; the sample grid has {count} images"
            )
        means = [latents.noise[list(grp)].mean(0) for grp in groups]
        result = latent_arithmetic(*(latents.noise[list(grp)] for grp in groups))
        jitter = (
            torch.rand(variants, result.numel(), generator=torch.Generator().manual_seed(seed)) - 0.5
        ) * 0.5
        noise = torch.stack([*means, result, *(result + jitter)])
        rest = latents.take([groups[2][0]] * len(noise))
        return self.render(replace(rest, noise=noise)), len(noise)


def parse_code(text: str) -> list[float]:
    """``"3"`` or ``"3,0.5,-1"`` -> numbers (the category first for a model with a categorical code)."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(
            f"--code: expected numbers separated by commas, e.g. 3 or 3,0.5,-1; got {text!r}"
        ) from None


def parse_arithmetic(text: str) -> list[list[int]]:
    """``"0,1,2-3,4,5+6,7,8"`` -> ``[[0, 1, 2], [3, 4, 5], [6, 7, 8]]`` (A - B + C)."""
    a, sep, rest = text.partition("-")
    b, sep2, c = rest.partition("+")
    try:
        groups = [[int(i) for i in g.split(",") if i.strip()] for g in (a, b, c)]
    except ValueError:
        groups = []
    if not (sep and sep2) or len(groups) != 3:
        raise ConfigError(f"--arithmetic: expected A-B+C with comma-separated sample indices, got {text!r}")
    return groups


def save_strip(images: Tensor, nrow: int, path: str | Path) -> Path:
    """Write images as a PNG grid with ``nrow`` images per row. Shape: ``(N, C, H, W)`` in ``[-1, 1]``."""
    grid = make_grid(images.clamp(-1, 1), nrow=nrow, padding=2, pad_value=1.0)
    save_image(grid if grid.shape[0] in (1, 3) else grid[:3], path)
    return Path(path)


def generate_files(
    checkpoint: str | Path,
    output: str | Path,
    *,
    num: int | None = None,
    class_index: int | None = None,
    code: str | None = None,
    interpolation: str | None = None,
    steps: int = 10,
    arithmetic: str | None = None,
    seed: int = 0,
    device: str = "auto",
) -> list[Path]:
    """What ``i2i generate`` writes into ``output``: ``samples.png``, plus ``interpolation_<mode>.png`` and
    ``arithmetic.png`` when asked. Returns the written paths.
    """
    if num is not None and num < 1:
        raise ConfigError(f"--num must be at least 1, got {num}")
    gen = ImageGenerator.from_file(checkpoint, device=device)
    values = parse_code(code) if code is not None else None
    output = Path(output)
    images, nrow, latents = gen.grid(num, seed, class_index=class_index, code=values)
    written = [save_strip(images, nrow, output / "samples.png")]
    if interpolation:
        strips, nrow = gen.interpolation(
            num or 8, steps, interpolation, seed, class_index=class_index, code=values
        )
        written.append(save_strip(strips, nrow, output / f"interpolation_{interpolation}.png"))
    if arithmetic:
        strip, nrow = gen.arithmetic(parse_arithmetic(arithmetic), latents, seed=seed)
        written.append(save_strip(strip, nrow, output / "arithmetic.png"))
    return written
