"""SRGAN (Ledig et al. 2017) and ESRGAN (Wang et al. 2018): super-resolution with a GAN on the shared core.

Phase 1 ("SRResNet"): the generator alone, pixel loss ``L = ||G(LR) - HR||`` (MSE in the paper). Phase 2: the
perceptual loss of the paper (eq. 3), ``L = w_c * L_content + w_adv * L_adv (+ w_pix * L_pixel)``, with the
content loss on VGG19 features rescaled by 1/12.75 (``relu5_4``, "VGG54") and ``w_adv = 1e-3``; D learns
``max E[log D(HR)] + E[log(1 - D(G(LR)))]``. ESRGAN's changes are options: features before activation
(``conv5_4``) with L1, and the relativistic average discriminator (RaGAN), which judges whether a real
image is more realistic than the average fake (and vice versa) instead of real or fake in isolation.

Phase 1 is either a separate run (``discriminator: null``, recipe ``srresnet_div2k_x4``) whose checkpoint
initialises phase 2 (``pretrained``, recipe ``srgan_div2k_x4``, as the paper does), or the first
``pretrain_steps`` steps of one run (recipe ``esrgan_div2k_x4``). Images are in [0, 1] (the SR convention).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from i2i import nets
from i2i.config import Config, NetConfig, register_method_config
from i2i.data.sr import Degradation, sr_datasets
from i2i.errors import CheckpointError, ConfigError
from i2i.losses import GAN_KINDS, PIXEL_LOSSES, d_loss, g_loss, pixel_loss
from i2i.losses.perceptual import VGGFeatureLoss
from i2i.nets.layers import init_weights
from i2i.train.checkpoint import list_checkpoints


@register_method_config("srgan")
@dataclass
class SRGANConfig:
    """The ``model:`` section of an SRGAN / ESRGAN / SRResNet config."""

    generator: NetConfig = field(default_factory=lambda: NetConfig("srresnet", {"num_blocks": 16}))
    discriminator: NetConfig | None = field(default_factory=lambda: NetConfig("srgan_d", {}))  # null: no GAN
    scale: int = 4
    channels: int = 3
    pretrain_steps: int = 0  # phase 1 (pixel loss only) for the first N steps of this run
    pretrained: str = ""  # generator weights to start from: a run folder, checkpoint, exported model or .pth
    pixel_loss: str = "l2"  # l1 | l2 | charbonnier (phase 1, and phase 2 when pixel_weight > 0)
    pixel_weight: float = 0.0  # phase 2 (ESRGAN: 1e-2 with l1)
    content_weight: float = 1.0
    # Layer -> weight; empty means {relu5_4: 1.0}, the paper's VGG54 (a non-empty default would be merged
    # into a config's own choice rather than replaced by it).
    content_layers: dict[str, float] = field(default_factory=dict)
    content_criterion: str = "l2"  # l2 (SRGAN) | l1 (ESRGAN)
    content_feature_scale: float = 1 / 12.75  # SRGAN's rescaling of the VGG features
    vgg_weights: str = "imagenet"  # imagenet (verified download) | a path to vgg19-dcbb9e9d.pth | random
    adversarial_weight: float = 1e-3
    gan_loss: str = "vanilla"  # vanilla | lsgan | wgan | hinge
    relativistic: bool = False  # ESRGAN's relativistic average GAN
    init: str = "default"  # default (the nets' own) | normal | xavier | kaiming | orthogonal
    init_gain: float = 0.02


def relativistic_d_loss(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """RaGAN discriminator loss (ESRGAN eq. 1-2): real scored against the mean fake and vice versa.

    ``0.5 * (loss(C(x_r) - E[C(x_f)] is real) + loss(C(x_f) - E[C(x_r)] is fake))``; the 1/2 is ESRGAN's.
    """
    return 0.5 * d_loss(kind, real - fake.mean(), fake - real.mean())


def relativistic_g_loss(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """RaGAN generator loss: the discriminator's with the roles swapped, so G also learns from real images."""
    return 0.5 * d_loss(kind, fake - real.mean(), real - fake.mean())


