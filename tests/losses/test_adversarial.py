"""Adversarial losses: hand-computed values, signs, multi-scale averaging, gradients and penalties."""

from __future__ import annotations

import math

import pytest
import torch

from i2i.errors import ConfigError
from i2i.losses import GAN_KINDS, d_loss, g_loss, gradient_penalty, matching_aware_penalty, r1_penalty


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# --- values computed by hand ------------------------------------------------------------------------------

# (kind, real logits, fake logits, expected D loss, expected G loss)
HAND_CASES = [
    (
        "vanilla",
        (0.0, 2.0),
        (0.0, -1.0),
        # mean(softplus(-r)) + mean(softplus(f))
        (_softplus(0.0) + _softplus(-2.0)) / 2 + (_softplus(0.0) + _softplus(-1.0)) / 2,
        # mean(softplus(-f))
        (_softplus(0.0) + _softplus(1.0)) / 2,
    ),
    # mean((r-1)^2) = (0 + 4) / 2 = 2; mean(f^2) = (0 + 4) / 2 = 2; G: mean((f-1)^2) = (1 + 1) / 2 = 1
    ("lsgan", (1.0, 3.0), (0.0, 2.0), 4.0, 1.0),
    # mean(f) - mean(r) = 1 - 2; G: -mean(f) = -1
    ("wgan", (1.0, 3.0), (0.0, 2.0), -1.0, -1.0),
    # mean(relu(1-r)) = (0.5 + 0) / 2; mean(relu(1+f)) = (0 + 1.5) / 2; G: -mean(f) = -(-2 + 0.5) / 2
    ("hinge", (0.5, 2.0), (-2.0, 0.5), 1.0, 0.75),
]


@pytest.mark.parametrize(("kind", "real", "fake", "expected_d", "expected_g"), HAND_CASES)
def test_hand_computed_values(kind, real, fake, expected_d, expected_g):
    assert d_loss(kind, _t(*real), _t(*fake)).item() == pytest.approx(expected_d, abs=1e-12)
    assert g_loss(kind, _t(*fake)).item() == pytest.approx(expected_g, abs=1e-12)


def test_kinds_are_the_four_documented_ones():
    assert GAN_KINDS == ("vanilla", "lsgan", "wgan", "hinge")


def test_losses_are_scalars_on_patch_maps():
    real, fake = torch.randn(2, 1, 5, 5), torch.randn(3, 1, 5, 5)  # batch sizes may differ
    for kind in GAN_KINDS:
        assert d_loss(kind, real, fake).shape == ()
        assert g_loss(kind, fake).shape == ()


# --- signs and symmetries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_discriminator_that_is_right_has_lower_loss(kind):
    high, low = _t(2.0, 3.0), _t(-2.0, -1.0)
    assert d_loss(kind, high, low) < d_loss(kind, low, high)


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_generator_loss_falls_as_fakes_look_more_real(kind):
    fake = _t(-3.0, -0.5, 0.5).requires_grad_(True)
    loss = g_loss(kind, fake)
    assert g_loss(kind, fake.detach() + 0.25) < loss
    (grad,) = torch.autograd.grad(loss, fake)
    assert (grad < 0).all()


@pytest.mark.parametrize("kind", ["vanilla", "wgan", "hinge"])
def test_d_loss_is_symmetric_under_swapping_and_negating(kind):
    # These losses treat "real" and "fake" as mirror images: D(r, f) == D(-f, -r).
    real, fake = _t(0.3, -1.2, 2.5), _t(-0.7, 1.1, 0.0)
    assert d_loss(kind, real, fake).item() == pytest.approx(d_loss(kind, -fake, -real).item(), abs=1e-12)


