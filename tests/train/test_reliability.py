"""Training that survives NaNs, full disks, bad images and untrusted files, with nothing lost."""

from __future__ import annotations

import builtins
import json
import logging
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.config import load_config
from i2i.data.sampler import ResumableBatchSampler
from i2i.errors import CheckpointError, DataError
from i2i.methods import Pix2Pix, build_method, first_items
from i2i.statefile import load_checkpoint, verify_checkpoint
from i2i.train import Trainer, TrainingError
from i2i.train.checkpoint import best_path, list_checkpoints
from i2i.train.loop import seed_everything


def make_trainer(overrides: list[str]) -> Trainer:
    cfg = load_config("demo_pix2pix", overrides=overrides)
    method = build_method(cfg)
    train_set, test_set = Pix2Pix.datasets(cfg)
    return Trainer(cfg, method, train_set, sample_batch=first_items(test_set, 2), progress=False)


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def params(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def all_finite(trainer: Trainer) -> bool:
    return all(
        bool(torch.isfinite(t).all())
        for net in trainer.method.nets.values()
        for t in net.state_dict().values()
    )


# ----------------------------------------------------------------------------- NaN / Inf


def test_a_non_finite_loss_skips_only_that_update_names_it_and_counts_it(tiny_overrides, monkeypatch, caplog):
    trainer = make_trainer([*tiny_overrides, "train.max_steps=4"])
    original, calls = Pix2Pix.d_step, []

    def d_step(self, batch, out):
        calls.append(1)
        terms = original(self, batch, out)
        if len(calls) == 2:  # the discriminator loss of step 2 only
            terms["d_gan"] = terms["d_gan"] * float("nan")
        return terms

    monkeypatch.setattr(Pix2Pix, "d_step", d_step)
    seed_everything(0)
    batches = trainer._batches()
    trainer.train_step(batches)
    trainer.step += 1
    d_before, g_before = params(trainer.method.nets["d"]), params(trainer.method.nets["g"])
    with caplog.at_level(logging.WARNING):
        trainer.train_step(batches)
    assert "non-finite loss d_gan=nan at step 2 (skipped the d update)" in caplog.text
    assert all(torch.equal(v, d_before[k]) for k, v in params(trainer.method.nets["d"]).items())
    assert not all(torch.equal(v, g_before[k]) for k, v in params(trainer.method.nets["g"]).items())
    assert trainer.nonfinite_steps == 1 and trainer.nonfinite_streak == 1
    trainer.train_step(batches)  # a finite step resets the streak, not the count
    assert trainer.nonfinite_steps == 1 and trainer.nonfinite_streak == 0
    assert trainer.counters() == {"skipped/nonfinite": 1}


def test_the_skip_count_is_in_the_metrics_log(tiny_overrides, monkeypatch):
    original, calls = Pix2Pix.g_step, []

    def g_step(self, batch, out):
        calls.append(1)
        terms = original(self, batch, out)
        if len(calls) == 2:
            terms["g_l1"] = terms["g_l1"] + float("inf")
        return terms

    monkeypatch.setattr(Pix2Pix, "g_step", g_step)
    result = make_trainer([*tiny_overrides, "train.max_steps=3"]).fit()
    logged = records(result.run_dir)
    assert [r.get("skipped/nonfinite", 0) for r in logged] == [0, 1, 1]
    assert result.counters == {"skipped/nonfinite": 1}


def test_a_nan_batch_does_not_poison_batchnorm_statistics(tiny_overrides, caplog):
    trainer = make_trainer([*tiny_overrides, "train.max_steps=2"])
    seed_everything(0)
    batch = next(trainer._batches())
    poisoned = {**batch, "a": torch.full_like(batch["a"], float("nan"))}
    with caplog.at_level(logging.WARNING):
        trainer.train_step(iter([poisoned]))
    assert "restored" in caplog.text and "poisoned buffer" in caplog.text
    assert all_finite(trainer)


def test_consecutive_non_finite_steps_stop_with_advice_and_save_nothing(tiny_overrides, caplog):
    trainer = make_trainer(
        [*tiny_overrides, "train.max_steps=20", "optim.g.lr=1e30", "train.max_nonfinite_steps=3"]
    )
    with pytest.raises(TrainingError) as err, caplog.at_level(logging.WARNING):
        trainer.fit()
    message = str(err.value)
    assert re.search(
        r"3 steps in a row had non-finite losses or gradients \(the last: non-finite loss d_gan=nan", message
    )
    assert "training stopped without saving" in message and "lower the learning rate" in message.lower()
    assert (
        "non-finite loss d_gan=nan, g_gan=nan, g_l1=nan at step 2 (skipped the d, g updates)" in caplog.text
    )
    assert not list_checkpoints(trainer.checkpoint_dir)


def test_a_model_with_non_finite_weights_is_never_saved(tiny_overrides):
    trainer = make_trainer([*tiny_overrides, "train.max_steps=1", "train.ema_decay=0.5"])
    trainer.fit()
    before = sorted(p.name for p in trainer.checkpoint_dir.iterdir())
    with torch.no_grad():
        next(trainer.ema["g"].shadow.parameters()).fill_(float("inf"))
    trainer.step = 2
    with pytest.raises(
        TrainingError, match=r"not saving a checkpoint at step 2: net ema\.g has non-finite weights"
    ):
        trainer.save()
    with torch.no_grad():
        next(trainer.method.nets["d"].parameters())[0] = float("nan")
    with pytest.raises(TrainingError, match="net d has non-finite weights"):
        trainer.save()
    assert sorted(p.name for p in trainer.checkpoint_dir.iterdir()) == before


def test_fp16_updates_skipped_by_the_grad_scaler_are_counted(tiny_overrides):
    trainer = make_trainer([*tiny_overrides, "train.max_steps=3", "train.max_nonfinite_steps=1"])
    # A CPU GradScaler whose first scale overflows the scaled loss: it skips those updates and backs off.
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=3.0e38)
    result = trainer.fit()
    assert trainer.amp_skipped >= 1 and trainer.nonfinite_steps == 0  # not a NaN step: no stop
    assert records(result.run_dir)[-1]["skipped/amp"] == trainer.amp_skipped
    assert all_finite(trainer)


