"""The classic GANs: unconditional (MLP GAN, DCGAN), class-conditional (cGAN) and InfoGAN.

Minimax game (Goodfellow et al. 2014, eq. 1): ``min_G max_D E_x[log D(x)] + E_z[log(1 - D(G(z)))]``,
trained with the non-saturating G loss by default; any kind of :mod:`i2i.losses` works (``lsgan``; ``wgan``
with the gradient penalty ``gp_weight`` * GP, Gulrajani et al. 2017, and ``train.n_critic`` = 5).

- ``cgan`` (Mirza & Osindero 2014): G and D both see the class ``y``: ``D(x, y)``, ``G(z, y)``; the fakes
  of a batch take the real images' labels, so D sees the data's class frequencies on both sides.
- ``infogan`` (Chen et al. 2016, eq. 5): ``min_{G,Q} max_D V(D, G) - lambda L_I(G, Q)`` with
  ``L_I = E_{c, x~G(z,c)}[log Q(c | x)]`` (+ H(c), a constant), a variational lower bound of the mutual
  information I(c; G(z, c)). Q shares D's body (the paper's practice), so Q trains in the D phase on
  detached fakes and G in the G phase. Codes: one categorical ``c ~ Cat(K)`` (cross-entropy) and continuous
  ``c ~ U(-1, 1)`` (Gaussian of unit variance: ``(c - mu)^2 / 2``, weighted ``info_continuous_weight``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from i2i import nets
from i2i.config import Config, NetConfig, register_method_config
from i2i.data.labelled import labelled_datasets
from i2i.errors import ConfigError
from i2i.losses import GAN_KINDS, d_loss, g_loss, gradient_penalty
from i2i.nets.layers import init_weights
from i2i.train.diagnostics import HealthMonitor, d_stats, diversity

VARIANTS = ("gan", "cgan", "infogan")
SAMPLE_COLUMNS = 8


@register_method_config("gan")
@dataclass
class GANConfig:
    """The ``model:`` section of a classic GAN config (``method: gan``)."""

    variant: str = "gan"  # gan (unconditional) | cgan (class-conditional) | infogan
    generator: NetConfig = field(default_factory=lambda: NetConfig("dcgan_g", {"base_channels": 64}))
    discriminator: NetConfig = field(default_factory=lambda: NetConfig("dcgan_d", {"base_channels": 64}))
    image_size: int = 64
    channels: int = 3
    latent_dim: int = 100  # noise z ~ N(0, I)
    num_classes: int = 0  # classes of the data (cgan conditions on them; checked against the data)
    code_categories: int = 0  # infogan: categories of the categorical code (10 for MNIST digits)
    code_continuous: int = 0  # infogan: continuous codes ~ U(-1, 1) (2 for MNIST: width, slant)
    gan_loss: str = "vanilla"  # vanilla (non-saturating) | lsgan | wgan | hinge
    gp_weight: float = 0.0  # WGAN-GP lambda (10 in the paper); 0 disables the gradient penalty
    info_weight: float = 1.0  # InfoGAN lambda
    info_continuous_weight: float = 0.1  # extra factor for the continuous codes' term
    init: str = "normal"  # DCGAN: all weights N(0, 0.02)
    init_gain: float = 0.02
    sample_seed: int = 0  # seed of the fixed noise behind the sample grids
    health_warnings: bool = True  # warn on mode collapse / an overpowering D (the stats are always logged)


def _check(cfg: GANConfig) -> None:
    if cfg.variant not in VARIANTS:
        raise ConfigError(
            f"model.variant: unknown variant {cfg.variant!r}; choose one of {', '.join(VARIANTS)}"
        )
    if cfg.gan_loss not in GAN_KINDS:
        raise ConfigError(
            f"model.gan_loss: unknown kind {cfg.gan_loss!r}; choose one of {', '.join(GAN_KINDS)}"
        )
    if cfg.variant == "cgan" and cfg.num_classes < 2:
        raise ConfigError("model.num_classes: the cgan variant needs the number of classes (at least 2)")
    if cfg.variant == "infogan" and (cfg.code_categories < 2 and cfg.code_continuous < 1):
        raise ConfigError(
            "model.code_categories: the infogan variant needs a categorical code of at least 2 categories "
            "and/or model.code_continuous >= 1"
        )
    if cfg.code_categories == 1:
        raise ConfigError("model.code_categories: a categorical code needs at least 2 categories (0: none)")


def _build(spec: NetConfig, path: str, **fixed: Any) -> tuple[nn.Module, dict[str, Any]]:
    """Build a registered net, naming the config path on errors; ``fixed`` args come from the method."""
    clash = sorted(set(fixed) & set(spec.args))
    if clash:
        raise ConfigError(f"{path}.args.{clash[0]}: set by the method from the model section (model.*)")
    args = {**spec.args, **fixed}
    try:
        return nets.build(spec.name, **args), args
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


class GAN:
    """A noise-to-image GAN over a generator ``g`` and a discriminator ``d`` (with Q head for InfoGAN).

    Batches are ``{"image": (B, C, S, S) in [-1, 1], "label": (B,)}``.
    """

    groups = {"d": ("d",), "g": ("g",)}
    ema_nets = ("g",)

    def __init__(self, cfg: GANConfig) -> None:
        _check(cfg)
        self.cfg = cfg
        self.conditional, self.info = cfg.variant == "cgan", cfg.variant == "infogan"
        classes = cfg.num_classes if self.conditional else 0
        codes = (cfg.code_categories, cfg.code_continuous) if self.info else (0, 0)
        common = {"image_size": cfg.image_size, "num_classes": classes}
        common.update(code_categories=codes[0], code_continuous=codes[1])
        g, g_args = _build(
            cfg.generator, "model.generator", latent_dim=cfg.latent_dim, out_channels=cfg.channels, **common
        )
        d, d_args = _build(cfg.discriminator, "model.discriminator", in_channels=cfg.channels, **common)
        if cfg.gp_weight > 0 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in d.modules()):
            raise ConfigError(
                "model.gp_weight: the gradient penalty is per sample, which batch norm breaks; set "
                "model.discriminator.args.norm=none (or instance)"
            )
        self.nets = {
            "g": init_weights(g, cfg.init, cfg.init_gain),
            "d": init_weights(d, cfg.init, cfg.init_gain),
        }
        self.specs = {
            "g": {"name": cfg.generator.name, "args": g_args, "value_range": [-1, 1]},
            "d": {"name": cfg.discriminator.name, "args": d_args, "value_range": [-1, 1]},
        }
        self.monitor = HealthMonitor(cfg.gan_loss, enabled=cfg.health_warnings)

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        real = batch["image"]
        n, device = real.shape[0], real.device
        # Global RNG on the batch's device: a resumed run restores it, so it draws the same z.
        noise = torch.randn(n, self.cfg.latent_dim, device=device)
        out: dict[str, Tensor] = {}
        if self.info:
            if self.cfg.code_categories:
                out["code_cat"] = torch.randint(self.cfg.code_categories, (n,), device=device)
            if self.cfg.code_continuous:
                out["code_cont"] = torch.rand(n, self.cfg.code_continuous, device=device) * 2 - 1
        z = self.nets["g"].compose_latent(noise, out.get("code_cat"), out.get("code_cont"))
        out["fake"] = self.nets["g"](z, self._labels(batch))
        return out

    def _labels(self, batch: Mapping[str, Any]) -> Tensor | None:
        return batch["label"] if self.conditional else None

    def _info_loss(self, out: Mapping[str, Tensor], cat_logits: Tensor, cont: Tensor) -> Tensor:
        """``-lambda L_I``: the negative log-likelihood of the codes under Q, weighted."""
        loss = cat_logits.new_zeros(())
        if "code_cat" in out:
            loss = loss + F.cross_entropy(cat_logits.float(), out["code_cat"])
        if "code_cont" in out:
            nll = 0.5 * (cont.float() - out["code_cont"]).square().sum(1).mean()
            loss = loss + self.cfg.info_continuous_weight * nll
        return self.cfg.info_weight * loss

    def d_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        real, labels, d = batch["image"], self._labels(batch), self.nets["d"]
        fake = out["fake"].detach()  # the D update must not push gradients into G
        real_logits = d(real, labels)
        terms: dict[str, Tensor] = {}
        if self.info:
            fake_logits, cat_logits, cont = d.forward_info(fake)
            terms["d_info"] = self._info_loss(out, cat_logits, cont)  # trains Q (and D's shared body)
            if "code_cat" in out:
                terms["stat/q_accuracy"] = (cat_logits.argmax(1) == out["code_cat"]).float().mean().detach()
        else:
            fake_logits = d(fake, labels)
        terms["d_gan"] = d_loss(self.cfg.gan_loss, real_logits, fake_logits)
        if self.cfg.gp_weight > 0:
            critic = (lambda x: d(x, labels)) if self.conditional else d
            terms["d_gp"] = self.cfg.gp_weight * gradient_penalty(critic, real, fake)
        stats = {**d_stats(self.cfg.gan_loss, real_logits, fake_logits), **diversity(fake, real)}
        self.monitor.observe(stats)
        return {**terms, **stats}

    def g_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        fake, d = out["fake"], self.nets["d"]
        if self.info:
            fake_logits, cat_logits, cont = d.forward_info(fake)
            return {
                "g_gan": g_loss(self.cfg.gan_loss, fake_logits),
                "g_info": self._info_loss(out, cat_logits, cont),
            }
        return {"g_gan": g_loss(self.cfg.gan_loss, d(fake, self._labels(batch)))}

    def sample_inputs(self, device: torch.device) -> tuple[Tensor, Tensor | None, int]:
        """The sample grid's fixed ``z``, labels and row count, drawn from ``model.sample_seed``.

        One row per class (cGAN) or per categorical code value (InfoGAN, continuous codes at 0; with only
        continuous codes, rows sweep the first over [-1, 1]), else 8 rows; a column shares its noise.
        """
        cfg, cols = self.cfg, SAMPLE_COLUMNS
        generator = torch.Generator().manual_seed(cfg.sample_seed)
        rows = cols
        if self.conditional:
            rows = cfg.num_classes
        elif self.info and cfg.code_categories:
            rows = cfg.code_categories
        if self.conditional or self.info:
            noise = torch.randn(cols, cfg.latent_dim, generator=generator).repeat(rows, 1)
        else:
            noise = torch.randn(rows * cols, cfg.latent_dim, generator=generator)
        row = torch.arange(rows).repeat_interleave(cols)  # (rows * cols,)
        cat = row if self.info and cfg.code_categories else None
        cont = None
        if self.info and cfg.code_continuous:
            cont = torch.zeros(rows * cols, cfg.code_continuous)
            if not cfg.code_categories:
                cont[:, 0] = torch.linspace(-1, 1, rows)[row]
        z = self.nets["g"].compose_latent(noise, cat, cont)
        return z.to(device), (row.to(device) if self.conditional else None), rows

    def samples(self, batch: Mapping[str, Any], nets: Mapping[str, nn.Module]) -> dict[str, Tensor]:
        z, labels, rows = self.sample_inputs(batch["image"].device)
        images = nets["g"](z, labels).unflatten(0, (rows, SAMPLE_COLUMNS))  # (rows, cols, C, H, W)
        # sample_grid puts one entry per column: column j holds the j-th noise of every row.
        return {f"z{j}": images[:, j] for j in range(SAMPLE_COLUMNS)}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass

    @staticmethod
    def datasets(cfg: Config) -> tuple[Dataset, Dataset]:
        """The training and held-out sets of ``cfg.data`` (:mod:`i2i.data.labelled`), sized for the model."""
        model = cfg.model
        return labelled_datasets(
            cfg.data,
            image_size=model.image_size,
            channels=model.channels,
            num_classes=model.num_classes,
            seed=cfg.seed,
        )
