"""``i2i bench train``: training steps per second of a method, i2i's step beside the reference step.

The ``fast`` mode is :meth:`i2i.train.Trainer.train_step` itself, with the config's fast paths (the
``train.*`` switches); the ``reference`` mode is :mod:`i2i.bench.reference` on a second copy of the same
nets, initialised identically. Both get the same batch, already in memory: the data pipeline is not
part of the step. Modes alternate rep by rep (see :mod:`i2i.bench.harness`).

Example:
    >>> result = bench_train("cyclegan", size=256, batch=1)  # doctest: +SKIP
    >>> result["speedup"]["median"]  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import copy
import logging
import tempfile
from collections.abc import Sequence
from typing import Any

import torch

from i2i.bench import flops as flopcount
from i2i.bench.harness import environment, peak_rss_mb, time_interleaved, timing_results
from i2i.bench.reference import REFERENCE_METHODS, reference_step
from i2i.config import CONFIG_DIR, Config, load_config
from i2i.errors import ConfigError
from i2i.methods import build_method, first_items, method_class
from i2i.train import Trainer, conv_tuning, fastpath
from i2i.train.loop import to_device

log = logging.getLogger(__name__)

MODES = ("fast", "reference")
# The shipped recipe each method is benchmarked with (the reference's default architecture for it).
RECIPES = {
    "pix2pix": "pix2pix_facades",
    "cyclegan": "cyclegan_horse2zebra",
    "gan": "dcgan_mnist",
    "srgan": "srgan_div2k_x4",
    "text2image": "text2image_cub",
}


def bench_config(method: str, size: int, batch: int, device: str, overrides: Sequence[str] = ()) -> Config:
    """The run config benchmarked: the method's recipe at ``size`` and ``batch`` on synthetic data.

    A Pix2Pix ``unet_256`` generator becomes the reference's ``unet_128`` at sizes that are multiples of
    128 but not of 256 (the reference trains 128 px data with it).
    """
    recipe = CONFIG_DIR / f"{RECIPES.get(method, '')}.yaml"
    path = recipe if method in RECIPES and recipe.is_file() else None
    cfg = load_config(
        path,
        [
            *([] if path else [f"method={method}"]),
            f"data.crop_size={size}",
            f"data.load_size={size}",
            f"data.batch_size={batch}",
            "data.source=synthetic",
            f"data.synthetic={{num_train: {batch}, num_test: 1, size: {size}}}",
            "data.num_workers=0",
            f"train.device={device}",
            *overrides,
        ],
    )
    generator = getattr(cfg.model, "generator", None)
    unet_256 = method == "pix2pix" and generator is not None and generator.name == "unet_256"
    if unet_256 and size % 256 and size % 128 == 0:
        generator.name = "unet_128"
    return cfg


def bench_train(
    method: str,
    *,
    size: int = 256,
    batch: int = 1,
    device: str = "auto",
    modes: Sequence[str] = MODES,
    warmup: int = 2,
    reps: int = 5,
    overrides: Sequence[str] = (),
    peak_tflops: float | None = None,
) -> dict[str, Any]:
    """Time training steps of ``method`` in the requested modes and report them as a JSON-ready dict.

    Args:
        method: A registered method (``pix2pix``, ``cyclegan``, ...).
        size: Training crop, in pixels (square).
        batch: Images per step (``data.batch_size``).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        modes: ``fast`` and/or ``reference`` (pix2pix and cyclegan only).
        warmup: Untimed steps per mode first (compilation, cuDNN autotuning, allocator warm-up).
        reps: Timed steps per mode.
        overrides: ``--set`` overrides of the run config, e.g. ``train.compile=true``.
        peak_tflops: The device's peak, for MFU, when it is not in :data:`i2i.bench.flops.GPU_PEAK_TFLOPS`.

    Returns:
        ``{"kind": "train", "method", "size", "batch", "config", "environment", "modes": {mode: timing
        summary}, "speedup": {...}, "flops_per_step", "peak_tflops", "mfu": {mode: ...}}``.
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise ConfigError(
            f"bench: unknown mode {unknown[0] if unknown else '(none)'}; choose fast and/or reference"
        )
    if "reference" in modes and method not in REFERENCE_METHODS:
        raise ConfigError(
            f"bench: no reference step for {method!r} (only {', '.join(REFERENCE_METHODS)}); use --mode fast"
        )
    cfg = bench_config(method, size, batch, device, overrides)
    with tempfile.TemporaryDirectory(prefix="i2i-bench-") as tmp:
        cfg.output_dir = tmp
        built = build_method(cfg)
        train_set, _ = method_class(cfg.method).datasets(cfg)
        cpu_batch = first_items(train_set, batch)
        trainer = Trainer(cfg, built, train_set, progress=False)
        device_ = trainer.device
        # The Trainer tuned the allocator (train.malloc_tuning); the reference runs with glibc's defaults.
        tuned_malloc = device_.type == "cpu" and cfg.train.malloc_tuning and fastpath.tune_malloc()
        calls: dict[str, Any] = {}
        if "fast" in modes:
            batches = [cpu_batch] * trainer.batches_per_step

            def fast() -> None:
                if tuned_malloc:
                    fastpath.tune_malloc()
                trainer.train_step(iter(batches))

            calls["fast"] = fast
        reference_nets = None
        if "reference" in modes:
            reference_nets = {n: net.to(device_) for n, net in build_method(cfg).nets.items()}
            ref_batch = to_device(cpu_batch, device_)
            step = reference_step(cfg.method, reference_nets, cfg.model, cfg.optim, device_)

            def reference() -> None:
                if tuned_malloc:
                    fastpath.set_malloc_thresholds(*fastpath.GLIBC_STEADY_STATE)
                step(ref_batch)

            calls["reference"] = reference
        timings = time_interleaved(calls, device=device_, warmup=warmup, reps=reps)
        flops = _count_flops(cfg, cpu_batch, device_, reference_nets is not None)
    precision = trainer.precision
    peak, peak_source = flopcount.peak_tflops(device_, precision, peak_tflops)
    ref_peak = peak if precision == "fp32" else flopcount.peak_tflops(device_, "fp32", None)[0]
    result: dict[str, Any] = {
        "kind": "train",
        "method": method,
        "size": size,
        "batch": batch,
        "config": {
            "generator": _net_name(cfg, "generator"),
            "discriminator": _net_name(cfg, "discriminator"),
            "precision": precision,
            "channels_last": trainer.channels_last,
            "compile": cfg.train.compile,
            "fused_optimizer": cfg.train.fused_optimizer,
            "conv_autotune": trainer.conv_autotune,
            # How many layer shapes (with and without gradients) each backend was chosen for.
            "conv_backends": dict(collections.Counter(conv_tuning.choices().values())),
            "malloc_tuning": bool(tuned_malloc),
            "overrides": list(overrides),
        },
        "environment": {**environment(device_), "peak_rss_mb": peak_rss_mb()},
        "warmup": warmup,
        "reps": reps,
        "flops_per_step": flops,
        **timing_results(
            timings, batch, flops=flops, peak=peak, reference_peak=ref_peak, peak_source=peak_source
        ),
    }
    return result


def _net_name(cfg: Config, role: str) -> str | None:
    net = getattr(cfg.model, role, None)
    return None if net is None else net.name


def _count_flops(cfg: Config, cpu_batch: Any, device: torch.device, has_reference: bool) -> int | None:
    """FLOPs of one step on fresh nets, counted on the eager reference step (else an eager i2i step)."""
    cfg = copy.deepcopy(cfg)
    cfg.train.compile = False
    try:
        if has_reference:
            nets = {n: net.to(device) for n, net in build_method(cfg).nets.items()}
            step = reference_step(cfg.method, nets, cfg.model, cfg.optim, device)
            batch = to_device(cpu_batch, device)
            return flopcount.count_flops(lambda: step(batch))
        train_set, _ = method_class(cfg.method).datasets(cfg)
        trainer = Trainer(cfg, build_method(cfg), train_set, progress=False)
        batches = [cpu_batch] * trainer.batches_per_step
        return flopcount.count_flops(lambda: trainer.train_step(iter(batches)))
    except Exception as exc:  # a count is a nice-to-have: never lose the timings for it
        log.warning("could not count FLOPs: %s", exc)
        return None
