"""The text-to-image GAN on the core: matching-aware losses, encoders, resume, recipes, convergence."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.cli import main
from i2i.config import load_config
from i2i.data.images import tensor_to_image
from i2i.data.synthetic_captions import heldout_prompts, measure
from i2i.errors import ConfigError
from i2i.infer.text2image import TextToImage
from i2i.losses import contrastive_loss, d_loss, matching_aware_penalty
from i2i.methods import TextToImageGAN, build_method, first_items, train
from i2i.train import Trainer

os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")  # the sentence encoder loads from its wheel, offline

TRAINABLE = "model.text_encoder={kind: trainable, args: {out_dim: 8, embed_dim: 4, hidden_dim: 8}}"
CONTRASTIVE = (
    "model.discriminator={name: text2image_d, args: {base_channels: 4, embed_dim: 6, residual_gain: 1.0}}",
    "model.contrastive_weight=2.0",
    "model.contrastive_queue=6",
)


def tiny(tmp_path: Path, *extra: str, name: str = "tiny"):
    return load_config(
        None,
        overrides=[
            "method=text2image",
            "model.image_size=16",
            "model.latent_dim=8",
            "model.generator={name: text2image_g, args: {base_channels: 4, cond_dim: 8}}",
            "model.discriminator={name: text2image_d, args: {base_channels: 4}}",
            "data.source=synthetic",
            "data.synthetic={num_train: 12, num_test: 4}",
            "data.batch_size=4",
            "data.num_workers=0",
            "train.log_every=1",
            "train.sample_every=0",
            "train.save_every=0",
            f"output_dir={tmp_path}",
            f"name={name}",
            *extra,
        ],
    )


def setup(cfg):
    method = build_method(cfg)
    train_set, test_set = TextToImageGAN.datasets(cfg)
    return method, train_set, test_set


# ----------------------------------------------------------------------------- building


def test_specs_record_the_text_encoder_for_inference(tmp_path: Path) -> None:
    method, train_set, _ = setup(tiny(tmp_path))
    spec = method.specs["g"]
    assert list(method.specs) == ["g", "d"]  # g first: the default model of load_model
    assert spec["task"] == "text2image"
    assert spec["text_encoder"] == {"kind": "sentence_transformer", "name": "all-MiniLM-L6-v2", "dim": 384}
    assert spec["args"]["text_dim"] == method.specs["d"]["args"]["text_dim"] == 384
    assert method.groups == {"d": ("d",), "g": ("g",)}
    assert train_set[0]["embedding"].shape == (384,)  # cached sentence embeddings ride along with items


def test_the_trainable_encoder_is_saved_and_trained_with_d(tmp_path: Path) -> None:
    method, train_set, _ = setup(tiny(tmp_path, TRAINABLE))
    assert list(method.specs) == ["g", "d", "text"] and method.specs["text"]["name"] == "char_gru"
    assert method.specs["g"]["text_encoder"] == {"kind": "trainable", "net": "text", "dim": 8}
    assert method.groups["d"] == ("d", "text")
    assert train_set[0]["tokens"].dtype == torch.int64


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.gan_loss=bce"], "model.gan_loss: unknown kind 'bce'"),
        (["model.regularizer=gp"], "model.regularizer: unknown 'gp'"),
        (["model.text_encoder.kind=bert"], "model.text_encoder.kind: unknown 'bert'"),
        (["model.text_encoder.args={out_dim: 4}"], "model.text_encoder.args: only the trainable encoder"),
        (["model.interpolation_beta=2"], "model.interpolation_beta must be between 0 and 1"),
        (["model.contrastive_weight=-1"], "model.contrastive_weight must be 0"),
        (["model.contrastive_temperature=0"], "model.contrastive_temperature must be positive"),
        (["model.contrastive_queue=-1"], "model.contrastive_queue must be 0"),
        (["model.contrastive_weight=1"], "model.contrastive_weight: the contrastive loss needs D's"),
        (["model.text_encoder.name=/no/such/model"], "model.text_encoder.name: '/no/such/model' is neither"),
        (
            ["model.generator={name: text2image_g, args: {text_dim: 3}}"],
            "model.generator.args.text_dim: set by",
        ),
        (["model.image_size=24"], "model.generator: .*power of two"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_method(tiny(tmp_path, *overrides))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.batch_size=1"], "data.batch_size: the matching-aware loss pairs each image"),
        (["data.source=folder"], "data.root: no caption folder given"),
        (["data.source=folder", "data.root=x", "data.preprocess=crop"], "data.preprocess: 'crop'"),
        (["data.source=mnist"], "data.source: unknown source 'mnist'"),
    ],
)
def test_data_errors_name_the_key(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TextToImageGAN.datasets(tiny(tmp_path, TRAINABLE, *overrides))


# ----------------------------------------------------------------------------- the losses


def test_d_loss_is_reeds_matching_aware_loss(tmp_path: Path) -> None:
    """L_D = L_real(D(x, e)) + (L_fake(D(G(z, e), e)) + L_fake(D(x, e_mis))) / 2, e_mis the batch rolled."""
    cfg = tiny(tmp_path, TRAINABLE, "model.gan_loss=vanilla", "model.regularizer=none")
    method, train_set, _ = setup(cfg)
    batch = first_items(train_set, 4)
    out = method.forward(batch)
    terms = method.d_step(batch, out)
    d, text = method.nets["d"], method._text(batch)
    real, fake = d(batch["image"], text), d(out["fake"], text)
    mismatch = d(batch["image"], text.roll(1, dims=0))
    expected = torch.nn.functional.softplus(-real).mean() + 0.5 * (
        torch.nn.functional.softplus(fake).mean() + torch.nn.functional.softplus(mismatch).mean()
    )
    torch.testing.assert_close(terms["d_gan"], expected)
    plain = tiny(
        tmp_path, TRAINABLE, "model.gan_loss=vanilla", "model.regularizer=none", "model.matching_aware=false"
    )
    method.cfg = plain.model
    torch.testing.assert_close(method.d_step(batch, out)["d_gan"], d_loss("vanilla", real, fake))


def test_d_step_detaches_g_and_trains_the_encoder_g_step_trains_g(tmp_path: Path) -> None:
    method, train_set, _ = setup(tiny(tmp_path, TRAINABLE, "model.interpolation_weight=1"))
    batch = first_items(train_set, 4)
    out = method.forward(batch)
    d_terms = method.d_step(batch, out)
    expected = {"d_gan", "d_ma_gp", "stat/d_real_acc", "stat/d_fake_acc", "stat/d_real_sign"}
    assert set(d_terms) == expected | {"stat/diversity", "stat/d_mismatch_acc"}
    sum(v for k, v in d_terms.items() if not k.startswith("stat/")).backward()
    assert all(p.grad is None for p in method.nets["g"].parameters())  # fakes detached for D
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.nets["text"].parameters())
    for net in method.nets.values():
        net.zero_grad(set_to_none=True)
    g_terms = method.g_step(batch, method.forward(batch))
    assert set(g_terms) == {"g_gan", "g_int"}  # GAN-INT on interpolated sentences
    sum(g_terms.values()).backward()
    assert all(p.grad is not None for p in method.nets["g"].parameters())
    assert all(p.grad is None for p in method.nets["text"].parameters())  # G sees the sentence code fixed


def test_ma_gp_term_is_weight_times_the_penalty_on_real_matching_pairs(tmp_path: Path) -> None:
    method, train_set, _ = setup(tiny(tmp_path, "model.reg_weight=3", "model.ma_gp_power=4"))
    batch = first_items(train_set, 4)
    terms = method.d_step(batch, method.forward(batch))
    d = method.nets["d"]
    real = batch["image"].clone().requires_grad_(True)
    text = method._text(batch).clone().requires_grad_(True)
    expected = 3 * matching_aware_penalty(d(real, text), (real, text), power=4)
    torch.testing.assert_close(terms["d_ma_gp"], expected)
    r1 = method.__class__(tiny(tmp_path, "model.regularizer=r1").model)
    assert "d_r1" in r1.d_step(batch, r1.forward(batch))


def test_contrastive_terms_train_d_on_real_and_g_on_generated_images(tmp_path: Path) -> None:
    """L_D += w InfoNCE(D's image code of x, D's sentence code of e), queue sentences as extra negatives;
    L_G += w InfoNCE on G's images. D's step pushes the batch's sentences into the queue."""
    method, train_set, _ = setup(tiny(tmp_path, *CONTRASTIVE, "model.regularizer=none"))
    batch = first_items(train_set, 4)
    out = method.forward(batch)
    d, text, ids = method.nets["d"], method._text(batch), batch["caption_id"]
    terms = method.d_step(batch, out)
    expected = 2.0 * contrastive_loss(
        d.image_embedding(d.features(batch["image"])), d.text_embedding(text), groups=ids
    )  # the queue was empty
    torch.testing.assert_close(terms["d_contrastive"], expected)
    assert len(method.queue) == 4 and torch.equal(method.queue.ids, ids)
    g_terms = method.g_step(batch, out)
    queued = d.text_embedding(method.queue.embeddings)
    expected = 2.0 * contrastive_loss(
        d.image_embedding(d.features(out["fake"])),
        d.text_embedding(text),
        groups=ids,
        extra_text=queued,
        extra_groups=method.queue.ids,
    )
    torch.testing.assert_close(g_terms["g_contrastive"], expected)
    sum(g_terms.values()).backward()
    assert all(p.grad is not None for p in method.nets["g"].parameters())
    method.d_step(batch, method.forward(batch))
    assert len(method.queue) == 6  # full: the oldest entries are overwritten from now on
    state = method.state_dict()["queue"]
    fresh = build_method(tiny(tmp_path, *CONTRASTIVE))
    fresh.load_state_dict({"queue": state})
    assert torch.equal(fresh.queue.embeddings, method.queue.embeddings)


