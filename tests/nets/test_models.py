"""The same checks for every registered network (diffusers ``ModelTesterMixin`` style), on small configs.

Registering a network? Add a small config for it to ``CASES``; the test below fails for names without one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn

from i2i import nets


@dataclass(frozen=True)
class Case:
    kwargs: dict[str, Any]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    extra: dict[str, Any] = field(default_factory=dict)


# Small widths; the fixed-depth U-Nets need their full input size. Every norm layer sees more than one value
# per channel, so batch size 1 works in train mode too.
CASES: dict[str, Case] = {
    "unet": Case(
        dict(in_channels=3, out_channels=2, num_downs=5, base_channels=4, norm="batch", dropout=True),
        (2, 3, 32, 32),
        (2, 2, 32, 32),
    ),
    "unet_128": Case(dict(base_channels=2, norm="instance"), (1, 3, 128, 128), (1, 3, 128, 128)),
    "unet_256": Case(dict(base_channels=2, dropout=True), (1, 3, 256, 256), (1, 3, 256, 256)),
    "patchgan": Case(dict(in_channels=6, base_channels=8), (2, 6, 64, 64), (2, 1, 6, 6)),
    "pixel": Case(dict(in_channels=3, base_channels=8), (2, 3, 32, 32), (2, 1, 32, 32)),
    "resnet": Case(
        dict(in_channels=1, out_channels=3, base_channels=4, num_blocks=2, dropout=True, upsampling="resize"),
        (2, 1, 16, 16),
        (2, 3, 16, 16),
    ),
    "resnet_6blocks": Case(dict(base_channels=4, norm="batch"), (2, 3, 16, 16), (2, 3, 16, 16)),
    "resnet_9blocks": Case(dict(base_channels=4), (1, 3, 16, 16), (1, 3, 16, 16)),
    "rrdbnet": Case(
        dict(base_channels=4, num_blocks=1, growth_channels=2, scale=2), (2, 3, 8, 8), (2, 3, 16, 16)
    ),
    "srvgg_compact": Case(dict(base_channels=4, num_convs=2, scale=3), (2, 3, 8, 8), (2, 3, 24, 24)),
    "msrresnet": Case(dict(base_channels=4, num_blocks=2, scale=4), (2, 3, 8, 8), (2, 3, 32, 32)),
    "srresnet": Case(dict(base_channels=4, num_blocks=2, scale=3), (2, 3, 8, 8), (2, 3, 24, 24)),
    "srgan_d": Case(dict(base_channels=4, pool_size=2, hidden_dim=8), (2, 3, 32, 32), (2,)),
    "unet_d_sn": Case(dict(base_channels=4), (2, 3, 16, 16), (2, 1, 16, 16)),
    "encoder_decoder": Case(dict(base_channels=4, num_downs=3), (2, 3, 16, 16), (2, 3, 16, 16)),
    # Noise-to-image nets: the input is z (B, latent_dim); D gives one logit per image.
    "dcgan_g": Case(dict(latent_dim=8, image_size=16, base_channels=4), (2, 8), (2, 3, 16, 16)),
    "dcgan_d": Case(dict(image_size=16, in_channels=3, base_channels=4), (2, 3, 16, 16), (2,)),
    "mlp_g": Case(dict(latent_dim=8, image_size=8, hidden_dim=8, num_layers=2), (2, 8), (2, 1, 8, 8)),
    "mlp_d": Case(dict(image_size=8, in_channels=1, hidden_dim=8, num_layers=2), (2, 1, 8, 8), (2,)),
    # Text-to-image nets also take a sentence embedding (B, text_dim); the text encoder takes token ids.
    "text2image_g": Case(
        dict(latent_dim=8, text_dim=6, image_size=16, base_channels=4, cond_dim=8),
        (2, 8),
        (2, 3, 16, 16),
        extra={"text_dim": 6},
    ),
    "text2image_d": Case(
        dict(text_dim=6, image_size=16, base_channels=4, text_channels=4),
        (2, 3, 16, 16),
        (2,),
        {"text_dim": 6},
    ),
    "char_gru": Case(
        dict(out_dim=5, embed_dim=4, hidden_dim=4, max_length=12), (2, 12), (2, 5), {"vocab_size": 71}
    ),
}


@pytest.fixture(params=nets.list())
def case(request: pytest.FixtureRequest) -> tuple[str, Case]:
    name = request.param
    if name not in CASES:
        pytest.fail(f"registered network {name!r} has no small test config: add one to CASES in {__file__}")
    return name, CASES[name]


def _build(name: str, case: Case, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nets.build(name, **case.kwargs)


def _inputs(case: Case, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    """The net's inputs: ``input_shape`` uniform in [-1, 1] (token ids below ``extra["vocab_size"]`` for
    text encoders), plus a ``(B, extra["text_dim"])`` sentence embedding for text-conditional nets."""
    gen = torch.Generator().manual_seed(1)
    if "vocab_size" in case.extra:
        return (torch.randint(0, case.extra["vocab_size"], case.input_shape, generator=gen),)
    x = torch.rand(case.input_shape, generator=gen, dtype=dtype) * 2 - 1
    if "text_dim" in case.extra:
        return x, torch.randn(case.input_shape[0], case.extra["text_dim"], generator=gen, dtype=dtype)
    return (x,)


def test_output_shape(case: tuple[str, Case]) -> None:
    name, c = case
    net = _build(name, c)
    with torch.no_grad():
        assert net(*_inputs(c)).shape == c.output_shape
        assert net.eval()(*_inputs(c)).shape == c.output_shape


def test_state_dict_round_trip(case: tuple[str, Case]) -> None:
    name, c = case
    net = _build(name, c, seed=0)
    with torch.no_grad():
        net.train()(*_inputs(c))  # move BatchNorm running statistics away from their defaults
    other = _build(name, c, seed=1)
    other.load_state_dict(copy.deepcopy(net.state_dict()), strict=True)
    net.eval()
    other.eval()
    with torch.no_grad():
        torch.testing.assert_close(other(*_inputs(c)), net(*_inputs(c)), rtol=0, atol=0)


def test_backward_gives_finite_grads_for_all_params(case: tuple[str, Case]) -> None:
    name, c = case
    net = _build(name, c).train()
    net(*_inputs(c)).square().mean().backward()
    for pname, param in net.named_parameters():
        assert param.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(param.grad).all(), f"{name}: non-finite gradient for {pname}"


def test_float64(case: tuple[str, Case]) -> None:
    name, c = case
    net = _build(name, c).double().eval()
    with torch.no_grad():
        out = net(*_inputs(c, torch.float64))
    assert out.dtype == torch.float64
    assert out.shape == c.output_shape


def test_eval_is_deterministic(case: tuple[str, Case]) -> None:
    name, c = case
    net = _build(name, c).eval()
    with torch.no_grad():
        torch.testing.assert_close(net(*_inputs(c)), net(*_inputs(c)), rtol=0, atol=0)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_every_norm_builds_and_runs(case: tuple[str, Case], norm: str) -> None:
    name, c = case
    if "norm" not in nets.signature_of(name).parameters:
        pytest.skip(f"{name} has no norm argument")
    net = nets.build(name, **{**c.kwargs, "norm": norm}).eval()
    with torch.no_grad():
        out = net(*_inputs(c))
    assert out.shape == c.output_shape
    assert torch.isfinite(out).all()
