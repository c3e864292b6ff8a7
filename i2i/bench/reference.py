"""The reference implementation's training step, run on i2i's nets: the baseline of ``i2i bench``.

This re-creates, without importing it, how junyanz/pytorch-CycleGAN-and-pix2pix trains by default:
``models/pix2pix_model.py`` and ``models/cycle_gan_model.py`` (``optimize_parameters``), ``networks.GANLoss``
(targets expanded to the prediction's shape, ``MSELoss`` for lsgan, ``BCEWithLogitsLoss`` for vanilla) and
``util/image_pool.py``. As there: fp32, eager (no compilation), NCHW tensors, ``torch.optim.Adam(params,
lr, betas)`` with torch's defaults for everything else (the per-tensor loop on CPU, ``foreach`` on CUDA),
``zero_grad()`` with its default, ``requires_grad`` toggled parameter by parameter, and the reference's
step order:

- Pix2Pix: G forward; D update on ``D(cat(a, G(a)).detach())`` and ``D(cat(a, b))``, two separate calls;
  G update with D frozen (a third D call, on the updated D).
- CycleGAN: the four G passes; G update first (identity passes, both Ds frozen), then both Ds on
  image-pool fakes, each on real and fake in separate calls.

The nets are the same objects and architectures i2i trains, so ``fast / reference`` time ratios measure
the training loop and its fast paths, not different models. When i2i's fast mode tunes the C allocator
(``train.malloc_tuning``), ``i2i bench`` runs every reference step with glibc's thresholds at their
default steady state (:data:`i2i.train.fastpath.GLIBC_STEADY_STATE`), as the reference process has them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from i2i.config import OptimizerConfig
from i2i.errors import ConfigError

REFERENCE_METHODS = ("pix2pix", "cyclegan")
# One training step on a batch; returns the total D and G losses (detached: reading them would sync a GPU).
Step = Callable[[Mapping[str, Any]], dict[str, Tensor]]


class GANLoss(nn.Module):
    """``networks.GANLoss``: the loss against a constant target map the size of the prediction.

    Args:
        mode: ``"lsgan"`` (mean squared error) or ``"vanilla"`` (binary cross-entropy on logits).
    """

    def __init__(self, mode: str) -> None:
        super().__init__()
        if mode not in ("lsgan", "vanilla"):
            raise ConfigError(
                f"model.gan_loss: the reference implementation has no {mode!r} loss to compare with; "
                "benchmark lsgan or vanilla (e.g. --set model.gan_loss=lsgan), or only the fast mode"
            )
        self.register_buffer("real_label", torch.tensor(1.0))
        self.register_buffer("fake_label", torch.tensor(0.0))
        self.loss = nn.MSELoss() if mode == "lsgan" else nn.BCEWithLogitsLoss()

    def forward(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        target = (self.real_label if target_is_real else self.fake_label).expand_as(prediction)
        return self.loss(prediction, target)


class ImagePool:
    """``util/image_pool.py``: a history of fakes; draws with Python's ``random`` as the reference does."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                index = random.randint(0, self.size - 1)
                out.append(self.images[index].clone())
                self.images[index] = image
            else:
                out.append(image)
        return torch.cat(out, 0)


def _set_requires_grad(nets: Iterable[nn.Module], flag: bool) -> None:
    for net in nets:
        for param in net.parameters():
            param.requires_grad = flag


