"""CycleGAN (Zhu et al. 2017): unpaired translation with two generators, two discriminators and cycles.

Names map to the paper: ``g_ab`` is G: X -> Y, ``g_ba`` is F: Y -> X, ``d_b`` is D_Y (judges domain B),
``d_a`` is D_X (judges domain A). (The reference code calls them G_A, G_B, D_A = D_Y, D_B = D_X.)

Objective (paper eq. 3 plus the identity term of §5.2):
    L = L_GAN(G, D_Y) + L_GAN(F, D_X) + λ_A ||F(G(a)) - a||_1 + λ_B ||G(F(b)) - b||_1
        + λ_idt (λ_B ||G(b) - b||_1 + λ_A ||F(a) - a||_1)
with LSGAN adversarial losses by default, λ_A = λ_B = 10 and λ_idt = 0.5, as in the reference. Each D
is trained on a history of 50 fakes (:class:`~i2i.train.pool.ImagePool`) and its loss is halved.

The ``discogan`` preset (Kim et al. 2017) is the same objective with encoder-decoder generators, the BCE
("vanilla") adversarial loss, an L2 reconstruction and no identity term.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn
from torch.utils.data import Dataset

from i2i.config import Config, NetConfig, register_method_config
from i2i.data.synthetic_domains import SyntheticUnpairedDataset
from i2i.data.unpaired import UnpairedDataset
from i2i.errors import ConfigError
from i2i.losses import GAN_KINDS, PIXEL_LOSSES, d_loss, g_loss, pixel_loss
from i2i.train.method import build_net, train_and_test_sets
from i2i.train.pool import ImagePool


@register_method_config("cyclegan")
@dataclass
class CycleGANConfig:
    """The ``model:`` section of a CycleGAN config."""

    generator: NetConfig = field(
        default_factory=lambda: NetConfig("resnet_9blocks", {"base_channels": 64, "norm": "instance"})
    )
    discriminator: NetConfig = field(
        default_factory=lambda: NetConfig(
            "patchgan", {"base_channels": 64, "num_layers": 3, "norm": "instance"}
        )
    )
    channels_a: int = 3
    channels_b: int = 3
    gan_loss: str = "lsgan"
    cycle_loss: str = "l1"  # l1 (CycleGAN) | l2 (DiscoGAN) | charbonnier
    lambda_a: float = 10.0  # weight of the A -> B -> A cycle
    lambda_b: float = 10.0  # weight of the B -> A -> B cycle
    lambda_identity: float = 0.5  # relative to lambda_a / lambda_b; 0 disables
    pool_size: int = 50
    init: str = "normal"
    init_gain: float = 0.02


class CycleGAN:
    """CycleGAN over ``g_ab``, ``g_ba``, ``d_a``, ``d_b``.

    Batches are ``{"a": (B, C_a, H, W), "b": (B, C_b, H, W)}`` in [-1, 1], unpaired.
    """

    # One optimizer over both generators and one over both discriminators, as in the reference.
    groups = {"d": ("d_a", "d_b"), "g": ("g_ab", "g_ba")}
    ema_nets = ("g_ab", "g_ba")

    def __init__(self, cfg: CycleGANConfig) -> None:
        if cfg.gan_loss not in GAN_KINDS:
            raise ConfigError(
                f"model.gan_loss: unknown kind {cfg.gan_loss!r}; choose one of {', '.join(GAN_KINDS)}"
            )
        if cfg.cycle_loss not in PIXEL_LOSSES:
            raise ConfigError(
                f"model.cycle_loss: unknown kind {cfg.cycle_loss!r}; choose {', '.join(PIXEL_LOSSES)}"
            )
        if cfg.lambda_identity and cfg.channels_a != cfg.channels_b:
            raise ConfigError(
                "model.lambda_identity must be 0 when the domains have different channel counts"
            )
        self.cfg = cfg
        ca, cb = cfg.channels_a, cfg.channels_b
        init = {"init": cfg.init, "init_gain": cfg.init_gain}
        g, d = (cfg.generator, "model.generator"), (cfg.discriminator, "model.discriminator")
        built = {
            "g_ab": (g, build_net(*g, **init, in_channels=ca, out_channels=cb)),
            "g_ba": (g, build_net(*g, **init, in_channels=cb, out_channels=ca)),
            "d_a": (d, build_net(*d, **init, in_channels=ca)),
            "d_b": (d, build_net(*d, **init, in_channels=cb)),
        }
        self.nets = {name: net for name, (_, (net, _)) in built.items()}
        self.specs = {
            name: {"name": spec.name, "args": args, "value_range": [-1, 1]}
            for name, ((spec, _), (_, args)) in built.items()
        }
        self.specs["g_ab"]["direction"], self.specs["g_ba"]["direction"] = "AtoB", "BtoA"
        self.pool_a, self.pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        real_a, real_b = batch["a"], batch["b"]
        fake_b = self.nets["g_ab"](real_a)  # G(a)
        fake_a = self.nets["g_ba"](real_b)  # F(b)
        return {
            "fake_b": fake_b,
            "fake_a": fake_a,
            "rec_a": self.nets["g_ba"](fake_b),  # F(G(a))
            "rec_b": self.nets["g_ab"](fake_a),  # G(F(b))
        }

    def d_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        kind = self.cfg.gan_loss
        fake_b = self.pool_b.query(out["fake_b"])  # detached history of G's outputs
        fake_a = self.pool_a.query(out["fake_a"])
        d_a, d_b = self.nets["d_a"], self.nets["d_b"]
        return {
            "d_b": 0.5 * d_loss(kind, d_b(batch["b"]), d_b(fake_b)),  # D_Y
            "d_a": 0.5 * d_loss(kind, d_a(batch["a"]), d_a(fake_a)),  # D_X
        }

    def g_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        cfg, kind = self.cfg, self.cfg.gan_loss
        real_a, real_b = batch["a"], batch["b"]
        terms = {
            "g_ab_gan": g_loss(kind, self.nets["d_b"](out["fake_b"])),
            "g_ba_gan": g_loss(kind, self.nets["d_a"](out["fake_a"])),
            "cycle_a": cfg.lambda_a * pixel_loss(cfg.cycle_loss, out["rec_a"].float(), real_a.float()),
            "cycle_b": cfg.lambda_b * pixel_loss(cfg.cycle_loss, out["rec_b"].float(), real_b.float()),
        }
        if cfg.lambda_identity > 0:
            # G should leave images that are already in B alone, and F those in A (preserves colour).
            idt_b = self.nets["g_ab"](real_b)
            idt_a = self.nets["g_ba"](real_a)
            weight = cfg.lambda_identity
            terms["idt_b"] = weight * cfg.lambda_b * pixel_loss(cfg.cycle_loss, idt_b.float(), real_b.float())
            terms["idt_a"] = weight * cfg.lambda_a * pixel_loss(cfg.cycle_loss, idt_a.float(), real_a.float())
        return terms

    def samples(self, batch: Mapping[str, Any], nets: Mapping[str, nn.Module]) -> dict[str, Tensor]:
        fake_b = nets["g_ab"](batch["a"])
        fake_a = nets["g_ba"](batch["b"])
        return {
            "real_a": batch["a"],
            "fake_b": fake_b,
            "rec_a": nets["g_ba"](fake_b),
            "real_b": batch["b"],
            "fake_a": fake_a,
            "rec_b": nets["g_ab"](fake_a),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        device = next(self.nets["g_ab"].parameters()).device
        self.pool_a.load_state_dict(state["pool_a"], device)
        self.pool_b.load_state_dict(state["pool_b"], device)

    @staticmethod
    def datasets(cfg: Config) -> tuple[Dataset, Dataset]:
        """Training and test sets: ``trainA/ trainB/ testA/ testB/`` folders, or the synthetic domains."""
        data = cfg.data
        return train_and_test_sets(
            cfg,
            synthetic=lambda num, split, tf: SyntheticUnpairedDataset(
                num, data.synthetic.size, seed=cfg.seed, split=split, transform=tf
            ),
            folder=lambda split, tf: UnpairedDataset(
                data.root, split, transform=tf, direction=data.direction, serial=data.serial_batches
            ),
            example_root="datasets/horse2zebra",
        )
