"""Run by tests/train/test_distributed.py under torchrun: train tiny runs, save every rank's final state.

Usage: ``torchrun --standalone --nproc_per_node 2 distributed_worker.py SPEC_JSON OUT_DIR`` where SPEC_JSON
maps a run name to ``[recipe or null, [overrides...]]``, or ``[recipe, [overrides...], stop_at]`` for a
run interrupted at step ``stop_at`` and resumed by a new Trainer. Writes ``OUT_DIR/<name>.rank<R>.pt``
with the nets' parameters and buffers and the optimizers' states as this rank holds them after training.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from i2i.config import Config, load_config
from i2i.methods import build_method, first_items, method_class
from i2i.train import Trainer


def make_trainer(cfg: Config) -> Trainer:
    method = build_method(cfg)
    train_set, test_set = method_class(cfg.method).datasets(cfg)
    return Trainer(cfg, method, train_set, sample_batch=first_items(test_set, 2), progress=False)


def main() -> None:
    torch.set_num_threads(1)
    spec, out = json.loads(sys.argv[1]), Path(sys.argv[2])
    for name, (recipe, overrides, *stop_at) in spec.items():
        cfg = load_config(recipe, overrides=overrides)
        if stop_at:
            make_trainer(cfg).fit(stop_at=stop_at[0])
        trainer = make_trainer(cfg)
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
