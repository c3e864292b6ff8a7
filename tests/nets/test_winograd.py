"""Winograd convolution: the same convolution as the module, its gradients, and the transforms' algebra."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from torch import nn

from i2i.nets import winograd

MODULES = [
    nn.Conv2d(5, 7, 3, padding=1),
    nn.Conv2d(3, 4, 3, bias=False),
    nn.Conv2d(4, 6, 4, padding=1),
    nn.Conv2d(4, 2, 4, padding=(2, 0)),
]
IDS = ["3x3-pad1", "3x3-nobias", "4x4-pad1", "4x4-uneven-pad"]


def test_toom_cook_reproduces_lavin_and_grays_f43() -> None:
    b_t, g, a_t = winograd.toom_cook(3)
    assert b_t == [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ]
    sixth, twelfth, quarter = Fraction(1, 6), Fraction(1, 12), Fraction(1, 4)
    assert g == [
        [quarter, 0, 0],
        [-sixth, -sixth, -sixth],
        [-sixth, sixth, -sixth],
        [Fraction(1, 24), twelfth, sixth],
        [Fraction(1, 24), -twelfth, sixth],
        [0, 0, 1],
    ]
    assert a_t == [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]


@pytest.mark.parametrize("r", winograd.KERNELS)
def test_one_dimensional_transforms_compute_the_correlation_exactly(r: int) -> None:
    b_t, g, a_t = winograd.toom_cook(r)
    m = winograd.WINDOW + 1 - r
    d = [Fraction(v) for v in (3, -1, 4, 1, -5, 9)]
    f = [Fraction(v) for v in (2, -7, 1, 8)[:r]]
    transformed = [
        sum(row[i] * d[i] for i in range(6)) * sum(gr[k] * f[k] for k in range(r))
        for row, gr in zip(b_t, g, strict=True)
    ]
    got = [sum(a_t[i][j] * transformed[j] for j in range(6)) for i in range(m)]
    assert got == [sum(d[i + k] * f[k] for k in range(r)) for i in range(m)]


@pytest.mark.parametrize("module", MODULES, ids=IDS)
@pytest.mark.parametrize("size", [(9, 11), (8, 8), (5, 13)])
def test_matches_the_module_and_its_gradients_in_float64(module: nn.Module, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    module = module.double()
    x = torch.randn(2, module.in_channels, *size, dtype=torch.float64, requires_grad=True)
    assert winograd.supports(module, x)
    expected, got = module(x), winograd.winograd_convolution(module, x)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    params = [x, *module.parameters()]
    for a, b in zip(
        torch.autograd.grad(expected.square().sum(), params),
        torch.autograd.grad(got.square().sum(), params),
        strict=True,
    ):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_gradcheck(module: nn.Module) -> None:
    torch.manual_seed(0)
    module = module.double()
    x = torch.randn(1, module.in_channels, 6, 7, dtype=torch.float64, requires_grad=True)
    weight = module.weight.detach().requires_grad_()

    def conv(t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return winograd.winograd_conv2d(t, w, module.bias, module.padding)

    assert torch.autograd.gradcheck(conv, (x, weight))


def test_gradient_penalties_can_differentiate_the_backward_again() -> None:
    torch.manual_seed(0)
    module = nn.Conv2d(3, 4, 4, padding=1).double()
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64, requires_grad=True)

    def penalty(out: torch.Tensor) -> torch.Tensor:
        (grad,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
        return torch.autograd.grad(grad.square().sum(), module.weight)[0]

    torch.testing.assert_close(penalty(winograd.winograd_convolution(module, x)), penalty(module(x)))


@pytest.mark.parametrize("kernel", winograd.KERNELS)
def test_float32_rounding_stays_near_a_direct_convolution(kernel: int) -> None:
    torch.manual_seed(0)
    module = nn.Conv2d(64, 64, kernel, padding=1)
    x = torch.randn(1, 64, 24, 24)
    exact = module.double()(x.double())
    module.float()
    direct, fast = module(x), winograd.winograd_convolution(module, x)
    scale = exact.abs().max()
    assert (fast.double() - exact).abs().max() / scale < 5e-5
    assert (direct.double() - exact).abs().max() / scale < 5e-6  # for scale: Winograd rounds ~10x more


@pytest.mark.parametrize(
    "module",
    [
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.Conv2d(3, 4, 5, padding=2),
        nn.Conv2d(4, 4, 3, padding=1, groups=2),
        nn.Conv2d(3, 4, 3, padding=2, dilation=2),
        nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"),
        nn.Conv2d(3, 4, 3, padding="same"),
        nn.ConvTranspose2d(3, 4, 3, padding=1),
    ],
    ids=["stride2", "5x5", "groups", "dilation", "reflect", "same", "transposed"],
)
def test_other_convolutions_are_not_supported(module: nn.Module) -> None:
    assert not winograd.supports(module, torch.zeros(1, 3 if module.in_channels == 3 else 4, 8, 8))


def test_half_precision_and_too_small_inputs_are_not_supported() -> None:
    module = nn.Conv2d(3, 4, 3)
    assert winograd.supports(module, torch.zeros(1, 3, 3, 3))
    assert not winograd.supports(module, torch.zeros(1, 3, 2, 8))
    assert not winograd.supports(module.bfloat16(), torch.zeros(1, 3, 8, 8, dtype=torch.bfloat16))
