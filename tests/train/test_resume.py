"""Exact resume for every registered method: N steps straight == N/2 + resume + N/2, bit for bit.

Everything the Trainer saves is compared (nets, EMA, optimizers, schedulers, scaler, method state such as
image pools, RNG states, data position, counters), plus the logged losses step by step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
import torch

from i2i.config import load_config
from i2i.errors import CheckpointError
from i2i.methods import METHODS, build_method, first_items, method_class
from i2i.train import Trainer

# A recipe and overrides that make each method train a step in well under a second. A new method must
# add its entry here: exact resume is part of what every method promises.
TINY_CONFIGS: dict[str, tuple[str | None, list[str]]] = {
    "pix2pix": (
        "demo_pix2pix",
        [
            "model.generator.name=unet",
            "model.generator.args={num_downs: 5, base_channels: 8, norm: batch, dropout: true}",
            "model.discriminator.args={base_channels: 8, num_layers: 2, norm: batch}",
            "data.source=synthetic",
            "data.synthetic={num_train: 12, num_test: 4, size: 32}",
            "data.load_size=36",
            "data.crop_size=32",
            "data.batch_size=2",
        ],
    ),
    "cyclegan": (
        "cyclegan_horse2zebra",
        [
            "data.source=synthetic",
            "data.synthetic={num_train: 10, num_test: 4, size: 16}",
            "data.load_size=18",
            "data.crop_size=16",
            "data.batch_size=2",
            "model.generator.name=resnet",
            "model.generator.args={base_channels: 4, num_blocks: 1, norm: instance, dropout: true}",
            "model.discriminator.args={base_channels: 4, num_layers: 1, norm: instance}",
            "model.pool_size=3",  # the pools fill in the first half and mix history in the second
        ],
    ),
    "gan": (
        None,
        [
            "method=gan",
            "data.source=synthetic",
            "data.synthetic={num_train: 12, num_test: 4, size: 16}",
            "data.batch_size=2",
            "model.image_size=16",
            "model.channels=1",
            "model.latent_dim=8",
            "model.generator={name: dcgan_g, args: {base_channels: 4}}",
            "model.discriminator={name: dcgan_d, args: {base_channels: 4}}",
        ],
    ),
    "text2image": (
        None,
        [
            "method=text2image",
            "data.source=synthetic",
            "data.synthetic={num_train: 12, num_test: 4}",
            "data.batch_size=2",
            "model.image_size=16",
            "model.latent_dim=8",
            "model.generator={name: text2image_g, args: {base_channels: 4, cond_dim: 8, norm: batch}}",
            "model.discriminator={name: text2image_d, args: {base_channels: 4, text_channels: 4}}",
            # The trainable encoder (in D's optimizer) is the most state to restore; GAN-INT draws extra
            # noise in the G step. The frozen MiniLM path: tests/methods/test_text2image.py.
            "model.text_encoder={kind: trainable, args: {out_dim: 8, embed_dim: 4, hidden_dim: 8}}",
            "model.interpolation_weight=1.0",
        ],
    ),
    "srgan": (
        "srgan_div2k_x4",
        [
            "model.generator={name: srresnet, args: {base_channels: 4, num_blocks: 1}}",
            "model.discriminator={name: srgan_d, args: {base_channels: 4, pool_size: 2, hidden_dim: 8}}",
            "model.pretrained=",
            "model.pretrain_steps=1",  # the pixel-loss phase, then the GAN phase (its step count is resumed)
            "model.vgg_weights=random",
            "model.content_layers={relu1_2: 1.0}",
            "model.relativistic=true",
            "data.source=synthetic",
            "data.synthetic={num_train: 8, num_test: 2, size: 16}",
            "data.crop_size=16",
            "data.sr.val_crop_size=16",
            "data.batch_size=2",
            "eval.every=0",
        ],
    ),
}
COMMON = ["data.num_workers=0", "train.log_every=1", "train.sample_every=0", "train.save_every=0"]


def make_trainer(recipe: str | None, overrides: list[str]) -> Trainer:
    cfg = load_config(recipe, overrides=overrides)
    method = build_method(cfg)
    train_set, test_set = method_class(cfg.method).datasets(cfg)
    return Trainer(cfg, method, train_set, sample_batch=first_items(test_set, 2), progress=False)


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """Nested equality with tensors compared bitwise."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, Mapping):
        assert isinstance(b, Mapping) and set(a) == set(b), f"{path}: keys {set(a) ^ set(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}/{i}")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def final_state(trainer: Trainer) -> dict[str, Any]:
    state = trainer.state_dict()
    del state["config"]  # differs in the run name only
    return state


