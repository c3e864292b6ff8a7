"""The reference step optimises the same objective as i2i's methods, on the same nets.

If the emulation drifted (a loss weight, a missing term, another loss form), the speed ratios would
compare different work; these tests tie it to i2i's Pix2Pix and CycleGAN.
"""

from __future__ import annotations

import pytest
import torch

from i2i.bench.reference import GANLoss, ImagePool, reference_step
from i2i.config import load_config
from i2i.errors import ConfigError
from i2i.methods import build_method, first_items, method_class
from i2i.train import Trainer

PIX2PIX = [
    "model.generator.name=unet",
    "model.generator.args={num_downs: 5, base_channels: 8, norm: batch, dropout: true}",
    "model.discriminator.args={base_channels: 8, num_layers: 2, norm: batch}",
    "data.source=synthetic",
    "data.synthetic={num_train: 4, num_test: 1, size: 32}",
    "data.load_size=32",
    "data.crop_size=32",
    "data.batch_size=2",
]
CYCLEGAN = [
    "model.generator.name=resnet",
    "model.generator.args={base_channels: 4, num_blocks: 1, norm: instance}",
    "model.discriminator.args={base_channels: 4, num_layers: 2, norm: instance}",
    "data.source=synthetic",
    "data.synthetic={num_train: 4, num_test: 1, size: 32}",
    "data.load_size=32",
    "data.crop_size=32",
    "data.batch_size=2",
]
COMMON = ["data.num_workers=0", "train.fused_optimizer=false", "train.device=cpu"]


def setup(recipe: str, overrides: list[str], tmp_path) -> tuple[Trainer, dict, object, dict]:
    cfg = load_config(recipe, overrides=[*overrides, *COMMON, f"output_dir={tmp_path}"])
    train_set, _ = method_class(cfg.method).datasets(cfg)
    trainer = Trainer(cfg, build_method(cfg), train_set, progress=False)
    reference = build_method(cfg)  # the same initial weights (build_method seeds from cfg.seed)
    step = reference_step(cfg.method, reference.nets, cfg.model, cfg.optim, torch.device("cpu"))
    return trainer, reference.nets, step, first_items(train_set, cfg.data.batch_size)


def test_pix2pix_reference_step_makes_the_same_update_as_the_trainer(tmp_path) -> None:
    trainer, reference_nets, step, batch = setup("demo_pix2pix", PIX2PIX, tmp_path)
    for i in range(2):
        torch.manual_seed(7)  # the same dropout masks in both
        logs = trainer.train_step(iter([batch]))
        torch.manual_seed(7)
        losses = step(batch)
        assert float(losses["g"]) == pytest.approx(logs["g_gan"] + logs["g_l1"], rel=1e-4)
        assert float(losses["d"]) == pytest.approx(logs["d_gan"], rel=1e-4)
        if i > 0:  # Adam amplifies rounding differences of near-zero gradients: weights after one step only
            break
        # Adam's first step moves every weight by about lr (2e-4) whatever its gradient's size, so a
        # different objective shows everywhere; rounding flips a rare near-zero gradient's step only.
        for name, net in trainer.method.nets.items():
            ours = dict(net.named_parameters())
            for key, param in reference_nets[name].named_parameters():
                diff = (param - ours[key]).abs()
                assert (diff <= 1e-6).float().mean() > 0.999 and diff.max() <= 4e-4, f"{name}.{key}"


def test_cyclegan_reference_step_computes_the_same_losses(tmp_path) -> None:
    # The reference updates G before D, i2i D before G; with lr 0 the order does not matter.
    frozen = [*CYCLEGAN, "optim.g.lr=0", "optim.d.lr=0"]
    trainer, _, step, batch = setup("cyclegan_horse2zebra", frozen, tmp_path)
    logs = trainer.train_step(iter([batch]))
    losses = step(batch)
    g_terms = ("g_ab_gan", "g_ba_gan", "cycle_a", "cycle_b", "idt_a", "idt_b")
    assert float(losses["g"]) == pytest.approx(sum(logs[k] for k in g_terms), rel=1e-5)
    assert float(losses["d"]) == pytest.approx(logs["d_a"] + logs["d_b"], rel=1e-5)


def test_reference_pool_and_loss_behave_as_in_the_reference() -> None:
    pool = ImagePool(2)
    images = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(images[:2]), images[:2])  # filling: returns its input
    assert len(pool.images) == 2
    assert GANLoss("lsgan")(torch.ones(1, 1, 2, 2), True) == 0
    with pytest.raises(ConfigError, match="no 'hinge' loss to compare with"):
        GANLoss("hinge")
    with pytest.raises(ConfigError, match="no reference step for method 'gan'"):
        reference_step("gan", {}, None, {}, torch.device("cpu"))
