"""Run by tests/train/test_distributed.py under torchrun: train tiny runs, save every rank's final state.

Usage: ``torchrun --standalone --nproc_per_node 2 distributed_worker.py SPEC_JSON OUT_DIR`` where SPEC_JSON
maps a run name to ``[recipe or null, [overrides...]]`` or ``[recipe, [overrides...], options]``; options:
``stop_at`` (interrupt the run there and resume it with a new Trainer) and ``expect_data_error`` (the run
stops on a bad image: write the message to ``OUT_DIR/<name>.rank<R>.error.txt``). Writes
``OUT_DIR/<name>.rank<R>.pt`` with the nets' parameters and buffers and the optimizers' states as this rank
holds them after training.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from i2i.config import Config, load_config
from i2i.errors import DataError
from i2i.methods import build_method, first_items, method_class
from i2i.train import Trainer


def make_trainer(cfg: Config) -> Trainer:
    method = build_method(cfg)
    train_set, test_set = method_class(cfg.method).datasets(cfg)
    return Trainer(cfg, method, train_set, sample_batch=first_items(test_set, 2), progress=False)


def main() -> None:
    torch.set_num_threads(1)
    spec, out = json.loads(sys.argv[1]), Path(sys.argv[2])
    for name, (recipe, overrides, *options) in spec.items():
        cfg = load_config(recipe, overrides=overrides)
        stop_at = options[0].get("stop_at") if options else None
        if stop_at:
            make_trainer(cfg).fit(stop_at=stop_at)
        trainer = make_trainer(cfg)
        if options and options[0].get("expect_data_error"):
            try:
                trainer.fit()
            except DataError as exc:
                (out / f"{name}.rank{trainer.dist.rank}.error.txt").write_text(str(exc))
            continue
        trainer.fit(resume="auto" if stop_at else None)
        method = trainer.method
        state = {
            "params": {
                f"{n}.{k}": p.detach().clone()
                for n, net in method.nets.items()
                for k, p in net.named_parameters()
            },
            "buffers": {
                f"{n}.{k}": b.clone() for n, net in method.nets.items() for k, b in net.named_buffers()
            },
            "optimizers": {g: o.state_dict()["state"] for g, o in trainer.optimizers.items()},
            "step": trainer.step,
            "world_size": trainer.dist.world_size,
        }
        torch.save(state, out / f"{name}.rank{trainer.dist.rank}.pt")


if __name__ == "__main__":
    main()