# ----------------------------------------------------------------------------- retention: last K + best


def test_best_checkpoint_follows_the_lowest_metric(tiny_overrides):
    trainer = make_trainer(
        [
            *tiny_overrides,
            "train.max_steps=6",
            "train.save_every=1",
            "train.keep_last=2",
            "train.best_metric=g_l1",
        ]
    )
    result = trainer.fit()
    logged = records(result.run_dir)
    best_step = min(logged, key=lambda r: r["g_l1"])["step"]
    best = best_path(trainer.checkpoint_dir)
    assert verify_checkpoint(best)
    saved = load_checkpoint(best)
    assert saved["step"] == best_step and saved["best"]["step"] == best_step
    assert saved["best"]["value"] == pytest.approx(min(r["g_l1"] for r in logged))
    assert [p.name for p in list_checkpoints(trainer.checkpoint_dir)] == [
        "step_00000005.safetensors",
        "step_00000006.safetensors",
    ]


def test_an_unknown_best_metric_is_named(tiny_overrides, caplog):
    trainer = make_trainer([*tiny_overrides, "train.max_steps=1", "train.best_metric=fid"])
    with caplog.at_level(logging.WARNING):
        trainer.fit()
    assert "train.best_metric 'fid' is not a logged term (d_gan, g_gan, g_l1, lr)" in caplog.text
    assert not best_path(trainer.checkpoint_dir).exists()
    trainer.eval_metrics["fid"] = 12.5  # evaluation code reports its metrics here
    trainer.step += 1
    trainer.save()
    assert load_checkpoint(best_path(trainer.checkpoint_dir))["best"] == {
        "metric": "fid",
        "value": 12.5,
        "step": 2,
    }


# ----------------------------------------------------------------------------- disk full / read-only


