"""Timing for ``i2i bench``: warm-up, interleaved repetitions, statistics, peak memory, the environment.

Modes (e.g. i2i's fast step and the reference step) are timed in turns within one run, rep by rep, so a
machine whose speed drifts (other jobs, thermal limits, turbo) slows all modes alike and their *ratio*
stays meaningful even when the absolute times do not.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

import i2i
from i2i.bench import flops as flopcount


@dataclass
class Timing:
    """Seconds per call of one mode, and its peak memory.

    Attributes:
        times: Wall-clock seconds of each timed repetition, in order.
        cpu_times: CPU seconds this process used in each repetition (all its threads). On a CPU shared
            with other jobs, a one-thread run's CPU time measures the work itself, whatever the load.
        peak_memory_mb: Peak CUDA memory allocated during a call (MiB); None on the CPU, where the
            process-wide resident set (in the environment record) is all there is.
    """

    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    peak_memory_mb: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def summary(self, items_per_call: int) -> dict[str, Any]:
        """Median/min/max seconds, calls and items per second (by the median), peak memory, raw times."""
        return {
            "median_s": self.median,
            "min_s": min(self.times),
            "max_s": max(self.times),
            "per_s": 1.0 / self.median,
            "items_per_s": items_per_call / self.median,
            "cpu_median_s": statistics.median(self.cpu_times) if self.cpu_times else None,
            "peak_memory_mb": self.peak_memory_mb,
            "times_s": self.times,
            "cpu_times_s": self.cpu_times,
        }


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    modes: Mapping[str, Callable[[], Any]], *, device: torch.device, warmup: int, reps: int
) -> dict[str, Timing]:
    """Time each mode ``reps`` times, in turns, after ``warmup`` untimed calls each (compilation, autotuning).

    Args:
        modes: Name -> a call that does one unit of work (a training step, a batch of inference).
        device: Where the work runs (CUDA work is synchronised before and after each call).
        warmup: Untimed calls per mode before timing.
        reps: Timed calls per mode.

    Returns:
        Name -> :class:`Timing`.
    """
    if reps < 1 or warmup < 0:
        raise ValueError(f"reps must be >= 1 and warmup >= 0, got reps={reps}, warmup={warmup}")
    for call in modes.values():
        for _ in range(warmup):
            call()
    timings = {name: Timing() for name in modes}
    for _ in range(reps):
        for name, call in modes.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            synchronize(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            call()
            synchronize(device)
            timings[name].times.append(time.perf_counter() - start)
            timings[name].cpu_times.append(time.process_time() - cpu_start)
            if device.type == "cuda":
                peak = torch.cuda.max_memory_allocated(device) / 2**20
                timings[name].peak_memory_mb = max(timings[name].peak_memory_mb or 0.0, peak)
    return timings


def speedup(fast: Timing, reference: Timing) -> dict[str, float]:
    """How many times faster ``fast`` is: by the medians, by the minimums, and the median of the per-rep
    ratios (each rep times both modes back to back, so a slow spell of the machine cancels out there)."""
    ratios = {
        "median": reference.median / fast.median,
        "min": min(reference.times) / min(fast.times),
        "paired_median": statistics.median(r / f for r, f in zip(reference.times, fast.times, strict=True)),
    }
    if fast.cpu_times and reference.cpu_times and min(fast.cpu_times) > 0:
        ratios["cpu_median"] = statistics.median(reference.cpu_times) / statistics.median(fast.cpu_times)
    return ratios


def timing_results(
    timings: Mapping[str, Timing],
    items: int,
    *,
    flops: int | None,
    peak: float | None,
    reference_peak: float | None,
    peak_source: str,
) -> dict[str, Any]:
    """The per-mode part of a benchmark's JSON shared by ``bench train`` and ``bench infer``: summaries, the
    peak, model FLOP utilisation per mode (the reference mode, always fp32, against ``reference_peak``) and,
    with both modes, the speed-up."""
    result: dict[str, Any] = {
        "modes": {mode: t.summary(items) for mode, t in timings.items()},
        "peak_tflops": peak,
        "peak_tflops_source": peak_source,
        "mfu": {
            mode: flopcount.mfu(flops, t.median, peak if mode == "fast" else reference_peak)
            for mode, t in timings.items()
        },
    }
    if "fast" in timings and "reference" in timings:
        result["speedup"] = speedup(timings["fast"], timings["reference"])
    return result


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none): how busy the machine was."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MiB (all modes together), where the OS reports it."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 2**10


def environment(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on: device, versions, threads, load."""
    env: dict[str, Any] = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "torch": torch.__version__,
        "i2i": i2i.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": load_average(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
