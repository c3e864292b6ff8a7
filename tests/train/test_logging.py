from __future__ import annotations

import json

import torch

from i2i.train.logging import MetricsLogger, sample_grid


def test_sample_grid_lays_out_rows_of_examples():
    images = {
        "input": -torch.ones(2, 1, 4, 4),
        "output": torch.zeros(2, 3, 4, 4),
        "target": torch.ones(2, 3, 4, 4),
    }
    grid = sample_grid(images)
    assert grid.shape == (3, 2 * 4 + 3 * 2, 3 * 4 + 4 * 2)  # 2 rows, 3 columns, padding 2
    assert grid[:, 2, 2].tolist() == [-1.0, -1.0, -1.0]  # gray input expanded to RGB
    assert grid[:, 2, 2 + 4 + 2].tolist() == [0.0, 0.0, 0.0]


def test_metrics_logger_writes_jsonl_and_drops_a_torn_line(tmp_path):
    logger = MetricsLogger(tmp_path, tensorboard=False)
    logger.log(1, {"g_l1": torch.tensor(2.5)})
    logger.log(2, {"g_l1": 1.5})
    logger.close()
    with (tmp_path / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 3, "g_')  # a crash mid-write
    MetricsLogger(tmp_path, tensorboard=False, after_step=2).close()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records == [{"step": 1, "g_l1": 2.5}, {"step": 2, "g_l1": 1.5}]
