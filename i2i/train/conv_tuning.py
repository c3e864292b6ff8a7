"""CPU convolution autotuning: per layer and input shape, oneDNN, im2col + GEMM or Winograd, whichever is
fastest.

PyTorch has two CPU convolution backends: oneDNN (its default whenever it applies) and the native
im2col + BLAS matrix product. Neither wins everywhere. oneDNN reorders the weights into its blocked layout
on every call, which dominates when the spatial size is tiny and the weights big: the inner levels of the
pix2pix U-Net (512-1024 channels at 1x1 to 16x16) run their forward and backward passes 1.5-6x faster
with im2col + GEMM, while the outer levels (large images, few channels) are faster with oneDNN. Measured
per layer on a 2-core EPYC, fp32, one thread (ms for forward + backward at 256 px):

=====================================  ======  =========
layer                                  oneDNN  im2col
=====================================  ======  =========
Conv 64->128, 128x128 input             40.8    66.2
ConvTranspose 1024->512, 4x4 input     108.3    40.2
ConvTranspose 512->512, 1x1 input       31.1     5.2
=====================================  ======  =========

3x3 stride-1 convolutions have a third candidate, Winograd F(4x4, 3x3) (:mod:`i2i.nets.winograd`), which
does a quarter of the multiplications: the 256-channel residual blocks of a CycleGAN generator run their
forward and backward passes 2.0x faster with it at 64x64 and 1.7x at 32x32.

Like ``cudnn.benchmark``, the tuner times the candidates on the first input of each shape (forward, and
backward when gradients are needed; in turns, best of three each) and keeps the fastest; an alternative
must beat oneDNN by :data:`MARGIN` to be chosen.
im2col is not timed for convolutions whose matrix product would have many rows (:func:`worth_tuning`),
and the Trainer tunes runs of :data:`MIN_STEPS` steps or more only, since the timing makes the first step
several times slower. Choices are kept per process (keyed by the layer's arithmetic, not its identity, so
two trainers in one process agree) and saved in checkpoints, so a resumed run computes exactly as the
uninterrupted one did. It is the same convolution either way; only the order of the floating-point sums
differs (for Winograd, about 1e-5 of the output's scale instead of 1e-7).
"""

from __future__ import annotations

import contextlib
import logging
import time
import types
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from i2i.nets import winograd

log = logging.getLogger(__name__)

MARGIN = 0.1  # an alternative must be this much faster than oneDNN to replace it: noise must not flip choices
REPS = 3
MAX_IM2COL_ROWS = 4096  # larger convolutions always measured faster with oneDNN (see worth_tuning)
MIN_STEPS = 200  # shorter runs (dry runs, tests) cannot win back the first step's timing: not tuned
ONEDNN, IM2COL, WINOGRAD = "onednn", "im2col", "winograd"
BACKENDS = (ONEDNN, IM2COL, WINOGRAD)

# Signature of a convolution call -> the backend chosen for it (shared by every tuned net of the process).
_CHOICES: dict[str, str] = {}


@contextlib.contextmanager
def _onednn_disabled() -> Iterator[None]:
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


def _params(module: nn.Module) -> tuple[list[int], list[int], list[int], bool, list[int], int]:
    transposed = isinstance(module, nn.ConvTranspose2d)
    output_padding = list(module.output_padding) if transposed else [0, 0]
    return (
        list(module.stride),
        list(module.padding),
        list(module.dilation),
        transposed,
        output_padding,
        module.groups,
    )


class _Im2colConvolution(torch.autograd.Function):
    """``aten.convolution`` forward and backward with oneDNN switched off (so the native kernels run).

    The backward is made of differentiable aten ops, so double backward (gradient penalties) works.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, params: tuple) -> Tensor:
        ctx.params = params
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, weight)
        with _onednn_disabled():
            return torch.ops.aten.convolution(x, weight, bias, *params)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        bias_sizes = (
            [weight.shape[1] * ctx.params[5] if ctx.params[3] else weight.shape[0]] if ctx.has_bias else None
        )
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        with _onednn_disabled():
            gx, gw, gb = torch.ops.aten.convolution_backward(grad, x, weight, bias_sizes, *ctx.params, mask)
        return gx, gw, gb if ctx.has_bias else None, None


def im2col_convolution(module: nn.Module, x: Tensor) -> Tensor:
    """``module(x)`` for a Conv2d / ConvTranspose2d, computed by the native im2col + GEMM kernels.

    Shape:
        As the module: (B, C_in, H, W) -> (B, C_out, H', W').
    """
    return _Im2colConvolution.apply(x, module.weight, module.bias, _params(module))


def tunable(module: nn.Module) -> bool:
    """Whether ``module`` is a 2-D convolution the tuner can take over (zero padding given as numbers)."""
    if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return False
    return module.padding_mode == "zeros" and not isinstance(module.padding, str)


def _signature(module: nn.Module, x: Tensor, grads: str) -> str:
    kind = "T" if isinstance(module, nn.ConvTranspose2d) else "C"
    stride, padding, dilation, _, output_padding, groups = _params(module)
    shape = "x".join(map(str, x.shape))
    geometry = (
        f"k{'x'.join(map(str, module.kernel_size))}s{stride}p{padding}d{dilation}o{output_padding}g{groups}"
    )
    bias = "b" if module.bias is not None else ""
    return f"{kind}{module.out_channels}{bias} {geometry} in{shape} {x.dtype} grads:{grads}"


def _grads_needed(module: nn.Module, x: Tensor) -> str:
    if not torch.is_grad_enabled():
        return "-"
    return ("x" if x.requires_grad else "") + ("w" if module.weight.requires_grad else "")


def _time_once(call: Any, backward: bool) -> float:
    start = time.perf_counter()
    out = call()
    if backward:
        out.backward(torch.ones_like(out))
    return time.perf_counter() - start


def _race(candidates: Mapping[str, Any], backward: bool) -> dict[str, float]:
    """Best times of the backends (oneDNN first), taken in turns so a busy spell of the machine slows all
    alike. Each turn calls a backend twice and times the second call: in a net, consecutive layers of one
    shape run on one backend, and a call right after another backend's (other caches, other thread-pool
    state) measured up to 30% slower for Winograd at 2 threads. A backend whose first timed call takes 3x
    oneDNN's is not timed again."""

    def warm_time(call: Any) -> float:
        _time_once(call, backward)
        return _time_once(call, backward)

    best = {name: warm_time(call) for name, call in candidates.items()}
    contenders = [name for name, t in best.items() if t <= 3 * best[ONEDNN]]
    for _ in range(REPS - 1):
        for name in contenders:
            best[name] = min(best[name], warm_time(candidates[name]))
    return best


