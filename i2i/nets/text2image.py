"""Text-conditional generator and discriminator in the DF-GAN lineage (Tao et al. 2022).

Reed et al. 2016 ("Generative Adversarial Text to Image Synthesis") feed ``[z, phi(t)]`` (noise and the
sentence embedding) to a DCGAN generator and join ``phi(t)`` to the discriminator's 4x4 features. DF-GAN
keeps that skeleton and fuses the text in deeper:

- **Generator**: ``z`` is projected to a 4x4 map (as DF-GAN; ``text_start=True`` projects Reed et al.'s
  noise-and-sentence code ``c`` instead); every up-block (nearest x2 upsampling, two 3x3 convs, a
  residual 1x1 shortcut) modulates its features four times with a text-and-noise affine transform (FiLM,
  Perez et al. 2018): ``h <- gamma(c) * h + beta(c)`` then LeakyReLU, with ``c = MLP([z, e])``, the
  sentence embedding concatenated with the noise as in Reed et al.
  DF-GAN gives each affine layer its own two-layer MLP; here the first layer is shared by all of them
  (the ``condition`` MLP), which keeps G small enough for CPU runs. The affine layers start as the
  identity (gamma = 1, beta = 0), as in DF-GAN.
- **Discriminator**: residual stride-2 blocks down to 4x4 with a learned residual gain that starts at 0
  (DF-GAN; ``residual_gain=1`` starts the residual branches on, which reads shapes much sooner), no
  normalization (the matching-aware gradient penalty is per sample). Its logit joins the sentence:
  ``concat`` (DF-GAN / Reed: ``e`` tiled over the 4x4 map, concatenated, 3x3 conv, 4x4 conv) or
  ``projection`` (Miyato & Koyama 2018: ``psi(phi(x)) + <W e, phi(x)>``). With ``embed_dim > 0`` D also
  maps the image and the sentence into a joint space
  (:meth:`~TextConditionalDiscriminator.image_embedding`,
  :meth:`~TextConditionalDiscriminator.text_embedding`), the heads that XMC-GAN's (Zhang et al. 2021)
  image-text contrastive loss trains.

D exposes :meth:`TextConditionalDiscriminator.features` and :meth:`~TextConditionalDiscriminator.logits`
separately, so the matching-aware loss scores one real batch against matching and mismatched sentences
from a single pass through the body.

Example:
    >>> import torch
    >>> g = TextConditionalGenerator(latent_dim=16, text_dim=8, image_size=32, base_channels=8)
    >>> d = TextConditionalDiscriminator(text_dim=8, image_size=32, base_channels=8)
    >>> e = torch.randn(2, 8)
    >>> x = g(torch.randn(2, 16), e)
    >>> x.shape, d(x, e).shape
    (torch.Size([2, 3, 32, 32]), torch.Size([2]))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.layers import check_norm, norm_layer
from i2i.nets.registry import register

CONDITIONINGS = ("concat", "projection")
SLOPE = 0.2  # LeakyReLU slope everywhere, as DF-GAN


def _steps(image_size: int) -> int:
    """How many x2 stages lie between 4x4 and ``image_size`` (a power of two, 16 to 1024)."""
    steps = int(round(math.log2(image_size / 4))) if image_size > 0 else -1
    if steps < 2 or 4 * 2**steps != image_size or image_size > 1024:
        raise ConfigError(
            f"image_size must be a power of two from 16 to 1024 (e.g. 64, 128, 256), got {image_size}"
        )
    return steps


def _check_positive(**values: int) -> None:
    bad = [f"{k} must be at least 1, got {v}" for k, v in values.items() if v < 1]
    if bad:
        raise ConfigError("; ".join(bad))


class Affine(nn.Module):
    """FiLM: ``gamma(c) * h + beta(c)`` per channel, starting as the identity.

    Shape:
        - h: ``(B, C, H, W)``; c: ``(B, cond_dim)``; output: like ``h``.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Linear(cond_dim, channels)
        self.beta = nn.Linear(cond_dim, channels)
        # DF-GAN's init: gamma's weight 0 and bias 1, beta all 0, so every block starts unconditioned.
        nn.init.zeros_(self.gamma.weight)
        nn.init.ones_(self.gamma.bias)
        nn.init.zeros_(self.beta.weight)
        nn.init.zeros_(self.beta.bias)

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        return self.gamma(c)[:, :, None, None] * h + self.beta(c)[:, :, None, None]


