"""Reports of ``i2i bench`` results: a short text table for people, the full JSON for files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from i2i.errors import ConfigError


def format_result(result: dict[str, Any]) -> str:
    """A few lines: what ran where, then one line per mode (median, min, max, rates, memory, MFU)."""
    env = result["environment"]
    cfg = result["config"]
    if result["kind"] == "train":
        what = f"train {result['method']} ({cfg['generator']} + {cfg['discriminator']})"
        unit, rate = "steps/s", "img/s"
    else:
        what = f"infer {result['task']} ({result['net']})"
        unit, rate = "calls/s", "img/s"
    switches = ", ".join(
        f"{k}={v}"
        for k, v in cfg.items()
        if k not in ("generator", "discriminator", "overrides", "conv_backends")
    )
    lines = [
        f"{what} at {result['size']}x{result['size']}, batch {result['batch']}",
        f"  on {env['device']} ({env['device_name']}), torch {env['torch']}, {env['torch_threads']} threads, "
        f"load average {env['load_average']}",
        f"  fast mode: {switches}; {result['warmup']} warm-up + {result['reps']} timed reps, interleaved",
    ]
    if cfg.get("conv_backends"):
        counts = ", ".join(f"{name} {n}" for name, n in sorted(cfg["conv_backends"].items()))
        lines.append(f"  CPU conv backends chosen (layer shapes): {counts}")
    for mode, t in result["modes"].items():
        memory = f", peak {t['peak_memory_mb']:.0f} MiB" if t["peak_memory_mb"] is not None else ""
        mfu = result["mfu"].get(mode)
        mfu_text = f", MFU {mfu:.1%}" if mfu is not None else ""
        lines.append(
            f"  {mode:<9} median {t['median_s'] * 1e3:9.1f} ms  min {t['min_s'] * 1e3:9.1f}  "
            f"max {t['max_s'] * 1e3:9.1f}  {t['per_s']:.3g} {unit}  {t['items_per_s']:.3g} {rate}"
            f"{memory}{mfu_text}"
        )
    if "speedup" in result:
        s = result["speedup"]
        lines.append(
            f"  speed-up fast/reference: {s['median']:.2f}x (medians), {s['paired_median']:.2f}x (median of "
            f"per-rep ratios), {s['min']:.2f}x (minimums)"
        )
        if "cpu_median" in s and result["environment"]["device"] == "cpu":
            lines.append(f"  by process CPU time: {s['cpu_median']:.2f}x (medians)")
    flops = result.get("flops_per_step") or result.get("flops_per_call")
    if flops:
        peak = result["peak_tflops"]
        peak_text = (
            f"{peak:.3g} TFLOP/s ({result['peak_tflops_source']})" if peak else result["peak_tflops_source"]
        )
        per = "step" if result["kind"] == "train" else "call"
        lines.append(f"  model FLOPs per {per}: {flops / 1e9:.1f} G; peak {peak_text}")
    if env.get("peak_rss_mb"):
        lines.append(f"  peak resident memory of the process: {env['peak_rss_mb']:.0f} MiB")
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    """Write ``result`` as indented JSON; names the path in the error if it cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--json {path}: cannot write the results ({exc.strerror or exc})") from exc
    return path