def _adam(params: Iterable[nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Adam:
    # The reference passes lr and betas only; weight decay is 0 in its recipes.
    return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas)


def pix2pix_step(
    g: nn.Module, d: nn.Module, model: Any, optim: Mapping[str, OptimizerConfig], device: torch.device
) -> Step:
    """The reference Pix2Pix ``optimize_parameters`` over ``g`` and ``d`` (batches ``{"a", "b"}``)."""
    gan = GANLoss(model.gan_loss).to(device)
    l1 = nn.L1Loss()
    opt_g, opt_d = _adam(g.parameters(), optim["g"]), _adam(d.parameters(), optim["d"])

    def step(batch: Mapping[str, Any]) -> dict[str, Tensor]:
        real_a, real_b = batch["a"].to(device), batch["b"].to(device)
        fake_b = g(real_a)  # forward()
        _set_requires_grad([d], True)
        opt_d.zero_grad()
        pred_fake = d(torch.cat((real_a, fake_b), 1).detach())  # backward_D()
        pred_real = d(torch.cat((real_a, real_b), 1))
        loss_d = (gan(pred_fake, False) + gan(pred_real, True)) * 0.5
        loss_d.backward()
        opt_d.step()
        _set_requires_grad([d], False)
        opt_g.zero_grad()
        pred_fake = d(torch.cat((real_a, fake_b), 1))  # backward_G()
        loss_g = gan(pred_fake, True) + l1(fake_b, real_b) * model.lambda_l1
        loss_g.backward()
        opt_g.step()
        return {"d": loss_d.detach(), "g": loss_g.detach()}

    return step


def cyclegan_step(
    nets: Mapping[str, nn.Module], model: Any, optim: Mapping[str, OptimizerConfig], device: torch.device
) -> Step:
    """The reference CycleGAN ``optimize_parameters``; its G_A, G_B, D_A, D_B are g_ab, g_ba, d_b, d_a."""
    g_a, g_b, d_a, d_b = nets["g_ab"], nets["g_ba"], nets["d_b"], nets["d_a"]
    gan = GANLoss(model.gan_loss).to(device)
    cycle, idt = nn.L1Loss(), nn.L1Loss()
    if model.cycle_loss != "l1":
        raise ConfigError("model.cycle_loss: the reference CycleGAN uses l1; benchmark it with l1")
    opt_g = _adam(itertools.chain(g_a.parameters(), g_b.parameters()), optim["g"])
    opt_d = _adam(itertools.chain(d_a.parameters(), d_b.parameters()), optim["d"])
    pool_a, pool_b = ImagePool(model.pool_size), ImagePool(model.pool_size)
    lambda_a, lambda_b, lambda_idt = model.lambda_a, model.lambda_b, model.lambda_identity

    def backward_d_basic(d: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        loss_real = gan(d(real), True)
        loss_fake = gan(d(fake.detach()), False)
        loss = (loss_real + loss_fake) * 0.5
        loss.backward()
        return loss.detach()

    def step(batch: Mapping[str, Any]) -> dict[str, Tensor]:
        real_a, real_b = batch["a"].to(device), batch["b"].to(device)
        fake_b = g_a(real_a)  # forward()
        rec_a = g_b(fake_b)
        fake_a = g_b(real_b)
        rec_b = g_a(fake_a)
        _set_requires_grad([d_a, d_b], False)
        opt_g.zero_grad()
        loss_g = torch.zeros((), device=device)  # backward_G()
        if lambda_idt > 0:
            loss_g = loss_g + idt(g_a(real_b), real_b) * lambda_b * lambda_idt
            loss_g = loss_g + idt(g_b(real_a), real_a) * lambda_a * lambda_idt
        loss_g = loss_g + gan(d_a(fake_b), True) + gan(d_b(fake_a), True)
        loss_g = loss_g + cycle(rec_a, real_a) * lambda_a + cycle(rec_b, real_b) * lambda_b
        loss_g.backward()
        opt_g.step()
        _set_requires_grad([d_a, d_b], True)
        opt_d.zero_grad()
        loss_d = backward_d_basic(d_a, real_b, pool_b.query(fake_b))  # backward_D_A()
        loss_d = loss_d + backward_d_basic(d_b, real_a, pool_a.query(fake_a))  # backward_D_B()
        opt_d.step()
        return {"d": loss_d, "g": loss_g.detach()}

    return step


def reference_step(
    method: str,
    nets: Mapping[str, nn.Module],
    model: Any,
    optim: Mapping[str, OptimizerConfig],
    device: torch.device,
) -> Step:
    """The reference training step for ``method`` over ``nets`` (already on ``device``, in NCHW).

    Raises:
        ConfigError: the reference implementation has no such method (or loss) to compare with.
    """
    if method == "pix2pix":
        return pix2pix_step(nets["g"], nets["d"], model, optim, device)
    if method == "cyclegan":
        return cyclegan_step(nets, model, optim, device)
    raise ConfigError(
        f"bench: no reference step for method {method!r} (the reference implementation trains "
        f"{' and '.join(REFERENCE_METHODS)}); run --mode fast"
    )