class FusionBlock(nn.Module):
    """DF-GAN's deep fusion: [norm], affine, LeakyReLU, affine, LeakyReLU.

    With ``norm="batch"`` the first affine acts on normalized features: a conditional batch norm (de Vries
    et al. 2017, as in SN-GAN's and BigGAN's generators), which trains faster than DF-GAN's norm-free fusion.
    """

    def __init__(self, cond_dim: int, channels: int, norm: str = "none") -> None:
        super().__init__()
        self.norm = norm_layer(norm, channels)
        self.affine0 = Affine(cond_dim, channels)
        self.affine1 = Affine(cond_dim, channels)

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        h = F.leaky_relu(self.affine0(self.norm(h), c), SLOPE)
        return F.leaky_relu(self.affine1(h, c), SLOPE)


class UpBlock(nn.Module):
    """Upsample x2, then ``fuse -> conv3x3 -> fuse -> conv3x3`` plus a (1x1) shortcut.

    Shape:
        - x: ``(B, C_in, H, W)``; c: ``(B, cond_dim)``; output: ``(B, C_out, 2H, 2W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, norm: str = "none") -> None:
        super().__init__()
        self.fuse0 = FusionBlock(cond_dim, in_channels, norm)
        self.conv0 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.fuse1 = FusionBlock(cond_dim, out_channels, norm)
        self.conv1 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        h = self.conv1(self.fuse1(self.conv0(self.fuse0(x, c)), c))
        return self.shortcut(x) + h


@register("text2image_g")
class TextConditionalGenerator(nn.Module):
    """Noise + sentence embedding -> image, with text-and-noise FiLM in every up-block.

    Widths halve from ``8 * base_channels`` (capped at 8x) at 4x4 to ``base_channels`` at the output:
    64 px: ``8b (4) -> 8b (8) -> 4b (16) -> 2b (32) -> b (64)``.

    Args:
        latent_dim: Noise size (100 in DF-GAN and Reed et al.).
        text_dim: Sentence embedding size (384 for all-MiniLM-L6-v2).
        image_size: Output side: 16 to 1024, a power of two (64, 128, 256 in the recipes).
        base_channels: Width of the last block (DF-GAN's ``ngf``: 32 for 64/128 px, 32-64 for 256 px).
        cond_dim: Width of the shared condition MLP that feeds every affine layer.
        out_channels: Image channels.
        norm: ``none`` (DF-GAN) or ``batch`` / ``instance`` before each fusion block (conditional norm).
        text_start: Project the 4x4 start map from the noise-and-sentence code ``c`` rather than from the
            noise alone (DF-GAN). On the captioned-shapes demo it made each prompt's samples near-identical
            (the sentence drowned the noise), so it is off by default.

    Attributes:
        latent_dim, text_dim, image_size: as given (inference reads them).

    Shape:
        - noise: ``(B, latent_dim)``; text: ``(B, text_dim)``.
        - output: ``(B, out_channels, image_size, image_size)`` in ``[-1, 1]``.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        text_dim: int = 384,
        image_size: int = 64,
        base_channels: int = 32,
        cond_dim: int = 256,
        out_channels: int = 3,
        norm: str = "none",
        text_start: bool = False,
    ) -> None:
        super().__init__()
        check_norm(norm)
        steps = _steps(image_size)
        _check_positive(
            latent_dim=latent_dim, text_dim=text_dim, base_channels=base_channels, cond_dim=cond_dim,
            out_channels=out_channels,
        )  # fmt: skip
        self.latent_dim, self.text_dim, self.image_size = latent_dim, text_dim, image_size
        widths = [base_channels * min(2 ** (steps - i), 8) for i in range(steps + 1)]
        self.condition = nn.Sequential(
            nn.Linear(latent_dim + text_dim, cond_dim), nn.LeakyReLU(SLOPE), nn.Linear(cond_dim, cond_dim)
        )
        self.text_start = text_start
        self.project = nn.Linear(cond_dim if text_start else latent_dim, widths[0] * 16)
        self.blocks = nn.ModuleList(UpBlock(widths[i], widths[i + 1], cond_dim, norm) for i in range(steps))
        self.to_image = nn.Sequential(
            nn.LeakyReLU(SLOPE), nn.Conv2d(widths[-1], out_channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, noise: Tensor, text: Tensor) -> Tensor:
        if noise.dim() != 2 or noise.shape[1] != self.latent_dim:
            raise ValueError(f"expected noise of shape (B, {self.latent_dim}), got {tuple(noise.shape)}")
        if text.shape != (noise.shape[0], self.text_dim):
            raise ValueError(
                f"expected a text embedding of shape ({noise.shape[0]}, {self.text_dim}), "
                f"got {tuple(text.shape)}"
            )
        c = self.condition(torch.cat([noise, text.to(noise.dtype)], dim=1))  # (B, cond_dim)
        h = self.project(c if self.text_start else noise).view(noise.shape[0], -1, 4, 4)  # (B, 8b, 4, 4)
        for block in self.blocks:
            h = block(h, c)
        return self.to_image(h)


class DownBlock(nn.Module):
    """Residual stride-2 block: ``shortcut(x) + g * [conv4x4/2 -> lrelu -> conv3x3 -> lrelu](x)``.

    ``g`` is a learned scalar that starts at ``gain``: 0 (DF-GAN) starts D as its shortcut path, which is
    linear (1x1 convs and average pooling) and so cannot tell a circle from a square until ``g`` has grown.

    Shape:
        - ``(B, C_in, H, W)`` -> ``(B, C_out, H/2, W/2)``.
    """

    def __init__(self, in_channels: int, out_channels: int, gain: float = 0.0) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False),
            nn.LeakyReLU(SLOPE),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.LeakyReLU(SLOPE),
        )
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )
        self.gain = nn.Parameter(torch.full((1,), float(gain)))

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.shortcut(x), 2) + self.gain * self.residual(x)