class SRGAN:
    """SRGAN/ESRGAN over a generator ``g`` (LR -> HR) and an optional discriminator ``d``.

    Batches are ``{"lr": (B, C, h, w), "hr": (B, C, h * scale, w * scale)}`` in [0, 1]. The method counts
    training steps itself (a step is one or more ``d_step`` calls followed by ``g_step`` calls), so that the
    phase survives a resume through :meth:`state_dict`.
    """

    ema_nets = ("g",)

    def __init__(self, cfg: SRGANConfig) -> None:
        if cfg.gan_loss not in GAN_KINDS:
            raise ConfigError(f"model.gan_loss: {cfg.gan_loss!r}; choose one of {', '.join(GAN_KINDS)}")
        if cfg.pixel_loss not in PIXEL_LOSSES:
            kinds = ", ".join(PIXEL_LOSSES)
            raise ConfigError(f"model.pixel_loss: {cfg.pixel_loss!r}; choose one of {kinds}")
        if cfg.pretrain_steps < 0:
            raise ConfigError(f"model.pretrain_steps must be >= 0, got {cfg.pretrain_steps}")
        self.cfg = cfg
        g, g_args = _build(cfg.generator, "model.generator", cfg, in_channels=cfg.channels)
        if cfg.pretrained:
            _load_generator(g, cfg.generator.name, g_args, cfg.pretrained)
        self.nets: dict[str, nn.Module] = {"g": g}
        self.specs: dict[str, dict[str, Any]] = {
            "g": {"name": cfg.generator.name, "args": g_args, "value_range": [0, 1], "task": "upscale"}
        }
        self.content: VGGFeatureLoss | None = None
        if cfg.discriminator is not None:
            d, d_args = _build(cfg.discriminator, "model.discriminator", cfg, in_channels=cfg.channels)
            self.nets["d"] = d
            self.specs["d"] = {"name": cfg.discriminator.name, "args": d_args, "value_range": [0, 1]}
            if cfg.content_weight > 0:
                self.content = VGGFeatureLoss(
                    cfg.content_layers or {"relu5_4": 1.0},
                    weights=cfg.vgg_weights,
                    criterion=cfg.content_criterion,
                    feature_scale=cfg.content_feature_scale,
                )
        self.groups = {"d": ("d",) if "d" in self.nets else (), "g": ("g",)}
        self.steps = 0  # completed training steps (see the class docstring)
        self._after_g = False

    @property
    def adversarial(self) -> bool:
        """Whether the current step is in phase 2 (GAN) rather than phase 1 (pixel loss only)."""
        return "d" in self.nets and self.steps >= self.cfg.pretrain_steps

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        return {"sr": self.nets["g"](batch["lr"])}

    def d_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        if self._after_g:  # the first D call of a new step
            self.steps += 1
            self._after_g = False
        if not self.adversarial:
            return {}  # the Trainer leaves D alone this step
        d = self.nets["d"]
        real, fake = d(batch["hr"]), d(out["sr"].detach())  # detach: D's update must not reach G
        if self.cfg.relativistic:
            return {"d_gan": relativistic_d_loss(self.cfg.gan_loss, real, fake)}
        return {"d_gan": d_loss(self.cfg.gan_loss, real, fake)}

    def g_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        self._after_g = True
        cfg, sr, hr = self.cfg, out["sr"].float(), batch["hr"].float()
        if not self.adversarial:
            return {"g_pixel": pixel_loss(cfg.pixel_loss, sr, hr)}
        terms: dict[str, Tensor] = {}
        if cfg.pixel_weight > 0:
            terms["g_pixel"] = cfg.pixel_weight * pixel_loss(cfg.pixel_loss, sr, hr)
        if self.content is not None:
            self.content.to(sr.device)  # a frozen loss net, not one of the Trainer's nets
            terms["g_content"] = cfg.content_weight * self.content(out["sr"], batch["hr"])
        fake = self.nets["d"](out["sr"])
        if cfg.relativistic:
            real = self.nets["d"](batch["hr"]).detach()
            terms["g_gan"] = cfg.adversarial_weight * relativistic_g_loss(cfg.gan_loss, real, fake)
        else:
            terms["g_gan"] = cfg.adversarial_weight * g_loss(cfg.gan_loss, fake)
        return terms

    def samples(self, batch: Mapping[str, Any], nets: Mapping[str, nn.Module]) -> dict[str, Tensor]:
        sr = nets["g"](batch["lr"]).float().clamp(0, 1)
        bicubic = _bicubic(batch["lr"], self.cfg.scale)
        return {"bicubic": bicubic * 2 - 1, "output": sr * 2 - 1, "target": batch["hr"] * 2 - 1}

    def evaluation_batch(self, batch: Mapping[str, Any], nets: Mapping[str, nn.Module]) -> dict[str, Any]:
        """Super-resolved validation images and their ground truth, for the ``eval`` block's metrics.

        With ``eval: {metrics: [psnr, ssim], crop_border: <scale>}`` the Trainer logs the SR protocol's
        numbers (Y channel, border cut) as ``eval/psnr`` and ``eval/ssim``; FID/KID/LPIPS work too.
        """
        sr = nets["g"](batch["lr"]).float().clamp(0, 1)
        return {"fake": sr * 2 - 1, "real": batch["hr"].float() * 2 - 1, "paired": True}

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "after_g": self._after_g}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.steps, self._after_g = int(state["steps"]), bool(state["after_g"])

    @staticmethod
    def datasets(cfg: Config) -> tuple[Dataset, Dataset]:
        """Training crops and validation pairs (``data.root``/``train_split`` and ``test_split``)."""
        data, sr, scale = cfg.data, cfg.data.sr, cfg.model.scale
        degradation = Degradation(scale, sr.blur_sigma, sr.noise_sigma, sr.jpeg_quality)
        if sr.val_crop_size <= 0:
            raise ConfigError(
                "data.sr.val_crop_size must be > 0 (the sample grid batches the validation crops); measure "
                "whole images with `i2i upscale` and `i2i eval sr`"
            )
        val_crop = sr.val_crop_size
        if data.source == "synthetic":  # generated scenes are data.synthetic.size pixels wide
            val_crop = min(val_crop, data.synthetic.size // scale * scale)
        return sr_datasets(
            source=data.source,
            root=data.root,
            train_split=data.train_split,
            test_split=data.test_split,
            degradation=degradation,
            crop_size=data.crop_size,
            val_crop_size=val_crop,
            val_images=sr.val_images,
            lr_split=sr.lr_split,
            augment=data.flip,
            repeats=sr.repeats,
            synthetic=(data.synthetic.num_train, data.synthetic.num_test, data.synthetic.size),
            seed=cfg.seed,
        )


def _bicubic(lr: Tensor, scale: int) -> Tensor:
    """Bicubic upscaling of (B, C, h, w) in [0, 1]: the baseline every SR model has to beat."""
    return F.interpolate(lr.float(), scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


def _build(spec: NetConfig, path: str, cfg: SRGANConfig, **fixed: Any) -> tuple[nn.Module, dict[str, Any]]:
    """Build a net with the method's arguments (channels, scale), naming the config path on errors."""
    if path == "model.generator":
        fixed = {**fixed, "out_channels": cfg.channels, "scale": cfg.scale}
    clash = sorted(set(fixed) & set(spec.args))
    if clash:
        raise ConfigError(f"{path}.args.{clash[0]}: set by the method (model.scale / model.channels)")
    args = {**spec.args, **fixed}
    try:
        net = nets.build(spec.name, **args)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if cfg.init != "default":
        init_weights(net, cfg.init, cfg.init_gain)
    return net, args


def _load_generator(g: nn.Module, name: str, args: Mapping[str, Any], source: str) -> None:
    """Copy pretrained generator weights (``model.pretrained``) into ``g``, checking the architecture."""
    from i2i.hub import load_model_with_info

    path = Path(source)
    if path.is_dir():  # a run folder: its newest checkpoint
        found = list_checkpoints(path / "checkpoints") or list_checkpoints(path)
        if not found:
            raise ConfigError(f"model.pretrained: {path} holds no checkpoint; train that run first")
        path = found[-1]
    hint = "train it first (e.g. i2i train srresnet_div2k_x4) or set model.pretrained=''"
    try:
        model, info = load_model_with_info(path if path.exists() else source)
    except CheckpointError as exc:
        raise ConfigError(f"model.pretrained: {exc}; {hint}") from exc
    differs = {k: (v, info.args.get(k)) for k, v in args.items() if info.args.get(k, v) != v}
    if info.name != name or differs:
        raise ConfigError(
            f"model.pretrained: {path} holds a {info.name} with {info.args}, but model.generator is {name} "
            f"with {dict(args)}; use the same architecture"
        )
    g.load_state_dict(model.state_dict())
