"""Two processes with the gloo backend on CPU (torchrun): ranks stay in sync; rank 0's checkpoint resumes.

One torchrun launch trains a tiny Pix2Pix (batch norm, dropout), CycleGAN (instance norm, image pools,
identity loss), InfoGAN and WGAN-GP for a few steps in each of two processes
(tests/train/distributed_worker.py), which then save the weights and optimizer states they hold.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.config import load_config
from i2i.data.sampler import ResumableBatchSampler
from i2i.methods import build_method, first_items, method_class
from i2i.train import Trainer
from i2i.train.checkpoint import list_checkpoints

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("distributed_worker.py")
STEPS = 4
RUNS: dict[str, tuple[str, list[str]]] = {
    "pix2pix": (
        "demo_pix2pix",
        [
            "model.generator.name=unet",
            "model.generator.args={num_downs: 5, base_channels: 8, norm: batch, dropout: true}",
            "model.discriminator.args={base_channels: 8, num_layers: 2, norm: batch}",
            "data.synthetic={num_train: 12, num_test: 4, size: 32}",
            "data.source=synthetic",
            "data.load_size=36",
            "data.crop_size=32",
            "data.batch_size=2",
        ],
    ),
    "cyclegan": (
        "cyclegan_horse2zebra",
        [
            "data.source=synthetic",
            "data.synthetic={num_train: 10, num_test: 4, size: 16}",
            "data.load_size=18",
            "data.crop_size=16",
            "data.batch_size=1",
            "model.generator.name=resnet",
            "model.generator.args={base_channels: 4, num_blocks: 1, norm: instance, dropout: true}",
            "model.discriminator.args={base_channels: 4, num_layers: 1, norm: instance}",
            "model.pool_size=2",
        ],
    ),
    # InfoGAN's Q head runs through d.forward_info, a method the DDP wrapper passes on to the net.
    "infogan": (
        "infogan_mnist",
        [
            "data.source=digits",
            "data.batch_size=4",
            "model.generator.args={base_channels: 4, norm: batch}",
            "model.discriminator.args={base_channels: 4, norm: batch}",
        ],
    ),
    # A gradient penalty (double backward through D) and two D updates per G update.
    "wgan_gp": (
        "wgan_gp_mnist",
        [
            "data.source=digits",
            "data.batch_size=4",
            "train.n_critic=2",
            "model.generator.args={base_channels: 4, norm: batch}",
            "model.discriminator.args={base_channels: 4, norm: none}",
        ],
    ),
}
COMMON = [
    "data.num_workers=0",
    "train.log_every=1",
    "train.sample_every=2",
    "train.save_every=2",
    "train.keep_last=0",
    f"train.max_steps={STEPS}",
]


def overrides(name: str, out: Path, *extra: str) -> list[str]:
    return [*RUNS[name][1], *COMMON, f"output_dir={out}", f"name={name}", *extra]


def assert_same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{path}: differs by {(a.float() - b.float()).abs().max().item():.3g}"
    elif isinstance(a, Mapping):
        assert set(a) == set(b), f"{path}: keys differ"
        for key in a:
            assert_same(a[key], b[key], f"{path}/{key}")
    else:
        assert a == b, path


def folder_with_a_bad_image(out: Path) -> list[str]:
    """Eight A|B training pairs, one of them truncated: the file process 1 reads for step 4."""
    root = out / "pairs"
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            image = rng.integers(0, 256, (36, 72, 3), dtype=np.uint8)
            Image.fromarray(image).save(root / split / f"{i:02d}.png")
    seed = load_config(RUNS["pix2pix"][0]).seed
    fourth = list(itertools.islice(ResumableBatchSampler(8, 1, seed=seed, rank=1, world_size=2), 4))[-1]
    bad = root / "train" / f"{fourth[0][0]:02d}.png"
    bad.write_bytes(bad.read_bytes()[:100])
    (out / "bad_file.txt").write_text(str(bad))
    return [
        "data.source=folder",
        f"data.root={root}",
        "data.layout=aligned",
        "data.flip=false",
        "data.batch_size=1",
    ]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    spec = {name: [recipe, overrides(name, out)] for name, (recipe, _) in RUNS.items()}
    spec["cyclegan_resumed"] = [
        RUNS["cyclegan"][0],
        overrides("cyclegan", out, "name=cyclegan_resumed"),
        {"stop_at": 2},
    ]
    spec["bad_image"] = [
        RUNS["pix2pix"][0],
        overrides("pix2pix", out, "name=bad_image", *folder_with_a_bad_image(out)),
        {"expect_data_error": True},
    ]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*command, str(WORKER), json.dumps(spec), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


@pytest.mark.parametrize("name", sorted(RUNS))
def test_both_ranks_hold_identical_weights_and_optimizer_states(two_ranks: Path, name: str) -> None:
    rank0, rank1 = (torch.load(two_ranks / f"{name}.rank{r}.pt") for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["step"] == rank1["step"] == STEPS
    assert_same(rank0["params"], rank1["params"], "params")  # bit for bit
    assert_same(rank0["optimizers"], rank1["optimizers"], "optimizers")
    initial = build_method(load_config(RUNS[name][0], overrides=overrides(name, two_ranks)))
    start = {f"{n}.{k}": p for n, net in initial.nets.items() for k, p in net.named_parameters()}
    assert all(not torch.equal(start[k], v) for k, v in rank0["params"].items() if k.endswith("weight"))

    # Rank 0 alone wrote the run: checkpoints, one log line per step (averaged over ranks), samples.
    run = two_ranks / name
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == [
        "step_00000002.safetensors",
        "step_00000004.safetensors",
    ]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "step_00000002.png",
        "step_00000004.png",
    ]


@pytest.mark.parametrize("rank", [0, 1])
def test_a_run_resumed_on_two_processes_equals_the_uninterrupted_one(two_ranks: Path, rank: int) -> None:
    """Each rank resumes its own image pools and RNG states (the pools are full from step 2 on, so the
    fakes D sees at steps 3 and 4 come from them)."""
    straight, resumed = (
        torch.load(two_ranks / f"{name}.rank{rank}.pt") for name in ("cyclegan", "cyclegan_resumed")
    )
    assert resumed["step"] == STEPS
    assert_same(straight["params"], resumed["params"], "params")
    assert_same(straight["optimizers"], resumed["optimizers"], "optimizers")


def test_a_bad_image_on_one_process_stops_both_with_a_checkpoint(two_ranks: Path) -> None:
    bad = (two_ranks / "bad_file.txt").read_text()
    messages = [(two_ranks / f"bad_image.rank{r}.error.txt").read_text() for r in (0, 1)]
    assert messages[0] == messages[1]
    assert messages[0].startswith(f"process 1 of 2: {bad} cannot be decoded")
    assert "Training stopped at step 3; saved " in messages[0] and "--resume auto" in messages[0]
    checkpoints = list_checkpoints(two_ranks / "bad_image" / "checkpoints")
    assert [p.name for p in checkpoints][-1] == "step_00000003.safetensors"


@pytest.mark.parametrize("name", sorted(RUNS))
def test_rank0_checkpoint_resumes_on_one_process(two_ranks: Path, name: str, caplog) -> None:
    recipe = RUNS[name][0]
    longer = overrides(name, two_ranks, f"train.max_steps={STEPS + 2}")

    def make() -> Trainer:
        cfg = load_config(recipe, overrides=longer)
        train_set, test_set = method_class(cfg.method).datasets(cfg)
        return Trainer(
            cfg, build_method(cfg), train_set, sample_batch=first_items(test_set, 2), progress=False
        )

    trainer = make()
    trainer.resume("auto")
    assert trainer.step == STEPS and trainer.dist.world_size == 1
    assert "written by 2 process(es), resumed on 1" in caplog.text
    rank0 = torch.load(two_ranks / f"{name}.rank0.pt")
    nets = trainer.method.nets
    assert_same(
        rank0["params"], {f"{n}.{k}": p for n, net in nets.items() for k, p in net.named_parameters()}
    )
    assert_same(rank0["buffers"], {f"{n}.{k}": b for n, net in nets.items() for k, b in net.named_buffers()})

    result = make().fit(resume="auto")
    assert result.step == STEPS + 2
    assert all(torch.isfinite(torch.tensor(v)) for v in result.last_logs.values())