def test_disk_full_mid_run_keeps_the_previous_checkpoint(tiny_overrides, monkeypatch):
    import i2i.statefile

    real, calls = i2i.statefile.save_file, []

    def save_file(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:
            Path(filename).write_bytes(b"partial")
            raise OSError(28, "No space left on device")
        real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(i2i.statefile, "save_file", save_file)
    trainer = make_trainer([*tiny_overrides, "train.max_steps=6", "train.save_every=2"])
    with pytest.raises(
        CheckpointError, match=r"step_00000004\.safetensors: No space left on device; free some"
    ):
        trainer.fit()
    (kept,) = list_checkpoints(trainer.checkpoint_dir)
    assert kept.name == "step_00000002.safetensors" and verify_checkpoint(kept)
    assert not list(trainer.checkpoint_dir.glob(".*"))  # temp files removed


def test_read_only_checkpoint_folder_mid_run(tiny_overrides, monkeypatch):
    trainer = make_trainer([*tiny_overrides, "train.max_steps=4", "train.save_every=2"])
    trainer.fit(stop_at=2)

    def read_only(*args, **kwargs):
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr("i2i.statefile.tempfile.mkstemp", read_only)
    again = make_trainer([*tiny_overrides, "train.max_steps=4", "train.save_every=2"])
    with pytest.raises(
        CheckpointError, match="Read-only file system; free some disk space or choose a writable"
    ):
        again.fit(resume="auto")
    assert [p.name for p in list_checkpoints(trainer.checkpoint_dir)] == ["step_00000002.safetensors"]


def test_an_unwritable_output_dir_is_a_clear_error(tiny_overrides, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    trainer = make_trainer([*tiny_overrides, "train.max_steps=1", f"output_dir={blocker}"])
    with pytest.raises(
        CheckpointError, match=r"cannot write to the run folder .*not_a_folder.*writable output_dir"
    ):
        trainer.fit()


# ----------------------------------------------------------------------------- bad images


def _pair_image(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (36, 72, 3), dtype=np.uint8))


@pytest.fixture
def folder_dataset(tmp_path) -> Path:
    """Eight aligned A|B pairs for training and two for testing."""
    root = tmp_path / "pairs"
    for split, count in (("train", 8), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            _pair_image(i + 100 * (split == "test")).save(root / split / f"{i:02d}.png")
    return root


def folder_overrides(tiny_overrides: list[str], root: Path, *extra: str) -> list[str]:
    return [
        *tiny_overrides,
        "data.source=folder",
        f"data.root={root}",
        "data.layout=aligned",
        "data.flip=false",
        *extra,
    ]


def third_step_file(root: Path) -> Path:
    """A training file first used by step 3 (batch size 2, seed 0)."""
    order = ResumableBatchSampler(8, 2, seed=0).epoch_order(0)
    return root / "train" / f"{order[4]:02d}.png"


def test_a_bad_image_stops_with_a_checkpoint_and_resumes_exactly_once_fixed(
    tiny_overrides, folder_dataset, tmp_path
):
    good = tmp_path / "good"
    shutil.copytree(folder_dataset, good)
    straight = make_trainer(folder_overrides(tiny_overrides, good, "train.max_steps=4", "name=straight"))
    straight.fit()

    bad = third_step_file(folder_dataset)
    original = bad.read_bytes()
    bad.write_bytes(original[: len(original) // 3])  # truncated
    overrides = folder_overrides(tiny_overrides, folder_dataset, "train.max_steps=4", "name=broken")
    with pytest.raises(DataError) as err:
        make_trainer(overrides).fit()
    message = str(err.value)
    assert f"{bad} cannot be decoded" in message
    assert "Training stopped at step 2; saved " in message and "step_00000002.safetensors" in message
    assert "--resume auto" in message and f"i2i data check {folder_dataset}" in message
    assert "--on-bad-image skip" in message

    bad.write_bytes(original)  # the user fixes the file and resumes
    resumed = make_trainer(overrides)
    resumed.fit(resume="auto")
    for name, net in straight.method.nets.items():
        for key, value in net.state_dict().items():
            assert torch.equal(value, resumed.method.nets[name].state_dict()[key]), key


def test_skip_mode_skips_counts_and_names_each_bad_file_once(tiny_overrides, folder_dataset, caplog):
    train = folder_dataset / "train"
    (train / "03.png").write_bytes(b"")  # zero bytes
    (train / "05.png").write_text("just some notes, not an image\n")  # a text file named .png
    (train / "06.png").write_bytes((train / "06.png").read_bytes()[:100])  # truncated
    overrides = folder_overrides(
        tiny_overrides, folder_dataset, "train.max_steps=8", "data.on_bad_image=skip"
    )
    with caplog.at_level(logging.WARNING):
        result = make_trainer(overrides).fit()  # two epochs: every file is met twice
    assert result.counters == {"skipped/bad_images": 3}
    assert records(result.run_dir)[-1]["skipped/bad_images"] == 3
    for name, reason in (
        ("03.png", "is empty"),
        ("05.png", "is a text file"),
        ("06.png", "cannot be decoded"),
    ):
        lines = [r.getMessage() for r in caplog.records if f"{name} " in r.getMessage()]
        assert len(lines) == 1 and reason in lines[0], lines


def test_skip_mode_resumes_exactly(tiny_overrides, folder_dataset, tmp_path):
    (folder_dataset / "train" / "02.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    base = folder_overrides(tiny_overrides, folder_dataset, "train.max_steps=6", "data.on_bad_image=skip")
    straight = make_trainer([*base, "name=straight"])
    straight.fit()
    make_trainer([*base, "name=split"]).fit(stop_at=3)
    resumed = make_trainer([*base, "name=split"])
    resumed.fit(resume="auto")
    assert resumed.bad_images == straight.bad_images and len(resumed.bad_images) == 1
    for name, net in straight.method.nets.items():
        for key, value in net.state_dict().items():
            assert torch.equal(value, resumed.method.nets[name].state_dict()[key]), key
    assert records(tmp_path / "straight") == records(tmp_path / "split")


def test_bad_image_policy_is_validated(tiny_overrides):
    with pytest.raises(Exception, match=r"data\.on_bad_image: 'ignore'; choose error or skip"):
        make_trainer([*tiny_overrides, "data.on_bad_image=ignore"])


# ----------------------------------------------------------------------------- untrusted files


class _Payload:
    """Unpickling this runs code: what a malicious file does. Here it only writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pickle ran')",)


def test_resuming_from_a_pickle_never_runs_its_code(tiny_overrides, tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"step": 1, "nets": _Payload(marker)}))
    trainer = make_trainer([*tiny_overrides, "train.max_steps=1"])
    with pytest.raises(CheckpointError, match=r"evil\.pth: not a readable safetensors file"):
        trainer.fit(resume=str(evil))
    # A pickle posing as the newest checkpoint of a run is skipped the same way.
    make_trainer([*tiny_overrides, "train.max_steps=1"]).fit()
    (trainer.checkpoint_dir / "step_00000009.safetensors").write_bytes(evil.read_bytes())
    again = make_trainer([*tiny_overrides, "train.max_steps=2"])
    again.resume("auto")
    assert again.step == 1
    assert not marker.exists()


def test_cli_on_bad_image_flag(tiny_overrides, folder_dataset, capsys):
    from i2i.cli import main

    (folder_dataset / "train" / "03.png").write_bytes(b"")
    sets = [
        a
        for item in folder_overrides(tiny_overrides, folder_dataset, "train.max_steps=4")
        for a in ("--set", item)
    ]
    assert main(["train", "demo_pix2pix", *sets]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1
        and "03.png is empty (0 bytes)" in err
        and "Training stopped at step" in err
    )

    assert main(["train", "demo_pix2pix", *sets, "--on-bad-image", "skip", "--resume", "auto"]) == 0
    out = capsys.readouterr().out
    assert "trained 4 steps" in out and "skipped: bad_images=1" in out


def test_a_bad_image_met_in_a_dataloader_worker(tiny_overrides, folder_dataset):
    import multiprocessing

    bad = third_step_file(folder_dataset)
    bad.write_text("hello")
    trainer = make_trainer(
        folder_overrides(tiny_overrides, folder_dataset, "train.max_steps=4", "data.num_workers=1")
    )
    with pytest.raises(DataError) as err:
        trainer.fit()
    message = str(err.value)  # the worker's traceback is not in it: the error itself is
    assert message.startswith(f"{bad} cannot be decoded (it is a text file") and "Traceback" not in message
    assert "Training stopped at step 2; saved" in message
    assert not multiprocessing.active_children()  # the workers were shut down, not left to hang
