"""FLOP counts and model FLOP utilisation (MFU) for ``i2i bench``.

MFU = (FLOPs the model needs per step) / (step time) / (the device's peak FLOP/s). The FLOPs are counted
by :class:`torch.utils.flop_counter.FlopCounterMode` over one eager step (convolutions and matrix
products, forward and backward: the arithmetic that matters; norms and activations are left out, as in
the usual definition). The peak is the vendor's dense figure for the precision used, from a table of
common GPUs, ``--peak-tflops``, or on a CPU a measured large fp32 matrix product. The count is that of
direct convolutions, so a step whose convolutions run by Winograd (the CPU autotuner's choice for 3x3 and
4x4 stride-1 layers, :mod:`i2i.nets.winograd`) can show more than 100%: it does fewer multiplications
than the model's direct count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

# Dense (no sparsity) peak TFLOP/s by precision, from the vendors' data sheets. fp32 is the plain FP32
# figure; with TF32 allowed (cuDNN convolutions do by default) the tensor cores reach the "tf32" one.
GPU_PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "H100 SXM": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0},
    "H100": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
    "L40S": {"fp32": 91.6, "tf32": 183.0, "bf16": 362.0, "fp16": 362.0},
    "L4": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0},
    "A10": {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0},
    "RTX 4090": {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2},
    "V100": {"fp32": 15.7, "tf32": 15.7, "bf16": 15.7, "fp16": 125.0},
    "T4": {"fp32": 8.1, "tf32": 8.1, "bf16": 8.1, "fp16": 65.0},
}


def count_flops(call: Callable[[], Any]) -> int:
    """FLOPs of the convolutions and matrix products that ``call`` runs (forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        call()
    return int(counter.get_total_flops())


def gpu_peak_tflops(name: str, precision: str) -> float | None:
    """The table's peak for a device name such as ``"NVIDIA H100 80GB HBM3"``; None if not listed."""
    upper = name.upper()
    for key, peaks in GPU_PEAK_TFLOPS.items():  # most specific keys come first
        if all(part in upper for part in key.upper().split()):
            if key == "H100" and "PCIE" in upper:
                continue
            return peaks.get(precision)
    return None


def measured_matmul_tflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048) -> float:
    """Achieved TFLOP/s of an ``n x n`` matrix product: a practical peak where no table applies."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    best = float("inf")
    for _ in range(5):  # the best rep: other jobs on the machine only ever make a rep slower
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e12


def peak_tflops(
    device: torch.device, precision: str, override: float | None = None
) -> tuple[float | None, str]:
    """The peak to divide by, and where it came from (``given``, ``table: H100``, ``measured fp32 matmul``).

    On CUDA an fp32 run is compared with the TF32 peak: cuDNN convolutions use TF32 by default.
    """
    if override:
        return override, "given (--peak-tflops)"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        key = "tf32" if precision == "fp32" and torch.backends.cudnn.allow_tf32 else precision
        value = gpu_peak_tflops(name, key)
        if value is not None:
            return value, f"table: {name}, {key} dense"
        return None, f"unknown GPU {name!r}: pass --peak-tflops"
    if precision != "fp32":
        return None, f"no {precision} peak for {device.type}"
    return measured_matmul_tflops(device), "measured fp32 2048x2048 matmul"


def mfu(flops_per_step: int | None, seconds_per_step: float, peak: float | None) -> float | None:
    """Model FLOP utilisation in [0, 1] (None when the FLOPs or the peak are unknown)."""
    if not flops_per_step or not peak:
        return None
    return flops_per_step / seconds_per_step / (peak * 1e12)