def worth_tuning(module: nn.Module, x: Tensor) -> bool:
    """Whether im2col has a chance: its matrix product has few rows (batch x the smaller spatial size)
    while oneDNN reorders the whole weight tensor on every call. Larger ones are left to oneDNN untimed."""
    out_h, out_w = _output_size(module, x)
    rows = x.shape[0] * min(x.shape[2] * x.shape[3], out_h * out_w)
    return rows <= MAX_IM2COL_ROWS


def _output_size(module: nn.Module, x: Tensor) -> tuple[int, int]:
    stride, padding, dilation, transposed, output_padding, _ = _params(module)
    size = []
    for i in range(2):
        kernel = dilation[i] * (module.kernel_size[i] - 1) + 1
        if transposed:
            size.append((x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + kernel + output_padding[i])
        else:
            size.append((x.shape[2 + i] + 2 * padding[i] - kernel) // stride[i] + 1)
    return size[0], size[1]


def _benchmark(module: nn.Module, x: Tensor, grads: str) -> str:
    """Time the backends on copies of the input and weights; the real tensors and gradients are untouched."""
    use_im2col, use_winograd = worth_tuning(module, x), winograd.supports(module, x)
    if not (use_im2col or use_winograd):
        return ONEDNN
    backward = grads not in ("", "-")
    probe = x.detach().clone().requires_grad_("x" in grads)
    weight = module.weight.detach().clone().requires_grad_("w" in grads)
    bias = None if module.bias is None else module.bias.detach().clone().requires_grad_("w" in grads)
    params = _params(module)
    candidates: dict[str, Any] = {ONEDNN: lambda: torch.ops.aten.convolution(probe, weight, bias, *params)}
    if use_im2col:
        candidates[IM2COL] = lambda: _Im2colConvolution.apply(probe, weight, bias, params)
    if use_winograd:
        candidates[WINOGRAD] = lambda: winograd.winograd_conv2d(probe, weight, bias, module.padding)
    with torch.enable_grad() if backward else torch.no_grad():
        times = _race(candidates, backward)
    fastest = min(times, key=times.__getitem__)
    return fastest if times[fastest] < (1 - MARGIN) * times[ONEDNN] else ONEDNN


def _tuned_forward(self: nn.Module, x: Tensor, *args: Any) -> Tensor:
    original = self.__dict__["_untuned_forward"]
    if args or x.device.type != "cpu" or x.dim() != 4 or torch.is_autocast_enabled("cpu"):
        return original(x, *args)
    grads = _grads_needed(self, x)
    key = _signature(self, x, grads)
    choice = _CHOICES.get(key)
    if choice is None:
        choice = _CHOICES[key] = _benchmark(self, x, grads)
        log.debug("conv %s: %s", key, choice)
    if choice == IM2COL:
        return im2col_convolution(self, x)
    if choice == WINOGRAD:
        return winograd.winograd_convolution(self, x)
    return original(x)


def install(nets: Mapping[str, nn.Module]) -> int:
    """Tune every 2-D convolution of ``nets`` from now on (CPU inputs only); returns how many layers.

    The modules keep their class, parameters and state-dict keys; only their ``forward`` is wrapped.
    """
    count = 0
    for net in nets.values():
        for module in net.modules():
            if tunable(module) and "_untuned_forward" not in module.__dict__:
                module.__dict__["_untuned_forward"] = module.forward
                module.forward = types.MethodType(_tuned_forward, module)
                count += 1
    return count


def choices() -> dict[str, str]:
    """The choices made so far in this process (for checkpoints)."""
    return dict(_CHOICES)


def load_choices(saved: Mapping[str, str]) -> None:
    """Adopt choices saved in a checkpoint, so a resumed run uses the backends the original run used."""
    _CHOICES.update({k: v for k, v in saved.items() if v in BACKENDS})
