"""The offline demo: make the synthetic dataset, train Pix2Pix on it, translate held-out images.

It is the README's main job: no download, a few minutes on a 2-core CPU, and a result one can look at.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from i2i.config import load_config
from i2i.data import PairedDataset, save_image, write_synthetic_dataset
from i2i.errors import I2IError
from i2i.infer.translate import Translator
from i2i.methods import first_items, method_class, train
from i2i.train.logging import sample_grid

log = logging.getLogger(__name__)


_MARKER = ".i2i-demo"


def _clear_previous_demo(out: Path) -> None:
    """Remove an earlier demo's folder; refuse to touch a folder the demo did not make."""
    if not out.exists():
        return
    if not (out / _MARKER).is_file():
        if any(out.iterdir()):
            raise I2IError(
                f"{out} exists and was not made by `i2i demo`; choose another folder with --output"
            )
        return
    shutil.rmtree(out)


@dataclass
class DemoResult:
    """Where the demo wrote its results and how well the model did on held-out scenes."""

    run_dir: Path
    checkpoint: Path
    samples: Path
    translated_dir: Path
    heldout_l1: float
    baseline_l1: float
    seconds: float


@torch.no_grad()
def heldout_l1(generator: nn.Module, train_set: Dataset, test_set: Dataset) -> tuple[float, float]:
    """Mean L1 (in [-1, 1] units) of ``generator`` on the held-out pairs, and of the mean-image baseline.

    The baseline predicts, for every input, the average training target: what a model that ignores its
    input can best do under L1 (to first order). Learning shows as a model L1 well below it.
    """
    generator.eval()
    device = next(generator.parameters()).device
    mean_b = torch.stack([train_set[i]["b"] for i in range(len(train_set))]).mean(0)
    model_err, base_err = 0.0, 0.0
    for i in range(len(test_set)):
        item = test_set[i]
        fake = generator(item["a"].unsqueeze(0).to(device))[0].cpu()
        model_err += (fake - item["b"]).abs().mean().item()
        base_err += (mean_b - item["b"]).abs().mean().item()
    return model_err / len(test_set), base_err / len(test_set)


def _write_inputs(test_set: PairedDataset, folder: Path) -> list[Path]:
    paths = []
    for i in range(len(test_set)):
        item = test_set[i]
        path = folder / f"{item['name']}.png"
        save_image(item["a"], path)
        paths.append(path)
    return paths


def run_demo(
    output_dir: str | Path = "runs/demo", *, overrides: Iterable[str] = (), progress: bool | None = None
) -> DemoResult:
    """Generate the embedded dataset, train ``demo_pix2pix``, translate the held-out inputs.

    Args:
        output_dir: The run folder; holds ``data/``, ``checkpoints/``, ``samples/`` and ``translated/``.
        overrides: Extra ``--set`` overrides for the demo config (e.g. ``train.max_steps=50``).
        progress: Show the progress bar.
    """
    start = time.perf_counter()
    out = Path(output_dir)
    _clear_previous_demo(out)
    cfg = load_config("demo_pix2pix", overrides=[f"output_dir={out.parent}", f"name={out.name}", *overrides])
    syn = cfg.data.synthetic
    data_root = write_synthetic_dataset(
        out / "data", num_train=syn.num_train, num_test=syn.num_test, size=syn.size, seed=cfg.seed
    )
    cfg.data.source, cfg.data.root, cfg.data.layout = "folder", str(data_root), "aligned"
    (out / _MARKER).write_text("made by `i2i demo`; the next demo run replaces this folder\n")
    log.info("wrote %d training and %d held-out pairs to %s", syn.num_train, syn.num_test, data_root)

    result = train(cfg, progress=progress)

    translator = Translator.from_file(result.checkpoint, device=cfg.train.device)
    _, test_set = method_class(cfg.method).datasets(cfg)
    inputs = _write_inputs(test_set, out / "heldout_inputs")
    translated_dir = out / "translated"
    translator.translate_files(inputs, translated_dir, batch_size=8)

    plain = PairedDataset(data_root, cfg.data.train_split, layout="aligned")
    model_l1, base_l1 = heldout_l1(translator.net, plain, test_set)
    grid = out / "heldout_grid.png"
    _save_heldout_grid(translator, test_set, grid)
    return DemoResult(
        run_dir=result.run_dir,
        checkpoint=result.checkpoint,
        samples=grid,
        translated_dir=translated_dir,
        heldout_l1=model_l1,
        baseline_l1=base_l1,
        seconds=time.perf_counter() - start,
    )


def _save_heldout_grid(translator: Translator, test_set: Dataset, path: Path) -> None:
    batch = first_items(test_set, 8)
    output = translator.translate(batch["a"]).cpu()
    save_image(sample_grid({"input": batch["a"], "output": output, "target": batch["b"]}), path)