@register("text2image_d")
class TextConditionalDiscriminator(nn.Module):
    """(image, sentence embedding) -> one logit: does the image look real *and* match the sentence?

    Args:
        text_dim: Sentence embedding size.
        image_size: Input side (a power of two, 16 to 1024).
        base_channels: Width of the first conv (DF-GAN's ``ndf``); widths double per block up to 8x.
        conditioning: ``concat`` (DF-GAN / Reed et al.) or ``projection`` (Miyato & Koyama 2018).
        in_channels: Image channels.
        text_channels: > 0 first compresses the sentence to this size (linear + LeakyReLU), as Reed et al.
            do (128); 0 joins the embedding as it is, as DF-GAN does.
        embed_dim: > 0 adds the heads of :meth:`image_embedding` and :meth:`text_embedding` (a joint
            space of this size, for a contrastive loss); 0: none.
        residual_gain: Starting value of every block's residual gain: 0 as DF-GAN, or 1. On the
            captioned-shapes demo, a shape classifier on D's body reached 92% after 400 steps from 1 and
            64% from 0.

    Shape:
        - image: ``(B, in_channels, image_size, image_size)``; text: ``(B, text_dim)``.
        - output: ``(B,)`` logits.
    """

    def __init__(
        self,
        text_dim: int = 384,
        image_size: int = 64,
        base_channels: int = 32,
        conditioning: str = "concat",
        in_channels: int = 3,
        text_channels: int = 0,
        embed_dim: int = 0,
        residual_gain: float = 0.0,
    ) -> None:
        super().__init__()
        steps = _steps(image_size)
        _check_positive(text_dim=text_dim, base_channels=base_channels, in_channels=in_channels)
        if text_channels < 0:
            raise ConfigError(f"text_channels must be 0 (no compression) or more, got {text_channels}")
        if embed_dim < 0:
            raise ConfigError(f"embed_dim must be 0 (no embedding heads) or more, got {embed_dim}")
        if conditioning not in CONDITIONINGS:
            raise ConfigError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, got {conditioning!r}")
        self.text_dim, self.image_size, self.conditioning = text_dim, image_size, conditioning
        widths = [base_channels * min(2**i, 8) for i in range(steps + 1)]
        self.from_image = nn.Conv2d(in_channels, widths[0], 3, 1, 1)
        self.blocks = nn.Sequential(
            *(DownBlock(widths[i], widths[i + 1], residual_gain) for i in range(steps))
        )
        top = widths[-1]
        self.compress = (
            nn.Sequential(nn.Linear(text_dim, text_channels), nn.LeakyReLU(SLOPE)) if text_channels else None
        )
        joined = text_channels or text_dim
        if conditioning == "concat":
            self.joint = nn.Sequential(
                nn.Conv2d(top + joined, 2 * base_channels, 3, 1, 1, bias=False),
                nn.LeakyReLU(SLOPE),
                nn.Conv2d(2 * base_channels, 1, 4, 1, 0, bias=False),
            )
        else:
            self.psi = nn.Linear(top, 1)
            self.embed = nn.Linear(joined, top, bias=False)
        self.embed_dim = embed_dim
        if embed_dim:
            self.image_head = nn.Linear(top * 16, embed_dim)
            self.text_head = nn.Linear(text_dim, embed_dim)

    def features(self, image: Tensor) -> Tensor:
        """The body's 4x4 features ``phi(x)``. Shape: ``(B, C, S, S)`` -> ``(B, 8b, 4, 4)``."""
        return self.blocks(self.from_image(image))

    def logits(self, features: Tensor, text: Tensor) -> Tensor:
        """Score features against sentences. Shape: ``(B, 8b, 4, 4)``, ``(B, text_dim)`` -> ``(B,)``."""
        text = text.to(features.dtype)
        if self.compress is not None:
            text = self.compress(text)  # (B, text_channels)
        if self.conditioning == "concat":
            tiled = text[:, :, None, None].expand(-1, -1, *features.shape[2:])  # (B, T, 4, 4)
            return self.joint(torch.cat([features, tiled], dim=1)).flatten(1).squeeze(1)
        pooled = F.leaky_relu(features, SLOPE).sum(dim=(2, 3))  # (B, 8b)
        return self.psi(pooled).squeeze(1) + (self.embed(text) * pooled).sum(1)

    def image_embedding(self, features: Tensor) -> Tensor:
        """The image in the joint space (unnormalised), for a contrastive loss.

        Shape: ``(B, 8b, 4, 4)`` (:meth:`features`) -> ``(B, embed_dim)``.

        Raises:
            ValueError: D was built without embedding heads (``embed_dim=0``).
        """
        self._check_heads()
        # From the whole 4x4 map, not its pooled sum: where parts sit tells shapes apart.
        return self.image_head(F.leaky_relu(features, SLOPE).flatten(1))

    def text_embedding(self, text: Tensor) -> Tensor:
        """The sentence in the joint space (unnormalised). Shape: ``(N, text_dim)`` -> ``(N, embed_dim)``.

        Raises:
            ValueError: D was built without embedding heads (``embed_dim=0``).
        """
        self._check_heads()
        return self.text_head(text.to(self.text_head.weight.dtype))

    def _check_heads(self) -> None:
        if not self.embed_dim:
            raise ValueError("this discriminator has no embedding heads; build it with embed_dim > 0")

    def forward(self, image: Tensor, text: Tensor) -> Tensor:
        if text.shape != (image.shape[0], self.text_dim):
            raise ValueError(
                f"expected a text embedding of shape ({image.shape[0]}, {self.text_dim}), "
                f"got {tuple(text.shape)}"
            )
        return self.logits(self.features(image), text)