def test_samples_are_real_images_then_fixed_noise_columns(tmp_path: Path) -> None:
    method, _, test_set = setup(tiny(tmp_path))
    batch = first_items(test_set, 3)
    nets = {k: v.eval() for k, v in method.nets.items()}
    first, second = method.samples(batch, nets), method.samples(batch, nets)
    assert list(first) == ["real", "z0", "z1", "z2", "z3", "z4", "z5"]
    assert all(v.shape == (3, 3, 16, 16) for v in first.values())
    assert all(torch.equal(first[k], second[k]) for k in first)  # the same noise every time


def test_every_loss_kind_trains(tmp_path: Path) -> None:
    for kind in ("hinge", "vanilla", "lsgan", "wgan"):
        cfg = tiny(tmp_path, TRAINABLE, f"model.gan_loss={kind}", "train.max_steps=2", name=kind)
        method, train_set, test_set = setup(cfg)
        result = Trainer(cfg, method, train_set, sample_batch=first_items(test_set, 2), progress=False).fit()
        assert result.step == 2 and all(np.isfinite(v) for v in result.last_logs.values()), kind


# ----------------------------------------------------------------------------- resume and checkpoints


@pytest.mark.parametrize("extra", [(), CONTRASTIVE], ids=["plain", "contrastive"])
def test_resume_with_the_pretrained_encoder_is_exact(tmp_path: Path, extra: tuple[str, ...]) -> None:
    """The per-method resume test covers the trainable encoder; this covers cached MiniLM embeddings,
    and the contrastive loss's sentence queue (method state in the checkpoint)."""
    from tests.train.test_resume import assert_same, final_state

    def trainer(name: str) -> Trainer:
        cfg = tiny(tmp_path, "train.max_steps=4", "train.ema_decay=0.9", *extra, name=name)
        method, train_set, test_set = setup(cfg)
        return Trainer(cfg, method, train_set, sample_batch=first_items(test_set, 2), progress=False)

    straight = trainer("straight")
    straight.fit()
    trainer("split").fit(stop_at=2)
    torch.manual_seed(99)
    resumed = trainer("split")
    resumed.fit(resume="auto")
    assert_same(final_state(straight), final_state(resumed))


