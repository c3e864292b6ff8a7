"""``i2i bench infer``: inference throughput of a translator or an upscaler, fast beside reference.

The ``fast`` mode is the inference tool users run (:class:`~i2i.infer.translate.Translator`, or
:class:`~i2i.infer.upscale.Upscaler` with its tiling) on a copy of the net in the fast memory format (and
compiled with ``compile=True``), at ``precision`` (``auto``: bf16 autocast on CUDA). The ``reference``
mode is the plain way: the whole batch through the eager fp32 NCHW net under ``no_grad``. Both start
from the same CPU tensors (or image) and end with the result back on the CPU.

Example:
    >>> result = bench_infer("translate", size=512)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from i2i import nets
from i2i.bench import flops as flopcount
from i2i.bench.harness import environment, peak_rss_mb, time_interleaved, timing_results
from i2i.device import select_device, select_precision
from i2i.errors import ConfigError
from i2i.nets.layers import init_weights
from i2i.train import fastpath

TASKS = ("translate", "upscale")
MODES = ("fast", "reference")
DEFAULT_NETS = {"translate": "resnet_9blocks", "upscale": "rrdbnet"}  # CycleGAN G; RealESRGAN_x4plus


def load_bench_net(task: str, net: str | None, checkpoint: str | None) -> tuple[nn.Module, str]:
    """The net to time: a checkpoint's (or registry model's) generator, else a registered architecture
    with small random weights (speed does not depend on the values)."""
    if checkpoint:
        from i2i.hub import load_model_with_info

        model, info = load_model_with_info(checkpoint)
        return model, info.name
    name = net or DEFAULT_NETS[task]
    return init_weights(nets.build(name), "normal", 0.02), name


def bench_infer(
    task: str,
    *,
    size: int = 512,
    batch: int = 1,
    device: str = "auto",
    net: str | None = None,
    checkpoint: str | None = None,
    modes: Sequence[str] = MODES,
    precision: str = "auto",
    channels_last: str = "auto",
    compile: bool = False,
    tile: int = 512,
    warmup: int = 2,
    reps: int = 5,
    peak_tflops: float | None = None,
) -> dict[str, Any]:
    """Time inference on ``size`` x ``size`` inputs and report it as a JSON-ready dict.

    Args:
        task: ``translate`` (image-to-image generators) or ``upscale`` (super-resolution nets).
        size: Input side in pixels.
        batch: Images per call (translate); the upscaler takes one image per call and batches its tiles.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        net: A registered architecture (default ``resnet_9blocks`` / ``rrdbnet``) ...
        checkpoint: ... or a checkpoint, weights file or registry name to load instead.
        modes: ``fast`` and/or ``reference``.
        precision: Of the fast mode: ``auto``, ``fp32``, ``bf16``, ``fp16``.
        channels_last: Of the fast mode: ``auto`` (CUDA), ``on``, ``off``.
        compile: ``torch.compile`` the fast mode's net.
        tile: The upscaler's tile side (0: whole image).
        warmup: Untimed calls per mode first.
        reps: Timed calls per mode.
        peak_tflops: The device's peak for MFU when it is not in the table.
    """
    if task not in TASKS:
        raise ConfigError(f"bench infer: unknown task {task!r}; choose {' or '.join(TASKS)}")
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise ConfigError(
            f"bench: unknown mode {unknown[0] if unknown else '(none)'}; choose fast and/or reference"
        )
    if channels_last not in fastpath.CHANNELS_LAST:
        raise ConfigError(
            f"--channels-last: choose {', '.join(fastpath.CHANNELS_LAST)}, got {channels_last!r}"
        )
    device_ = select_device(device)
    resolved = select_precision(precision, device_)
    model, name = load_bench_net(task, net, checkpoint)
    model = model.to(device_).eval()
    multiple = int(getattr(model, "multiple", 1))
    if size % multiple:
        raise ConfigError(
            f"--size {size} is not a multiple of {multiple}, which {name} needs; use e.g. {multiple * 2}"
        )
    use_cl = fastpath.use_channels_last(channels_last, device_)
    calls: dict[str, Callable[[], Any]] = {}
    if task == "translate":
        images = torch.rand(batch, 3, size, size) * 2 - 1
        reference_input = images
        if "fast" in modes:
            from i2i.infer.translate import Translator

            translator = Translator(_fast_copy(model, use_cl, compile), device=device_, precision=resolved)
            calls["fast"] = lambda: translator.translate(images).cpu()
        items = batch
    else:
        from i2i.infer.upscale import Upscaler

        image = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
        reference_input = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        if "fast" in modes:
            upscaler = Upscaler(
                _fast_copy(model, use_cl, compile), device=device_, precision=resolved, tile=tile
            )
            calls["fast"] = lambda: upscaler.upscale_image(image)
        items = 1
    if "reference" in modes:

        @torch.no_grad()
        def reference() -> torch.Tensor:
            return model(reference_input.to(device_)).cpu()

        calls["reference"] = reference
    timings = time_interleaved(calls, device=device_, warmup=warmup, reps=reps)
    with torch.no_grad():
        flops = flopcount.count_flops(lambda: model(reference_input.to(device_)))
    peak, peak_source = flopcount.peak_tflops(device_, resolved, peak_tflops)
    fp32_peak = peak if resolved == "fp32" else flopcount.peak_tflops(device_, "fp32", None)[0]
    result: dict[str, Any] = {
        "kind": "infer",
        "task": task,
        "net": name,
        "size": size,
        "batch": items,
        "config": {"precision": resolved, "channels_last": use_cl, "compile": compile, "tile": tile},
        "environment": {**environment(device_), "peak_rss_mb": peak_rss_mb()},
        "warmup": warmup,
        "reps": reps,
        "flops_per_call": flops,
        **timing_results(
            timings, items, flops=flops, peak=peak, reference_peak=fp32_peak, peak_source=peak_source
        ),
    }
    return result


def _fast_copy(model: nn.Module, channels_last: bool, compile: bool) -> nn.Module:
    fast = fastpath.to_memory_format(copy.deepcopy(model), channels_last)
    return fastpath.compile_net(fast) if compile else fast
