"""Pix2Pix (Isola et al. 2017): paired translation with a conditional GAN plus an L1 term.

Objective (paper eq. 4): ``G* = arg min_G max_D L_cGAN(G, D) + λ L_L1(G)`` with
``L_cGAN = E[log D(x, y)] + E[log(1 - D(x, G(x)))]`` and ``L_L1 = E[||y - G(x)||_1]``, λ = 100.
D is a PatchGAN that sees the input and the output concatenated on channels; its loss is halved "to slow
down the rate at which D learns relative to G" (paper §3.3, reference code).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from i2i.config import Config, NetConfig, register_method_config
from i2i.data import PairedDataset, SyntheticPairedDataset
from i2i.errors import ConfigError
from i2i.losses import GAN_KINDS, d_loss, g_loss, l1_loss
from i2i.train.method import build_net, train_and_test_sets


@register_method_config("pix2pix")
@dataclass
class Pix2PixConfig:
    """The ``model:`` section of a Pix2Pix config."""

    generator: NetConfig = field(
        default_factory=lambda: NetConfig("unet_256", {"norm": "batch", "dropout": True, "base_channels": 64})
    )
    discriminator: NetConfig = field(
        default_factory=lambda: NetConfig("patchgan", {"num_layers": 3, "norm": "batch", "base_channels": 64})
    )
    in_channels: int = 3
    out_channels: int = 3
    gan_loss: str = "vanilla"  # vanilla | lsgan | wgan | hinge
    lambda_l1: float = 100.0
    init: str = "normal"  # normal | xavier | kaiming | orthogonal
    init_gain: float = 0.02


class Pix2Pix:
    """Pix2Pix over a U-Net generator ``g`` and a conditional PatchGAN ``d``.

    Batches are ``{"a": (B, C_in, H, W), "b": (B, C_out, H, W)}`` in [-1, 1]; ``g`` maps a -> b.
    """

    groups = {"d": ("d",), "g": ("g",)}
    ema_nets = ("g",)

    def __init__(self, cfg: Pix2PixConfig) -> None:
        if cfg.gan_loss not in GAN_KINDS:
            raise ConfigError(
                f"model.gan_loss: unknown kind {cfg.gan_loss!r}; choose one of {', '.join(GAN_KINDS)}"
            )
        self.cfg = cfg
        init = {"init": cfg.init, "init_gain": cfg.init_gain}
        channels = {"in_channels": cfg.in_channels, "out_channels": cfg.out_channels}
        g, g_args = build_net(cfg.generator, "model.generator", **init, **channels)
        d_in = cfg.in_channels + cfg.out_channels  # D sees the input and the output together
        d, d_args = build_net(cfg.discriminator, "model.discriminator", **init, in_channels=d_in)
        self.nets = {"g": g, "d": d}
        self.specs = {
            "g": {"name": cfg.generator.name, "args": g_args, "value_range": [-1, 1]},
            "d": {"name": cfg.discriminator.name, "args": d_args, "value_range": [-1, 1]},
        }

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        return {"fake_b": self.nets["g"](batch["a"])}

    def d_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        real_a, real_b = batch["a"], batch["b"]
        d = self.nets["d"]
        real_logits = d(torch.cat([real_a, real_b], dim=1))
        # Detach: the D update must not push gradients into G.
        fake_logits = d(torch.cat([real_a, out["fake_b"].detach()], dim=1))
        return {"d_gan": 0.5 * d_loss(self.cfg.gan_loss, real_logits, fake_logits)}

    def g_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        fake_b = out["fake_b"]
        fake_logits = self.nets["d"](torch.cat([batch["a"], fake_b], dim=1))
        return {
            "g_gan": g_loss(self.cfg.gan_loss, fake_logits),
            "g_l1": self.cfg.lambda_l1 * l1_loss(fake_b.float(), batch["b"].float()),
        }

    def samples(self, batch: Mapping[str, Any], nets: Mapping[str, nn.Module]) -> dict[str, Tensor]:
        return {"input": batch["a"], "output": nets["g"](batch["a"]), "target": batch["b"]}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass

    @staticmethod
    def datasets(cfg: Config) -> tuple[Dataset, Dataset]:
        """The training set (augmented) and the held-out set (deterministic) described by ``cfg.data``."""
        data = cfg.data
        return train_and_test_sets(
            cfg,
            synthetic=lambda num, split, tf: SyntheticPairedDataset(
                num, data.synthetic.size, seed=cfg.seed, split=split, transform=tf
            ),
            folder=lambda split, tf: PairedDataset(
                data.root, split, transform=tf, layout=data.layout, direction=data.direction
            ),
            example_root="datasets/facades",
        )
