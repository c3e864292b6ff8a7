"""The text-conditional G and D: sizes, conditioning variants, the identity start of the fusion blocks."""

from __future__ import annotations

import pytest
import torch

from i2i import nets
from i2i.errors import ConfigError
from i2i.nets.text2image import TextConditionalDiscriminator, TextConditionalGenerator


@pytest.mark.parametrize("size", [16, 32, 64])
def test_generator_and_discriminator_sizes(size: int) -> None:
    g = TextConditionalGenerator(latent_dim=8, text_dim=6, image_size=size, base_channels=4, cond_dim=8)
    d = TextConditionalDiscriminator(text_dim=6, image_size=size, base_channels=4)
    text = torch.randn(3, 6)
    image = g(torch.randn(3, 8), text)
    assert image.shape == (3, 3, size, size) and image.abs().max() <= 1
    steps = {16: 2, 32: 3, 64: 4}[size]
    assert len(g.blocks) == len(d.blocks) == steps
    assert d.features(image).shape == (3, 4 * min(2**steps, 8), 4, 4)  # widths double up to 8x, to 4x4
    assert d(image, text).shape == (3,)


def test_registered_names_and_saved_attributes() -> None:
    g = nets.build("text2image_g", latent_dim=8, text_dim=6, image_size=32, base_channels=4)
    assert (g.latent_dim, g.text_dim, g.image_size) == (8, 6, 32)  # what inference reads
    assert isinstance(nets.build("text2image_d", text_dim=6, image_size=32), TextConditionalDiscriminator)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 48}, "power of two from 16"),
        ({"image_size": 8}, "power of two from 16"),
        ({"base_channels": 0}, "base_channels must be at least 1"),
        ({"norm": "group"}, "unknown norm"),
    ],
)
def test_generator_argument_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TextConditionalGenerator(**{"latent_dim": 8, "text_dim": 6, **kwargs})


def test_discriminator_argument_errors() -> None:
    with pytest.raises(ConfigError, match="conditioning must be one of concat, projection"):
        TextConditionalDiscriminator(conditioning="film")
    with pytest.raises(ConfigError, match="text_channels must be 0"):
        TextConditionalDiscriminator(text_channels=-1)
    with pytest.raises(ConfigError, match="embed_dim must be 0"):
        TextConditionalDiscriminator(embed_dim=-1)


def test_wrong_input_shapes_are_named() -> None:
    g = TextConditionalGenerator(latent_dim=8, text_dim=6, image_size=16, base_channels=4)
    with pytest.raises(ValueError, match=r"text embedding of shape \(2, 6\)"):
        g(torch.randn(2, 8), torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"noise of shape \(B, 8\)"):
        g(torch.randn(2, 7), torch.randn(2, 6))
    d = TextConditionalDiscriminator(text_dim=6, image_size=16, base_channels=4)
    with pytest.raises(ValueError, match=r"text embedding of shape \(2, 6\)"):
        d(torch.randn(2, 3, 16, 16), torch.randn(1, 6))


def test_fusion_starts_as_the_identity_and_learns_to_listen() -> None:
    """DF-GAN's init (gamma = 1, beta = 0): with the start map from noise alone (the default), a new G
    ignores the sentence; a step on an affine layer makes the output depend on it. A start map from
    noise and sentence (``text_start``) hears it from the first step."""
    torch.manual_seed(0)
    kwargs = {"latent_dim": 8, "text_dim": 6, "image_size": 16, "base_channels": 4, "cond_dim": 8}
    g = TextConditionalGenerator(**kwargs)
    noise, a, b = torch.randn(2, 8), torch.randn(2, 6), torch.randn(2, 6)
    assert torch.equal(g(noise, a), g(noise, b))
    torch.nn.init.normal_(g.blocks[0].fuse0.affine0.gamma.weight, std=0.5)
    assert not torch.allclose(g(noise, a), g(noise, b))
    reed = TextConditionalGenerator(**kwargs, text_start=True)
    assert reed.project.in_features == 8 and not torch.allclose(reed(noise, a), reed(noise, b))


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
@pytest.mark.parametrize("text_channels", [0, 5])
def test_discriminator_scores_image_and_sentence_together(conditioning: str, text_channels: int) -> None:
    torch.manual_seed(0)
    d = TextConditionalDiscriminator(
        text_dim=6, image_size=16, base_channels=4, conditioning=conditioning, text_channels=text_channels
    )
    image, a, b = torch.randn(2, 3, 16, 16), torch.randn(2, 6), torch.randn(2, 6)
    torch.testing.assert_close(d(image, a), d.logits(d.features(image), a))  # one body pass, many sentences
    assert not torch.allclose(d(image, a), d(image, b))  # the sentence changes the score


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_generator_is_per_sample_in_eval_mode(norm: str) -> None:
    torch.manual_seed(0)
    g = TextConditionalGenerator(latent_dim=8, text_dim=6, image_size=16, base_channels=4, norm=norm)
    g.train()(torch.randn(4, 8), torch.randn(4, 6))  # running statistics move away from the defaults
    g.eval()
    noise, text = torch.randn(3, 8), torch.randn(3, 6)
    torch.testing.assert_close(g(noise, text)[:1], g(noise[:1], text[:1]))


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_embedding_heads_map_images_and_sentences_to_one_space(conditioning: str) -> None:
    d = TextConditionalDiscriminator(
        text_dim=6, image_size=32, base_channels=4, conditioning=conditioning, embed_dim=5
    )
    features = d.features(torch.randn(3, 3, 32, 32))
    assert d.image_embedding(features).shape == (3, 5)
    assert d.text_embedding(torch.randn(7, 6)).shape == (7, 5)  # any number of sentences (a queue)
    plain = TextConditionalDiscriminator(text_dim=6, image_size=16, base_channels=4)
    assert not hasattr(plain, "image_head")  # no heads, no extra weights in checkpoints
    with pytest.raises(ValueError, match="no embedding heads"):
        plain.text_embedding(torch.randn(1, 6))


def test_residual_gain_sets_where_the_blocks_start() -> None:
    """0 (DF-GAN): D's body starts as its linear shortcut path; 1: the residual branches are on."""
    torch.manual_seed(0)
    off = TextConditionalDiscriminator(text_dim=6, image_size=16, base_channels=4)
    on = TextConditionalDiscriminator(text_dim=6, image_size=16, base_channels=4, residual_gain=1.0)
    assert all(block.gain.item() == 0 for block in off.blocks)
    assert all(block.gain.item() == 1 for block in on.blocks)
    image = torch.randn(2, 3, 16, 16)
    # Linear from the start: features of a sum are the sum of features (biases aside, so compare offsets).
    zero = off.features(torch.zeros_like(image))
    torch.testing.assert_close(off.features(2 * image) - zero, 2 * (off.features(image) - zero))
    zero = on.features(torch.zeros_like(image))
    assert not torch.allclose(on.features(2 * image) - zero, 2 * (on.features(image) - zero))
