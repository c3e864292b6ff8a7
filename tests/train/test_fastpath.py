"""The fast-path switches: validation, resolution per device, and the CPU settings they apply."""

from __future__ import annotations

import platform

import pytest
import torch

from i2i.config import TrainConfig
from i2i.errors import ConfigError
from i2i.train import fastpath

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_channels_last_is_on_for_cuda_by_default_and_explicit_otherwise() -> None:
    assert fastpath.use_channels_last("auto", CUDA) and not fastpath.use_channels_last("auto", CPU)
    assert fastpath.use_channels_last(True, CPU) and fastpath.use_channels_last("on", CPU)
    assert not fastpath.use_channels_last(False, CUDA) and not fastpath.use_channels_last("off", CUDA)
    image = fastpath.image_to_memory_format(torch.zeros(2, 3, 4, 4), True)
    assert image.is_contiguous(memory_format=torch.channels_last)
    labels = torch.zeros(2, dtype=torch.long)
    assert fastpath.image_to_memory_format(labels, True) is labels


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("channels_last", "yes", "train.channels_last: unknown value 'yes'"),
        ("num_threads", -1, "train.num_threads"),
    ],
)
def test_bad_settings_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        fastpath.check_speed_config(TrainConfig(**{field: value}))


def test_fused_adam_is_used_on_cpu_where_torch_has_it() -> None:
    assert fastpath.fused_flag(False, CPU) is False
    flag = fastpath.fused_flag(True, CPU)
    assert flag is (True if fastpath.fused_adam_supported("cpu") else None)


@pytest.mark.skipif(platform.system() != "Linux", reason="glibc's mallopt")
def test_allocator_thresholds_can_be_tuned_and_restored() -> None:
    if fastpath._mallopt() is None:
        pytest.skip("not glibc")
    assert fastpath.set_malloc_thresholds(*fastpath.GLIBC_STEADY_STATE)
    assert fastpath.tune_malloc()