def test_every_method_has_a_tiny_config() -> None:
    missing = sorted(set(METHODS) - set(TINY_CONFIGS))
    assert not missing, f"add a tiny config for {missing} to TINY_CONFIGS in {__file__}"


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
@pytest.mark.parametrize(
    ("steps", "extra"),
    [
        (6, []),
        (2, ["train.ema_decay=0.9", "train.n_critic=2"]),
        (4, ["train.ema_decay=0.9", "train.grad_accum=2"]),  # G's forward recomputed, not shared
    ],
)
def test_resume_is_bitwise_exact(name: str, steps: int, extra: list[str], tmp_path) -> None:
    if name not in METHODS:
        pytest.skip(f"method {name!r} is not registered in this version")
    recipe, tiny = TINY_CONFIGS[name]
    base = [*tiny, *COMMON, *extra, f"output_dir={tmp_path}", f"train.max_steps={steps}"]
    straight = make_trainer(recipe, [*base, "name=straight"])
    straight.fit()

    make_trainer(recipe, [*base, "name=split"]).fit(stop_at=steps // 2)
    torch.manual_seed(1234)  # disturb the global RNG, as a new process would: resume must restore it
    resumed = make_trainer(recipe, [*base, "name=split"])
    resumed.fit(resume="auto")

    assert resumed.step == steps
    assert_same(final_state(straight), final_state(resumed))
    logs = [
        [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        for run in ("straight", "split")
    ]
    assert logs[0] == logs[1] and len(logs[0]) == steps


def test_resuming_with_a_changed_optimizer_is_refused_then_allowed(tmp_path) -> None:
    recipe, tiny = TINY_CONFIGS["pix2pix"]
    base = [*tiny, *COMMON, f"output_dir={tmp_path}", "name=run", "train.max_steps=4"]
    make_trainer(recipe, base).fit(stop_at=2)

    changed = [*base, "optim.g.lr=0.001", "data.batch_size=4"]
    with pytest.raises(CheckpointError) as err:
        make_trainer(recipe, changed).fit(resume="auto")
    message = str(err.value)
    assert "cannot resume: the checkpoint was trained with a different" in message
    assert "optim.g.lr (0.0002 in the checkpoint, 0.001 now)" in message
    assert "data.batch_size (2 in the checkpoint, 4 now)" in message
    assert "train.allow_config_change=true" in message

    allowed = make_trainer(recipe, [*base, "optim.g.lr=0.001", "train.allow_config_change=true"])
    allowed.resume("auto")
    assert allowed.step == 2
    group = allowed.optimizers["g"].param_groups[0]
    assert group["initial_lr"] == 0.001  # the new setting wins over the one saved with the optimizer
    assert allowed.schedulers["g"].base_lrs == [0.001]
    assert allowed.optimizers["d"].param_groups[0]["initial_lr"] == 0.0002


def test_settings_that_do_not_matter_to_the_state_may_change(tmp_path) -> None:
    recipe, tiny = TINY_CONFIGS["pix2pix"]
    base = [*tiny, *COMMON, f"output_dir={tmp_path}", "name=run"]
    make_trainer(recipe, [*base, "train.max_steps=2"]).fit()
    longer = make_trainer(recipe, [*base, "train.max_steps=3", "train.log_every=5", "train.keep_last=1"])
    assert longer.fit(resume="auto").step == 3