def test_vanilla_generator_does_not_saturate():
    # When D confidently rejects a fake (logit -10), log(1 - D(G(z))) has gradient sigmoid(-10) ~ 4.5e-5;
    # the non-saturating loss keeps a gradient of about -1.
    fake = _t(-10.0).requires_grad_(True)
    (grad,) = torch.autograd.grad(g_loss("vanilla", fake), fake)
    assert grad.item() == pytest.approx(-1.0, abs=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_vanilla_is_stable_for_huge_logits(dtype):
    real = torch.tensor([1e4, -1e4], dtype=dtype, requires_grad=True)
    fake = torch.tensor([-1e4, 1e4], dtype=dtype, requires_grad=True)
    d = d_loss("vanilla", real, fake)
    g = g_loss("vanilla", fake)
    # softplus(1e4) = 1e4 exactly in floating point; log(sigmoid) would give inf here.
    assert d.item() == pytest.approx(1e4, rel=1e-3)
    assert g.item() == pytest.approx(5e3, rel=1e-3)
    (d + g).backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()


# --- multi-scale ------------------------------------------------------------------------------------------


def test_list_of_logits_averages_the_per_scale_losses():
    # lsgan, scale 1 (hand case above): D = 4, G = 1.  Scale 2, all logits 1: D = 0 + 1 = 1, G = 0.
    # The average over scales is 2.5 / 0.5, not the loss over all 6 logits pooled together.
    reals = [_t(1.0, 3.0), torch.ones(1, 1, 2, 2, dtype=torch.float64)]
    fakes = [_t(0.0, 2.0), torch.ones(1, 1, 2, 2, dtype=torch.float64)]
    assert d_loss("lsgan", reals, fakes).item() == pytest.approx(2.5)
    assert g_loss("lsgan", fakes).item() == pytest.approx(0.5)
    assert d_loss("lsgan", tuple(reals), tuple(fakes)).item() == pytest.approx(2.5)


def test_single_tensor_equals_list_of_one():
    real, fake = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    for kind in GAN_KINDS:
        assert torch.equal(d_loss(kind, real, fake), d_loss(kind, [real], [fake]))
        assert torch.equal(g_loss(kind, fake), g_loss(kind, [fake]))


def test_mismatched_or_empty_scales_are_rejected():
    with pytest.raises(ValueError, match="2 scales of real logits but 1"):
        d_loss("hinge", [torch.zeros(1), torch.zeros(1)], [torch.zeros(1)])
    with pytest.raises(ValueError, match="empty"):
        g_loss("hinge", [])


# --- gradients, dtypes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_gradcheck(kind):
    gen = torch.Generator().manual_seed(0)
    # Two scales of different shapes, float64 so finite differences are exact enough.
    r1, f1 = (
        torch.randn(2, 1, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(2)
    )
    r2, f2 = (
        torch.randn(2, 1, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(2)
    )
    assert torch.autograd.gradcheck(lambda r, f: d_loss(kind, r, f), (r1, f1))
    assert torch.autograd.gradcheck(lambda f: g_loss(kind, f), (f1,))
    assert torch.autograd.gradcheck(lambda a, b, c, d: d_loss(kind, [a, b], [c, d]), (r1, r2, f1, f2))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_losses_keep_the_input_dtype(dtype):
    real, fake = torch.randn(2, 3, dtype=dtype), torch.randn(2, 3, dtype=dtype)
    for kind in GAN_KINDS:
        assert d_loss(kind, real, fake).dtype == dtype
        assert g_loss(kind, fake).dtype == dtype


def test_losses_work_under_autocast():
    net = torch.nn.Linear(4, 1)
    x = torch.randn(3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = net(x)
        losses = [d_loss(k, logits, -logits) + g_loss(k, logits) for k in GAN_KINDS]
    sum(losses).backward()
    assert all(torch.isfinite(loss) for loss in losses)
    assert torch.isfinite(net.weight.grad).all()


# --- unknown kinds ----------------------------------------------------------------------------------------


def test_unknown_kind_names_the_value_and_the_valid_kinds():
    with pytest.raises(ConfigError) as info:
        d_loss("wasserstein", torch.zeros(1), torch.zeros(1))
    message = str(info.value)
    assert "'wasserstein'" in message
    assert all(kind in message for kind in GAN_KINDS)
    with pytest.raises(ConfigError, match="'nsgan'.*vanilla, lsgan, wgan, hinge"):
        g_loss("nsgan", torch.zeros(1))


# --- gradient penalty (WGAN-GP) ---------------------------------------------------------------------------


def _linear_critic(w: torch.Tensor):
    """D(x) = <w, x> per sample: grad_x D = w everywhere, so ||grad|| = ||w|| exactly."""
    return lambda x: (x * w).flatten(1).sum(dim=1)  # (B,)


def test_gradient_penalty_of_linear_critic_is_exact():
    w = torch.tensor([[[[1.0, 2.0], [2.0, 0.0]]]])  # (1, 1, 2, 2), ||w|| = 3
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    assert gradient_penalty(_linear_critic(w), real, fake).item() == pytest.approx((3.0 - 1.0) ** 2)
    assert gradient_penalty(_linear_critic(w), real, fake, center=0.0).item() == pytest.approx(9.0)


def test_gradient_penalty_on_patch_scores_uses_their_sum():
    # A critic with two scores per sample, <w1, x> and <w2, x>: the gradient of their sum is w1 + w2.
    w1, w2 = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0])  # ||w1 + w2|| = 5
    critic = lambda x: torch.stack([x @ w1, x @ w2], dim=1)  # noqa: E731  (B, 2)
    assert gradient_penalty(critic, torch.randn(4, 2), torch.randn(4, 2)).item() == pytest.approx(16.0)


def test_gradient_penalty_averages_scales():
    w1, w2 = torch.tensor([3.0, 4.0]), torch.tensor([0.0, 2.0])  # norms 5 and 2: penalties 16 and 1
    critic = lambda x: [x @ w1, x @ w2]  # noqa: E731
    assert gradient_penalty(critic, torch.randn(3, 2), torch.randn(3, 2)).item() == pytest.approx(8.5)


def test_gradient_penalty_interpolates_per_sample_towards_real():
    # D(x) = ||x||^2 / 2 has grad x, so with fake = 0 the gradient norm is ||eps_i * real_i||.
    real = torch.full((6, 1, 2, 2), 0.75)  # ||real_i|| = 1.5
    fake = torch.zeros_like(real)
    critic = lambda x: 0.5 * x.square().flatten(1).sum(dim=1)  # noqa: E731
    penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    eps = torch.rand(
        6, generator=torch.Generator().manual_seed(7)
    ).tolist()  # the draw gradient_penalty makes
    expected = sum((e * 1.5 - 1.0) ** 2 for e in eps) / 6
    assert penalty.item() == pytest.approx(expected, rel=1e-5)
    # Same seed, same penalty; the random draw makes different seeds differ.
    again = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    other = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(8))
    assert again.item() == penalty.item() != other.item()


def test_gradient_penalty_trains_the_critic_only():
    critic = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    gen_param = torch.ones(1, requires_grad=True)
    fake = torch.randn(4, 2) * gen_param  # a "generator" output that would receive gradient
    gradient_penalty(critic, torch.randn(4, 2), fake).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 2 * 4 * [0.6, 0.8]
    assert critic.weight.grad.flatten().tolist() == pytest.approx([4.8, 6.4])
    assert gen_param.grad is None


def test_gradient_penalty_rejects_bad_shapes():
    critic = _linear_critic(torch.ones(2))
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(critic, torch.zeros(2, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="batch-first"):
        gradient_penalty(lambda x: x.sum(), torch.zeros(2, 2), torch.zeros(2, 2))


# --- R1 ---------------------------------------------------------------------------------------------------


def test_r1_of_linear_critic_is_squared_norm_of_w():
    w = torch.tensor([[[[1.0, 2.0], [2.0, 0.0]]]])  # ||w||^2 = 9
    real = torch.randn(4, 1, 2, 2).requires_grad_(True)
    assert r1_penalty(_linear_critic(w)(real), real).item() == pytest.approx(9.0)


def test_r1_is_a_mean_over_samples_of_squared_norms():
    # D(x) = ||x||^2 / 2 has grad x: squared norms 1 + 4 = 5 and 9 + 0 = 9, mean 7.
    real = torch.tensor([[1.0, 2.0], [3.0, 0.0]], requires_grad=True)
    assert r1_penalty(0.5 * real.square().sum(dim=1), real).item() == pytest.approx(7.0)


def test_r1_averages_scales():
    real = torch.randn(3, 2).requires_grad_(True)
    logits = [real @ torch.tensor([3.0, 4.0]), real @ torch.tensor([1.0, 0.0])]  # 25 and 1
    assert r1_penalty(logits, real).item() == pytest.approx(13.0)


def test_r1_is_differentiable_wrt_the_discriminator():
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    real = torch.randn(3, 2).requires_grad_(True)
    r1_penalty(real @ w, real).backward()
    assert w.grad.tolist() == pytest.approx([6.0, 8.0])  # d/dw ||w||^2 = 2w


def test_r1_requires_grad_on_real_images():
    real = torch.randn(2, 3)
    with pytest.raises(ValueError, match=r"requires_grad_\(True\)"):
        r1_penalty(real.sum(dim=1), real)


# --- matching-aware gradient penalty (DF-GAN) -------------------------------------------------------------


def test_matching_aware_penalty_is_the_joint_gradient_norm_to_the_p() -> None:
    """D(x, e) = <w, x> + <v, e>: the joint gradient is (w, v) for every sample, so the penalty is
    (||w||^2 + ||v||^2)^(p / 2) exactly, and it trains D through create_graph."""
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    v = torch.tensor([2.0], requires_grad=True)
    x, e = torch.randn(5, 2).requires_grad_(True), torch.randn(5, 1).requires_grad_(True)
    logits = x @ w + e @ v
    penalty = matching_aware_penalty(logits, (x, e), power=6)
    torch.testing.assert_close(penalty, torch.tensor(9.0**3))
    penalty.backward()
    # d/dw (|w|^2 + |v|^2)^3 = 3 (|w|^2 + |v|^2)^2 * 2w
    torch.testing.assert_close(w.grad, 3 * 81 * 2 * w.detach())
    assert matching_aware_penalty(x @ w.detach(), (x,), power=2) == pytest.approx(5.0)


def test_matching_aware_penalty_needs_inputs_that_require_grad() -> None:
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match="requires_grad_"):
        matching_aware_penalty(x.sum(1), (x,))
