"""Pixel losses: hand-computed values, dispatch by name, gradients and input checks."""

from __future__ import annotations

import math

import pytest
import torch

from i2i.errors import ConfigError
from i2i.losses import PIXEL_LOSSES, charbonnier_loss, l1_loss, l2_loss, pixel_loss

PRED = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
TARGET = torch.tensor([[0.0, 1.0], [0.5, -1.0]])
# differences: 1, -2, 0, 3


def test_l1_by_hand():
    assert l1_loss(PRED, TARGET).item() == pytest.approx((1 + 2 + 0 + 3) / 4)


def test_l2_by_hand():
    assert l2_loss(PRED, TARGET).item() == pytest.approx((1 + 4 + 0 + 9) / 4)


def test_charbonnier_by_hand():
    eps = 0.5
    expected = sum(math.sqrt(d * d + eps * eps) for d in (1, -2, 0, 3)) / 4
    assert charbonnier_loss(PRED, TARGET, eps=eps).item() == pytest.approx(expected)
    # 3-4-5 triangle: sqrt(3^2 + 4^2) = 5, and eps alone where pred == target.
    assert charbonnier_loss(torch.tensor([3.0, 0.0]), torch.zeros(2), eps=4.0).item() == pytest.approx(4.5)


def test_charbonnier_is_close_to_l1_with_the_default_eps():
    pred, target = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    gap = charbonnier_loss(pred, target) - l1_loss(pred, target)
    assert 0 <= gap.item() <= 1e-3  # |d| <= sqrt(d^2 + eps^2) <= |d| + eps


def test_charbonnier_gradient_is_zero_and_finite_at_a_perfect_match():
    pred = torch.zeros(3, requires_grad=True)
    charbonnier_loss(pred, torch.zeros(3)).backward()
    assert torch.equal(pred.grad, torch.zeros(3))


def test_charbonnier_gradcheck():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, t: charbonnier_loss(p, t, eps=0.1), (pred, target))


def test_charbonnier_rejects_non_positive_eps():
    with pytest.raises(ValueError, match="eps > 0"):
        charbonnier_loss(PRED, TARGET, eps=0.0)


@pytest.mark.parametrize("kind", ["l1", "l2", "charbonnier"])
def test_dispatch_by_name(kind):
    expected = {"l1": l1_loss, "l2": l2_loss, "charbonnier": charbonnier_loss}[kind](PRED, TARGET)
    assert PIXEL_LOSSES[kind](PRED, TARGET) == expected
    assert pixel_loss(kind, PRED, TARGET) == expected


@pytest.mark.parametrize("kind", ["l1", "l2", "charbonnier"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_scalar_in_input_dtype(kind, dtype):
    loss = pixel_loss(kind, PRED.to(dtype), TARGET.to(dtype))
    assert loss.shape == () and loss.dtype == dtype


def test_shape_mismatch_is_an_error_not_a_broadcast():
    with pytest.raises(ValueError, match=r"same shape, got \(2, 3, 4, 4\) and \(2, 1, 4, 4\)"):
        l1_loss(torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 4, 4))


def test_unknown_kind_names_the_value_and_the_valid_kinds():
    with pytest.raises(ConfigError, match="'mse'.*l1, l2, charbonnier"):
        pixel_loss("mse", PRED, TARGET)
