from __future__ import annotations

import json

import pytest
import torch

from i2i.config import load_config
from i2i.errors import CheckpointError
from i2i.methods import Pix2Pix, build_method, first_items, train
from i2i.train import Trainer, TrainingError
from i2i.train.checkpoint import list_checkpoints


def make_trainer(overrides, **kwargs):
    cfg = load_config("demo_pix2pix", overrides=overrides)
    method = build_method(cfg)
    train_set, test_set = Pix2Pix.datasets(cfg)
    return Trainer(cfg, method, train_set, sample_batch=first_items(test_set, 2), progress=False, **kwargs)


def weights(trainer):
    return {
        f"{n}.{k}": v.clone() for n, net in trainer.method.nets.items() for k, v in net.state_dict().items()
    }


def losses(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_losses_fall_and_files_are_written(tiny_overrides, tmp_path):
    trainer = make_trainer(
        [
            *tiny_overrides,
            *["train.max_steps=30", "train.sample_every=15", "train.save_every=10"],
            *["optim.g.lr=1e-3", "optim.d.lr=1e-3", "train.lr_schedule=constant"],
        ]
    )
    result = trainer.fit()
    records = losses(result.run_dir)
    assert len(records) == 30
    first, last = records[0]["g_l1"], sum(r["g_l1"] for r in records[-5:]) / 5
    assert last < 0.8 * first
    assert (result.run_dir / "config.yaml").read_text().startswith("method: pix2pix")
    assert sorted(p.name for p in (result.run_dir / "samples").glob("*.png")) == [
        "step_00000015.png",
        "step_00000030.png",
    ]
    # keep_last=2 in the demo recipe
    assert [p.name for p in list_checkpoints(result.run_dir / "checkpoints")] == [
        "step_00000020.safetensors",
        "step_00000030.safetensors",
    ]
    assert any((result.run_dir / "tensorboard").iterdir())


def test_resume_auto_skips_a_truncated_newest_checkpoint(tiny_overrides, caplog):
    trainer = make_trainer([*tiny_overrides, "train.max_steps=4", "train.save_every=2", "train.keep_last=0"])
    result = trainer.fit()
    ckpts = list_checkpoints(result.run_dir / "checkpoints")
    newest = ckpts[-1]
    newest.write_bytes(newest.read_bytes()[:1000])
    (result.run_dir / "checkpoints" / ".step_00000006.safetensors.abc.tmp").write_bytes(b"partial")
    again = make_trainer([*tiny_overrides, "train.max_steps=4"])
    again.resume("auto")
    assert again.step == 2
    assert "skipping unreadable checkpoint" in caplog.text
    assert not list((result.run_dir / "checkpoints").glob(".*.tmp"))


def test_resume_with_a_different_model_is_refused(tiny_overrides):
    make_trainer([*tiny_overrides, "train.max_steps=1"]).fit()
    other = make_trainer([*tiny_overrides, "train.max_steps=2", "model.lambda_l1=10"])
    with pytest.raises(CheckpointError, match=r"model\.lambda_l1 \(100\.0 in the checkpoint, 10\.0 now\)"):
        other.fit(resume="auto")


def test_non_finite_losses_are_skipped_then_stop_with_a_named_term(tiny_overrides):
    trainer = make_trainer(
        [*tiny_overrides, "train.max_steps=10", "optim.g.lr=1e30", "train.max_nonfinite_steps=2"]
    )
    with pytest.raises(
        TrainingError, match=r"2 steps in a row .*non-finite loss d_gan=nan.* at step 3\); training stopped"
    ):
        trainer.fit()
    assert trainer.nonfinite_steps == 2


def test_dataloader_workers_give_the_same_data(tiny_overrides):
    a = make_trainer([*tiny_overrides, "train.max_steps=2", "name=w0"])
    b = make_trainer([*tiny_overrides, "train.max_steps=2", "name=w1", "data.num_workers=1"])
    for x, y in zip(a._batches(), b._batches(), strict=False):
        assert torch.equal(x["a"], y["a"]) and torch.equal(x["b"], y["b"])
        if a.batches_seen == 3:
            break


def test_train_entry_point(tiny_overrides):
    cfg = load_config("demo_pix2pix", overrides=[*tiny_overrides, "train.max_steps=2"])
    result = train(cfg, progress=False)
    assert result.step == 2 and result.checkpoint.is_file()


def test_a_new_run_never_overwrites_an_earlier_one(tiny_overrides):
    result = make_trainer([*tiny_overrides, "train.max_steps=1"]).fit()
    before = result.checkpoint.read_bytes()
    with pytest.raises(CheckpointError, match="already holds checkpoints.*--resume auto"):
        make_trainer([*tiny_overrides, "train.max_steps=2"]).fit()
    assert result.checkpoint.read_bytes() == before


def test_resumed_run_drops_log_records_after_its_checkpoint(tiny_overrides):
    trainer = make_trainer([*tiny_overrides, "train.max_steps=4", "train.save_every=2", "train.keep_last=0"])
    result = trainer.fit()
    (result.run_dir / "checkpoints" / "step_00000004.safetensors").unlink()  # as if killed after step 4's log
    make_trainer([*tiny_overrides, "train.max_steps=4"]).fit(resume="auto")
    assert [r["step"] for r in losses(result.run_dir)] == [1, 2, 3, 4]


def test_stat_terms_are_logged_but_not_optimised(tiny_overrides, monkeypatch):
    original = Pix2Pix.d_step

    def d_step_with_stat(self, batch, out):
        terms = original(self, batch, out)
        terms["stat/huge"] = torch.tensor(float("inf"))  # summed into the loss, it would stop training
        return terms

    monkeypatch.setattr(Pix2Pix, "d_step", d_step_with_stat)
    trainer = make_trainer([*tiny_overrides, "train.max_steps=2"])
    result = trainer.fit()
    records = losses(result.run_dir)
    assert [r["stat/huge"] for r in records] == [float("inf")] * 2
