"""The training fast paths: memory format, compilation, fused optimizer kernels, backend settings.

Each is a ``train.*`` switch (README "Performance" has the measurements behind the defaults). None changes
the model or the objective; they change how the same arithmetic is scheduled:

- ``channels_last``: NHWC weights and images, the layout of cuDNN's fastest (tensor-core) convolutions.
  On by default on CUDA (``auto``); on the CPU it measured no faster for these nets, so off there.
- ``compile``: ``torch.compile`` fuses norms, activations and padding around the convolutions. Off by
  default: the first steps take minutes to compile, and on the CPU it gained 3% on CycleGAN.
- ``fused_optimizer``: one fused Adam kernel over all parameters instead of a dozen element-wise passes
  per tensor (on CPU too, since torch 2.4): 0.2 s of a 0.9 s Pix2Pix step at 256 px on a 2-core CPU.
- ``conv_autotune``: per CPU convolution layer, oneDNN, im2col + GEMM or Winograd
  (:mod:`i2i.train.conv_tuning`).
- ``cudnn_benchmark``: cuDNN times its algorithms for the training crop once and keeps the fastest.
- ``num_threads``: CPU intra-op threads.
- ``malloc_tuning``: on Linux (glibc), keep freed memory for reuse (:func:`tune_malloc`). By default glibc
  maps allocations over 32 MiB fresh from the OS and trims the heap's top back to it, so every training
  step page-faults its large weight gradients and activations in again: 0.5 ms per MiB on a 2-core EPYC,
  a quarter of a Pix2Pix step at 128 px. PyTorch's CPU tuning guide suggests jemalloc or TCMalloc for the
  same reason; raising glibc's thresholds needs no extra library.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import platform
from collections.abc import Callable

import torch
from torch import nn

from i2i.config import TrainConfig
from i2i.errors import ConfigError

log = logging.getLogger(__name__)

# glibc mallopt parameters and the thresholds used: tuned, and glibc's own at their steady state (its
# dynamic mmap threshold grows to 32 MiB as large blocks are freed, the trim threshold is twice that).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
TUNED_MALLOC = (1 << 30, 1 << 31)
GLIBC_STEADY_STATE = (32 << 20, 64 << 20)
CHANNELS_LAST = ("auto", "on", "off")  # as the command line spells them; a config says auto, true or false


def check_speed_config(tcfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` naming the field for an unknown fast-path setting."""
    if tcfg.channels_last not in ("auto", True, False):
        raise ConfigError(
            f"train.channels_last: unknown value {tcfg.channels_last!r}; choose auto, true or false"
        )
    if tcfg.num_threads < 0:
        raise ConfigError(f"train.num_threads: must be 0 (torch's default) or more, got {tcfg.num_threads}")


def use_channels_last(setting: bool | str, device: torch.device) -> bool:
    """Resolve ``train.channels_last`` (or ``--channels-last``): ``auto`` is on for CUDA only."""
    if setting == "auto":
        return device.type == "cuda"
    return setting is True or setting == "on"


def configure_backends(tcfg: TrainConfig, device: torch.device) -> None:
    """Process-wide settings: CPU threads, the allocator on CPU, cuDNN autotuning on CUDA."""
    if tcfg.num_threads > 0:
        torch.set_num_threads(tcfg.num_threads)
    if device.type == "cpu" and tcfg.malloc_tuning:
        tune_malloc()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = tcfg.cudnn_benchmark


@functools.cache
def _mallopt() -> Callable[[int, int], int] | None:
    if platform.system() != "Linux":
        return None
    try:
        return ctypes.CDLL(None).mallopt  # glibc; musl has no mallopt
    except (OSError, AttributeError):
        return None


def set_malloc_thresholds(mmap_threshold: int, trim_threshold: int) -> bool:
    """Set glibc's mmap and trim thresholds (bytes); False where there is no glibc to set them in."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )


def tune_malloc() -> bool:
    """Serve allocations up to 1 GiB from the heap and keep up to 2 GiB of freed memory for reuse.

    Returns whether it applied (Linux with glibc). The process keeps its peak memory instead of giving it
    back between steps, which a training process would soon need again anyway.
    """
    return set_malloc_thresholds(*TUNED_MALLOC)


def to_memory_format(net: nn.Module, channels_last: bool) -> nn.Module:
    """Convert the 4-D weights of ``net`` to NHWC (in place) when ``channels_last``; returns ``net``."""
    return net.to(memory_format=torch.channels_last) if channels_last else net


def image_to_memory_format(value: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A (B, C, H, W) float tensor in NHWC memory order when ``channels_last``; others unchanged."""
    if channels_last and value.ndim == 4 and value.is_floating_point():
        return value.contiguous(memory_format=torch.channels_last)
    return value


@functools.cache
def fused_adam_supported(device_type: str) -> bool:
    """Whether this torch has a fused Adam kernel for ``device_type`` (CUDA; CPU since torch 2.4)."""
    try:
        param = nn.Parameter(torch.zeros(1, device=device_type))
        torch.optim.Adam([param], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def fused_flag(enabled: bool, device: torch.device) -> bool | None:
    """The ``fused=`` argument for Adam: True where supported and enabled, else None (torch's default)."""
    if not enabled:
        return False
    if fused_adam_supported(device.type):
        return True
    log.info(
        "no fused Adam kernel for %s in torch %s; using the default Adam", device.type, torch.__version__
    )
    return None


def compile_net(net: nn.Module) -> nn.Module:
    """Compile ``net`` in place (``nn.Module.compile``): its state-dict keys and identity stay the same."""
    net.compile()
    return net
