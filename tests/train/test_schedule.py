from __future__ import annotations

import math

import pytest

from i2i.errors import ConfigError
from i2i.train.schedule import lr_factor


def test_linear_matches_the_reference_per_epoch_rule():
    # junyanz: lr_l = 1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1), epoch_count = 1,
    # stepped once per epoch; here 2 steps per epoch, 100 + 100 epochs.
    factor = lr_factor("linear", total_steps=400, epochs=100, epochs_decay=100)
    reference = [1 - max(0, epoch + 1 - 100) / 101 for epoch in range(200)]
    assert [factor(step) for step in range(0, 400, 2)] == pytest.approx(reference)
    assert factor(1) == factor(0) == 1.0  # constant within an epoch
    assert factor(199) == 1.0 and factor(200) == pytest.approx(100 / 101)
    assert factor(399) == pytest.approx(1 / 101)


def test_linear_keeps_its_shape_when_the_run_is_shortened():
    factor = lr_factor("linear", total_steps=10, epochs=1, epochs_decay=1)
    assert [factor(s) for s in (0, 4, 5, 9)] == pytest.approx([1.0, 1.0, 0.5, 0.5])


def test_cosine_and_constant():
    cosine = lr_factor("cosine", total_steps=100, epochs=1, epochs_decay=1)
    assert cosine(0) == 1.0 and cosine(50) == pytest.approx(0.5) and cosine(100) == pytest.approx(0.0)
    assert cosine(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor("constant", total_steps=5, epochs=1, epochs_decay=1)(4) == 1.0


def test_unknown_schedule_names_the_field():
    with pytest.raises(ConfigError, match="train.lr_schedule: unknown schedule 'step'"):
        lr_factor("step", total_steps=1, epochs=1, epochs_decay=1)
