"""The classic GAN nets: DCGAN/MLP shapes at every size, class conditioning, InfoGAN's Q head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from i2i import nets
from i2i.errors import ConfigError
from i2i.nets.dcgan import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, start_size


@pytest.mark.parametrize(("size", "start", "steps"), [(28, 7, 2), (32, 4, 3), (64, 4, 4), (128, 4, 5)])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes_for_every_size(size: int, start: int, steps: int, channels: int) -> None:
    assert start_size(size) == (start, steps)
    g = DCGANGenerator(latent_dim=16, image_size=size, out_channels=channels, base_channels=4)
    d = DCGANDiscriminator(image_size=size, in_channels=channels, base_channels=4)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, channels, size, size)
    assert x.abs().max() <= 1  # Tanh output
    assert d(x).shape == (3,)
    assert g(torch.randn(3, 16, 1, 1)).shape == x.shape  # z as a 1x1 map works too
    # Paper guidelines: strided (transposed) convs only, no pooling, no norm on D's input layer.
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in [*g.modules(), *d.modules()])
    assert [type(m).__name__ for m in d.body[0]] == ["Conv2d", "LeakyReLU"]
    assert isinstance(g.to_image.act, nn.Tanh) and not hasattr(g.to_image, "norm")
    # Widths double towards the small end, capped at 8x.
    widths = [m.out_channels for m in d.body.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [4 * min(2**i, 8) for i in range(steps)]


@pytest.mark.parametrize("size", [28, 32, 64])
def test_mlp_shapes(size: int) -> None:
    g = MLPGenerator(latent_dim=10, image_size=size, out_channels=1, hidden_dim=8, num_layers=3)
    d = MLPDiscriminator(image_size=size, in_channels=1, hidden_dim=8, num_layers=3)
    assert [m.out_features for m in g.hidden if isinstance(m, nn.Linear)] == [8, 16, 32]
    assert [m.out_features for m in d.body if isinstance(m, nn.Linear)] == [32, 16, 8]
    x = g(torch.randn(5, 10))
    assert x.shape == (5, 1, size, size)
    assert d(x).shape == (5,)


def test_default_mlp_matches_the_textbook_sizes() -> None:
    g, d = MLPGenerator(), MLPDiscriminator()  # 100 -> 256 -> 512 -> 1024 -> 784 and back
    assert [m.out_features for m in g.modules() if isinstance(m, nn.Linear)] == [256, 512, 1024, 784]
    assert [m.in_features for m in d.modules() if isinstance(m, nn.Linear)][:3] == [784, 1024, 512]


@pytest.mark.parametrize("size", [48, 100, 4, 7])
def test_unsupported_sizes_are_config_errors(size: int) -> None:
    with pytest.raises(ConfigError, match=f"image_size {size}: .*28, 32, 64 or 128"):
        DCGANGenerator(image_size=size)


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="latent_dim must be at least 1"):
        nets.build("dcgan_g", latent_dim=0)
    with pytest.raises(ConfigError, match="conditioning must be one of concat, projection"):
        nets.build("dcgan_d", num_classes=3, conditioning="film")
    with pytest.raises(ConfigError, match="unknown norm"):
        nets.build("dcgan_d", norm="group")


@pytest.mark.parametrize("embedding_dim", [0, 5])
def test_conditional_generator_depends_on_the_label(embedding_dim: int) -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, image_size=16, out_channels=1, base_channels=4, num_classes=3,
                       embedding_dim=embedding_dim).eval()  # fmt: skip
    first = g.project.conv.in_channels
    assert first == 8 + (embedding_dim or 3)  # [z, y] concatenated
    z = torch.randn(2, 8)
    a, b = g(z, torch.tensor([0, 0])), g(z, torch.tensor([1, 2]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="class-conditional: pass labels of shape"):
        g(z)
    with pytest.raises(ValueError, match="not class-conditional"):
        DCGANGenerator(latent_dim=8, image_size=16, base_channels=4)(z, torch.tensor([0, 1]))


@pytest.mark.parametrize("kind", ["dcgan_d", "mlp_d"])
@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_conditional_discriminators(kind: str, conditioning: str) -> None:
    torch.manual_seed(0)
    size_arg = {"base_channels": 4} if kind == "dcgan_d" else {"hidden_dim": 8, "num_layers": 2}
    d = nets.build(kind, image_size=16, in_channels=1, num_classes=4, conditioning=conditioning, **size_arg)
    d.eval()
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    a, b = d(x, torch.tensor([0, 1, 2])), d(x, torch.tensor([3, 3, 3]))
    assert a.shape == (3,) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="class-conditional"):
        d(x)


def test_projection_discriminator_is_logit_plus_inner_product() -> None:
    """Miyato & Koyama 2018: D(x, y) = psi(phi(x)) + <embed(y), phi(x)>, phi = sum-pooled body features."""
    torch.manual_seed(0)
    d = DCGANDiscriminator(
        image_size=16, in_channels=1, base_channels=4, num_classes=3, conditioning="projection"
    )
    d.eval()
    x, y = torch.rand(2, 1, 16, 16), torch.tensor([2, 0])
    h = d.body(x)  # (2, 8, 4, 4); the image itself, no label planes
    expected = d.heads.logit(h.flatten(1)).squeeze(1) + (d.heads.project(y) * h.sum((2, 3))).sum(1)
    torch.testing.assert_close(d(x, y), expected)


@pytest.mark.parametrize("kind", ["dcgan", "mlp"])
def test_infogan_codes_and_q_head(kind: str) -> None:
    torch.manual_seed(0)
    codes = {"code_categories": 4, "code_continuous": 2}
    if kind == "dcgan":
        g = DCGANGenerator(latent_dim=6, image_size=16, out_channels=1, base_channels=4, **codes)
        d = DCGANDiscriminator(image_size=16, in_channels=1, base_channels=4, **codes)
    else:
        g = MLPGenerator(latent_dim=6, image_size=16, out_channels=1, hidden_dim=8, num_layers=2, **codes)
        d = MLPDiscriminator(image_size=16, in_channels=1, hidden_dim=8, num_layers=2, **codes)
    assert g.input_dim == 6 + 4 + 2
    z = g.compose_latent(torch.randn(3, 6), torch.tensor([0, 3, 1]), torch.rand(3, 2))
    assert z.shape == (3, 12)
    assert torch.equal(z[:, 6:10], torch.eye(4)[[0, 3, 1]])  # one-hot categorical code
    x = g(z)
    d.eval()  # no dropout, so the two passes below can be compared
    logits, cat, cont = d.forward_info(x)
    assert logits.shape == (3,) and cat.shape == (3, 4) and cont.shape == (3, 2)
    torch.testing.assert_close(logits, d(x))  # the same body and logit head
    (cat.sum() + cont.sum()).backward()
    assert all(p.grad is not None for p in d.heads.q.parameters())  # Q shares D's body ...
    assert all(p.grad is not None for p in d.body.parameters())  # ... and trains it
    with pytest.raises(ValueError, match="expected z of shape \\(B, 12\\)"):
        g(torch.randn(3, 6))
    with pytest.raises(ValueError, match="needs a categorical code"):
        g.compose_latent(torch.randn(3, 6))


def test_discriminator_without_codes_has_no_q() -> None:
    d = DCGANDiscriminator(image_size=16, in_channels=1, base_channels=4)
    with pytest.raises(ValueError, match="no InfoGAN Q head"):
        d.forward_info(torch.zeros(2, 1, 16, 16))
