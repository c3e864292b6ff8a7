"""Device and precision selection shared by training and inference."""

from __future__ import annotations

import logging

import torch

from i2i.errors import ConfigError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def select_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; otherwise the named device, checked."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device: {name!r} is not a device name (auto, cpu, cuda, cuda:1, mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available here; use auto or cpu")
    return device


def select_precision(name: str, device: torch.device) -> str:
    """Resolve ``auto``: bf16 on CUDA GPUs that support it, fp16 on older ones, fp32 elsewhere."""
    if name not in PRECISIONS:
        raise ConfigError(f"precision: unknown value {name!r}; choose one of {', '.join(PRECISIONS)}")
    if device.type != "cuda":
        if name in ("bf16", "fp16"):
            log.warning("%s mixed precision needs CUDA; using fp32 on %s", name, device)
        return "fp32"
    if name == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return name


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype for a resolved precision (None for fp32)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
