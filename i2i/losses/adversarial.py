"""Adversarial losses: a discriminator loss and a generator loss for each GAN kind, plus regularizers.

Discriminators output raw scores (logits); the kind decides what to do with them. With ``r`` the logits
on real images, ``f`` the logits on generated images and ``E`` the mean over every element:

- ``vanilla`` (Goodfellow et al. 2014, non-saturating generator):
  D: ``E[softplus(-r)] + E[softplus(f)]``, G: ``E[softplus(-f)]``.
- ``lsgan`` (Mao et al. 2017, targets a=0, b=c=1): D: ``E[(r - 1)^2] + E[f^2]``, G: ``E[(f - 1)^2]``.
- ``wgan`` (Arjovsky et al. 2017): D: ``E[f] - E[r]``, G: ``-E[f]``.
- ``hinge`` (Lim & Ye 2017; Miyato et al. 2018): D: ``E[relu(1 - r)] + E[relu(1 + f)]``, G: ``-E[f]``.

Multi-scale discriminators return a list of logit maps, one per scale; every loss here accepts such a
list and averages the per-scale losses, so the loss scale does not grow with the number of scales.

Example:
    >>> import torch
    >>> real, fake = torch.randn(4, 1, 30, 30), torch.randn(4, 1, 30, 30)
    >>> d_loss("hinge", real, fake).shape, g_loss("hinge", fake).shape
    (torch.Size([]), torch.Size([]))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from i2i.errors import ConfigError

__all__ = ["GAN_KINDS", "d_loss", "g_loss", "gradient_penalty", "matching_aware_penalty", "r1_penalty"]

Logits = Tensor | Sequence[Tensor]


# --- per-kind losses on one logit tensor -----------------------------------------------------------------
# softplus(x) = log(1 + e^x) is evaluated without overflow, unlike log(sigmoid(x)), which underflows to
# log(0) = -inf once the discriminator is confident; it is also what BCE-with-logits reduces to:
#   BCE(x, 1) = -log(sigmoid(x)) = softplus(-x),   BCE(x, 0) = -log(1 - sigmoid(x)) = softplus(x).


def _vanilla_d(real: Tensor, fake: Tensor) -> Tensor:
    # Goodfellow 2014: D maximizes log D(x) + log(1 - D(G(z))), i.e. minimizes BCE(real, 1) + BCE(fake, 0).
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def _vanilla_g(fake: Tensor) -> Tensor:
    # Non-saturating G (Goodfellow 2014, sec. 3): maximize log D(G(z)) rather than minimize
    # log(1 - D(G(z))), whose gradient vanishes early in training when D rejects every fake.
    return F.softplus(-fake).mean()


def _lsgan_d(real: Tensor, fake: Tensor) -> Tensor:
    # Mao 2017, eq. 2 with targets a=0 (fake), b=1 (real); the paper's factor 1/2 is left out so that
    # the loss matches the reference pix2pix/CycleGAN code (MSE against 1 and 0).
    return (real - 1).square().mean() + fake.square().mean()


def _lsgan_g(fake: Tensor) -> Tensor:
    # Mao 2017, eq. 2 with c=1: G pulls its samples' scores onto the real target.
    return (fake - 1).square().mean()


def _wgan_d(real: Tensor, fake: Tensor) -> Tensor:
    # Arjovsky 2017: the critic maximizes E[D(x)] - E[D(G(z))], an estimate of the Wasserstein-1 distance
    # that is only valid for a 1-Lipschitz critic (weight clipping, gradient_penalty or spectral norm).
    return fake.mean() - real.mean()


def _hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    # Lim & Ye 2017 (Geometric GAN), Miyato 2018 (SN-GAN, eq. 16): a margin loss, so D stops pushing
    # scores once real > 1 and fake < -1.
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def _critic_g(fake: Tensor) -> Tensor:
    # WGAN and hinge share the generator loss: raise the critic's score on generated samples.
    return -fake.mean()


_D_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "vanilla": _vanilla_d,
    "lsgan": _lsgan_d,
    "wgan": _wgan_d,
    "hinge": _hinge_d,
}
_G_LOSSES: dict[str, Callable[[Tensor], Tensor]] = {
    "vanilla": _vanilla_g,
    "lsgan": _lsgan_g,
    "wgan": _critic_g,
    "hinge": _critic_g,
}

GAN_KINDS: tuple[str, ...] = tuple(_D_LOSSES)
"""Names accepted as ``kind`` by :func:`d_loss` and :func:`g_loss`."""


def _check_kind(kind: str) -> None:
    if kind not in _D_LOSSES:
        raise ConfigError(f"unknown adversarial loss kind {kind!r}; choose one of: {', '.join(GAN_KINDS)}")


def _as_list(logits: Logits, name: str) -> list[Tensor]:
    scales = [logits] if isinstance(logits, Tensor) else list(logits)
    if not scales:
        raise ValueError(f"{name} is an empty sequence; expected a tensor or one tensor per scale")
    return scales


def d_loss(kind: str, real_logits: Logits, fake_logits: Logits) -> Tensor:
    """Discriminator (critic) loss for one GAN kind; see the module docstring for the equations.

    Args:
        kind: one of :data:`GAN_KINDS`.
        real_logits: discriminator output on real images, or one output per scale.
        fake_logits: discriminator output on generated images (usually detached from the generator),
            with as many scales as ``real_logits``.

    Returns:
        The scalar loss to minimize, averaged over scales, in the logits' dtype.

    Raises:
        ConfigError: ``kind`` is not a known kind.
        ValueError: the number of scales of real and fake logits differ.

    Shape:
        - real_logits, fake_logits: any shape per scale, e.g. ``(B, 1, h, w)`` for a PatchGAN or ``(B,)``;
          real and fake may differ in batch size.
        - output: ``()``.

    Example:
        >>> d_loss("lsgan", torch.ones(2, 1), torch.zeros(2, 1))
        tensor(0.)
    """
    _check_kind(kind)
    reals, fakes = _as_list(real_logits, "real_logits"), _as_list(fake_logits, "fake_logits")
    if len(reals) != len(fakes):
        raise ValueError(f"got {len(reals)} scales of real logits but {len(fakes)} of fake logits")
    loss_fn = _D_LOSSES[kind]
    return sum(loss_fn(r, f) for r, f in zip(reals, fakes, strict=True)) / len(reals)


def g_loss(kind: str, fake_logits: Logits) -> Tensor:
    """Generator loss for one GAN kind; see the module docstring for the equations.

    Args:
        kind: one of :data:`GAN_KINDS`.
        fake_logits: discriminator output on generated images (not detached), or one output per scale.

    Returns:
        The scalar loss to minimize, averaged over scales, in the logits' dtype.

    Raises:
        ConfigError: ``kind`` is not a known kind.

    Shape:
        - fake_logits: any shape per scale, e.g. ``(B, 1, h, w)``.
        - output: ``()``.

    Example:
        >>> g_loss("wgan", [torch.full((2, 1), 2.0), torch.full((2, 1), 4.0)])
        tensor(-3.)
    """
    _check_kind(kind)
    fakes = _as_list(fake_logits, "fake_logits")
    loss_fn = _G_LOSSES[kind]
    return sum(loss_fn(f) for f in fakes) / len(fakes)


def _per_sample_grad(outputs: Tensor, inputs: Tensor) -> Tensor:
    # Summing the outputs over everything but the batch gives each sample's gradient in one backward pass,
    # because sample i's scores depend on sample i alone (true for critics without batch norm, which
    # WGAN-GP rules out anyway). create_graph=True makes the penalty itself differentiable w.r.t. D.
    (grad,) = torch.autograd.grad(
        outputs=outputs, inputs=inputs, grad_outputs=torch.ones_like(outputs), create_graph=True
    )
    return grad.flatten(1)  # (B, C*H*W)


def gradient_penalty(
    critic: Callable[[Tensor], Logits],
    real: Tensor,
    fake: Tensor,
    *,
    center: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3), unweighted.

    ``E[(||grad_x D(x_hat)||_2 - center)^2]`` with ``x_hat = eps * real + (1 - eps) * fake`` and
    ``eps ~ U(0, 1)`` drawn once per sample: it softly enforces the 1-Lipschitz constraint WGAN needs, on
    the lines between real and generated samples. The caller multiplies it by lambda (10 in the paper).

    ``real`` and ``fake`` are detached first: the penalty trains the critic only. When the critic returns
    a map of scores per sample (PatchGAN), the gradient is that of their sum, as in the pix2pix/CycleGAN
    reference code; a list of maps (multi-scale) averages the per-scale penalties.

    Args:
        critic: the discriminator; called once on ``x_hat``.
        real: real images.
        fake: generated images, same shape as ``real``.
        center: target gradient norm; 1 in the paper, 0 gives a zero-centered penalty.
        generator: random generator for ``eps``, for reproducible penalties.

    Returns:
        The scalar penalty, differentiable w.r.t. the critic's parameters.

    Raises:
        ValueError: ``real`` and ``fake`` differ in shape, or the critic's output is not batch-first.

    Shape:
        - real, fake: ``(B, C, H, W)`` (any ``(B, ...)`` works).
        - critic output: ``(B, ...)`` or a list of them.
        - output: ``()``.

    Example:
        >>> w = torch.tensor([3.0, 4.0])
        >>> gradient_penalty(lambda x: x @ w, torch.randn(8, 2), torch.randn(8, 2))  # ||w|| = 5
        tensor(16.)
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    batch = real.shape[0]
    # eps is drawn on the generator's device (a CPU generator cannot fill a CUDA tensor), then moved.
    eps_device = generator.device if generator is not None else real.device
    eps = torch.rand(
        (batch,) + (1,) * (real.dim() - 1), generator=generator, device=eps_device, dtype=real.dtype
    )
    eps = eps.to(real.device)  # (B, 1, 1, 1)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)

    scales = _as_list(critic(x_hat), "critic output")
    penalties = []
    for scores in scales:
        if scores.dim() == 0 or scores.shape[0] != batch:
            raise ValueError(
                f"the critic must return batch-first scores with batch size {batch}, "
                f"got shape {tuple(scores.shape)}"
            )
        grad_norm = torch.linalg.vector_norm(_per_sample_grad(scores, x_hat), dim=1)  # (B,)
        penalties.append((grad_norm - center).square().mean())
    return sum(penalties) / len(penalties)


def r1_penalty(real_logits: Logits, real: Tensor) -> Tensor:
    """R1 regularizer (Mescheder et al. 2018, eq. 9), unweighted.

    ``E[||grad_x D(x)||_2^2]`` over real images: penalizing the critic's gradient on the data keeps it from
    pushing the generator away from the data distribution once they match, which stabilizes training. The
    caller multiplies it by ``gamma / 2`` (the paper's weighting), often only every few steps (lazy R1).

    The gradient of each sample is that of the sum of its scores; a list of logit maps (multi-scale)
    averages the per-scale penalties.

    Args:
        real_logits: discriminator output on ``real``, or one output per scale.
        real: the real images the logits were computed from, with ``requires_grad=True`` set *before*
            the discriminator's forward pass.

    Returns:
        The scalar penalty, differentiable w.r.t. the discriminator's parameters.

    Raises:
        ValueError: ``real`` does not require grad, so no gradient w.r.t. it can exist.

    Shape:
        - real_logits: ``(B, ...)`` per scale.
        - real: ``(B, C, H, W)``.
        - output: ``()``.

    Example:
        >>> real = torch.randn(4, 2).requires_grad_(True)
        >>> r1_penalty(real @ torch.tensor([3.0, 4.0]), real)  # ||w||^2 = 25
        tensor(25.)
    """
    if not real.requires_grad:
        raise ValueError(
            "r1_penalty needs the gradient w.r.t. the real images, but `real` does not require grad: "
            "call real.requires_grad_(True) before running the discriminator on it"
        )
    scales = _as_list(real_logits, "real_logits")
    penalties = [_per_sample_grad(scores, real).square().sum(dim=1).mean() for scores in scales]
    return sum(penalties) / len(penalties)


def matching_aware_penalty(logits: Tensor, inputs: Sequence[Tensor], *, power: float = 6.0) -> Tensor:
    """Matching-aware gradient penalty (MA-GP, Tao et al. 2022, DF-GAN eq. 3-4), unweighted.

    ``E[||(grad_x D(x, e), grad_e D(x, e))||_2^p]`` on real images ``x`` with their *matching* sentences
    ``e``: it smooths the conditional critic around the real, matching pairs, in image and in text, which
    pulls generated images that match their text towards the data. DF-GAN weighs it by k = 2 with p = 6.

    Args:
        logits: The discriminator's scores of the real, matching pairs, ``(B,)`` or ``(B, ...)``.
        inputs: The tensors the gradient is taken w.r.t. (the images and the sentence embeddings), each
            batch-first and requiring grad before the discriminator ran on them.
        power: ``p``, the exponent of the joint gradient norm.

    Returns:
        The scalar penalty, differentiable w.r.t. the discriminator's parameters.

    Raises:
        ValueError: an input does not require grad.

    Shape:
        - logits: ``(B, ...)``; inputs: ``(B, ...)`` each; output: ``()``.

    Example:
        >>> x, e = torch.randn(4, 2).requires_grad_(True), torch.randn(4, 1).requires_grad_(True)
        >>> matching_aware_penalty(x @ torch.tensor([3.0, 0.0]) + 4 * e[:, 0], (x, e), power=2)  # 9 + 16
        tensor(25.)
    """
    inputs = list(inputs)
    if not all(t.requires_grad for t in inputs):
        raise ValueError(
            "matching_aware_penalty needs the gradient w.r.t. every input; call requires_grad_(True) on the "
            "images and sentence embeddings before running the discriminator on them"
        )
    grads = torch.autograd.grad(
        outputs=logits, inputs=inputs, grad_outputs=torch.ones_like(logits), create_graph=True
    )
    squared = sum(g.flatten(1).square().sum(dim=1) for g in grads)  # (B,) ||joint gradient||^2
    # (||g||^2)^(p/2) rather than sqrt(...)^p: the same value without sqrt's infinite slope at zero.
    return squared.pow(power / 2).mean()
