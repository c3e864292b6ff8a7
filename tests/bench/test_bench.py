"""``i2i bench``: the harness, FLOP counting, and tiny end-to-end runs of both benchmarks and the CLI.

Speed itself is never asserted here (the README's performance section reports measured ratios); these
tests check that the numbers are produced, consistent and written.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from i2i.bench.flops import count_flops, gpu_peak_tflops, mfu
from i2i.bench.harness import Timing, speedup, time_interleaved
from i2i.bench.infer import bench_infer
from i2i.bench.train import bench_config, bench_train
from i2i.cli import main
from i2i.errors import ConfigError
from i2i.train import conv_tuning

TINY_PIX2PIX = [
    "model.generator.name=unet",
    "model.generator.args={num_downs: 5, base_channels: 8, norm: batch, dropout: true}",
    "model.discriminator.args={base_channels: 8, num_layers: 2, norm: batch}",
]
TINY_CYCLEGAN = [
    "model.generator.name=resnet",
    "model.generator.args={base_channels: 4, num_blocks: 1, norm: instance}",
    "model.discriminator.args={base_channels: 4, num_layers: 2, norm: instance}",
]


def test_modes_are_timed_in_turns_after_their_warmup() -> None:
    calls: list[str] = []
    timings = time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        device=torch.device("cpu"),
        warmup=2,
        reps=3,
    )
    assert calls == ["a", "a", "b", "b", "a", "b", "a", "b", "a", "b"]
    assert len(timings["a"].times) == 3 and timings["a"].median <= max(timings["a"].times)


def test_speedup_by_medians_minimums_and_paired_ratios() -> None:
    fast, reference = Timing([1.0, 2.0, 4.0]), Timing([3.0, 2.0, 8.0])
    assert speedup(fast, reference) == {"median": 1.5, "min": 2.0, "paired_median": 2.0}
    fast.cpu_times, reference.cpu_times = [1.0, 1.0, 1.0], [3.0, 3.0, 1.0]
    assert speedup(fast, reference)["cpu_median"] == 3.0


def test_flops_of_a_convolution_match_the_formula() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 16, 16)
    assert count_flops(lambda: conv(x)) == 2 * 2 * 8 * 3 * 9 * 16 * 16
    assert (
        count_flops(lambda: conv(x).sum().backward())
        == 3 * 2 * 2 * 8 * 3 * 9 * 16 * 16 - 2 * 2 * 8 * 3 * 9 * 16 * 16
    )
    assert mfu(10**12, 2.0, 1.0) == pytest.approx(0.5)
    assert mfu(None, 2.0, 1.0) is None


def test_peak_table_knows_common_gpus() -> None:
    assert gpu_peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert gpu_peak_tflops("NVIDIA H100 PCIe", "bf16") == 756.0
    assert gpu_peak_tflops("NVIDIA H200", "tf32") == 494.7
    assert gpu_peak_tflops("NVIDIA A100-SXM4-40GB", "fp32") == 19.5
    assert gpu_peak_tflops("Some Future GPU", "bf16") is None


def test_pix2pix_at_128_uses_the_reference_unet_128() -> None:
    assert bench_config("pix2pix", 128, 1, "cpu").model.generator.name == "unet_128"
    assert bench_config("pix2pix", 256, 1, "cpu").model.generator.name == "unet_256"


@pytest.mark.parametrize(("method", "tiny"), [("pix2pix", TINY_PIX2PIX), ("cyclegan", TINY_CYCLEGAN)])
def test_train_benchmark_times_both_modes_and_their_ratio(method: str, tiny: list[str]) -> None:
    result = bench_train(method, size=32, batch=2, device="cpu", warmup=1, reps=2, overrides=tiny)
    assert set(result["modes"]) == {"fast", "reference"}
    for timing in result["modes"].values():
        assert len(timing["times_s"]) == 2 and timing["min_s"] <= timing["median_s"] <= timing["max_s"]
        assert timing["items_per_s"] == pytest.approx(2 * timing["per_s"])
    assert result["speedup"]["median"] == pytest.approx(
        result["modes"]["reference"]["median_s"] / result["modes"]["fast"]["median_s"]
    )
    assert result["flops_per_step"] > 0 and result["environment"]["torch"] == torch.__version__
    assert result["config"]["precision"] == "fp32"
    backends = result["config"]["conv_backends"]  # the CPU autotuner ran: which backend each shape got
    assert result["config"]["conv_autotune"] and sum(backends.values()) > 0
    assert set(backends) <= set(conv_tuning.BACKENDS)
    json.dumps(result)  # JSON-ready


def test_methods_without_a_reference_run_in_fast_mode_only() -> None:
    with pytest.raises(ConfigError, match="no reference step for 'gan'"):
        bench_train("gan", size=16, batch=2, device="cpu", modes=("fast", "reference"))


@pytest.mark.parametrize(("task", "net"), [("translate", "encoder_decoder"), ("upscale", "srvgg_compact")])
def test_infer_benchmark_runs_both_modes(task: str, net: str) -> None:
    result = bench_infer(task, size=32, batch=2, device="cpu", net=net, warmup=1, reps=2)
    assert set(result["modes"]) == {"fast", "reference"} and "speedup" in result
    assert result["flops_per_call"] > 0 and result["net"] == net
    with pytest.raises(ConfigError, match="--size 40 is not a multiple of 16"):
        bench_infer("translate", size=40, device="cpu", net="encoder_decoder", reps=1)


def test_cli_prints_the_report_and_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    argv = ["bench", "train", "pix2pix", "--size", "32", "--reps", "1", "--warmup", "0", "--device", "cpu"]
    argv += [a for item in TINY_PIX2PIX for a in ("--set", item)] + ["--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "train pix2pix (unet + patchgan) at 32x32, batch 1" in printed
    assert "speed-up fast/reference:" in printed and f"wrote {out}" in printed
    assert "CPU conv backends chosen (layer shapes): " in printed
    assert json.loads(out.read_text())["method"] == "pix2pix"