def test_checkpoint_generates_without_the_config(tmp_path: Path) -> None:
    result = train(tiny(tmp_path, "train.max_steps=2", "train.ema_decay=0.5"), progress=False)
    t2i = TextToImage.from_file(result.checkpoint, device="cpu")
    assert t2i.image_size == 16 and len(t2i.generate("a red circle on a white background", n=2)) == 2


# ----------------------------------------------------------------------------- recipes


def test_recipes_carry_the_reference_hyperparameters() -> None:
    cub = load_config("text2image_cub")
    assert cub.method == "text2image" and cub.model.image_size == 256 and cub.model.gan_loss == "hinge"
    assert (cub.model.reg_weight, cub.model.ma_gp_power) == (2.0, 6.0)  # DF-GAN's MA-GP: k = 2, p = 6
    assert (cub.optim["g"].lr, cub.optim["d"].lr, cub.optim["g"].betas) == (1e-4, 4e-4, (0.0, 0.9))
    assert cub.data.batch_size == 32 and cub.model.text_encoder.name == "all-MiniLM-L6-v2"
    assert load_config("text2image_flowers").model.image_size == 128
    demo = load_config("text2image_demo")
    assert demo.data.source == "synthetic" and demo.model.image_size == 32
    # What makes the demo learn shapes: D's residual branches on from the start, the contrastive loss.
    assert demo.model.discriminator.args["residual_gain"] == 1.0 and demo.model.contrastive_weight > 0


@pytest.mark.parametrize(
    ("recipe", "extra"),
    [
        ("text2image_demo", []),
        # The full-size recipes at batch 2: the same nets and image size; batch 32 at 256 px is minutes.
        ("text2image_flowers", ["--set", "data.batch_size=2"]),
        pytest.param("text2image_cub", ["--set", "data.batch_size=2"], marks=pytest.mark.slow),
    ],
)
def test_recipe_dry_run(recipe: str, extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", recipe, *extra, "--dry-run"]) == 0
    assert "dry run OK: one text2image step" in capsys.readouterr().out


# ----------------------------------------------------------------------------- what it learns


def held_out_accuracy(t2i: TextToImage, per_prompt: int = 8, seed: int = 1) -> dict[str, float]:
    """Generate each held-out prompt and read colour, shape and background back with plain pixel stats."""
    hits = {"colour": 0, "shape": 0, "background": 0, "all": 0}
    prompts = heldout_prompts()
    for i, (prompt, scene) in enumerate(prompts):
        for image in t2i.images(prompt, n=per_prompt, seed=seed + i):
            colour, shape, background = measure(tensor_to_image(image))
            hits["colour"] += colour == scene.colour
            hits["shape"] += shape == scene.shape
            hits["background"] += background == scene.background
            hits["all"] += (colour, shape, background) == tuple(scene)
    return {k: v / (per_prompt * len(prompts)) for k, v in hits.items()}


@pytest.mark.slow
def test_held_out_prompts_get_the_requested_colour_shape_and_background(tmp_path: Path) -> None:
    """Train the demo recipe (1500 steps) on CPU, then draw the nine (colour, shape, background)
    combinations it never saw: the measured colour, shape and background match the prompt far more often
    than chance.

    Measured (122 s on one thread of a busy 2-core CPU): colour 100%, shape 69%, background 100% (chance
    20%, 33%, 33%); per shape, circles 22/24, triangles 19/24, squares 8/24. With seed 1: shape 60%. The
    previous recipe (no contrastive loss, D's residual branches starting at 0) run for the same 1500 steps
    gave shape 32%: blobs. The grids show squares for most square prompts, but G's squares have slightly
    rounded, uneven corners, and a fill of the bounding box under 0.88 reads back as a circle.
    """
    cfg = load_config("text2image_demo", overrides=[f"output_dir={tmp_path}", "train.sample_every=0"])
    start = time.time()
    result = train(cfg, progress=False)
    seconds = time.time() - start
    accuracy = held_out_accuracy(TextToImage.from_file(result.checkpoint, device="cpu"))
    print(f"text2image held-out accuracy after {result.step} steps ({seconds:.0f} s): {accuracy}")
    assert accuracy["colour"] > 0.6  # chance 0.2
    assert accuracy["background"] > 0.8  # chance 0.33
    assert accuracy["shape"] > 0.5  # chance 0.33
