"""What the tabs run: model loading through the cache, inference, and recovery from out-of-memory.

No Gradio here: the UI layer turns the :class:`~i2i.errors.I2IError` raised by these methods into the
one-line messages a visitor sees. Out of memory is survivable by design: the other cached models are
dropped, the GPU's cached blocks released, and the request retried (an upscale with tiles half as big,
down to :data:`MIN_TILE`); when nothing helps, the visitor is told what to change, and the next request
starts from a clean state.
"""

from __future__ import annotations

import copy
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from i2i.device import select_device, select_precision
from i2i.errors import I2IError
from i2i.infer.translate import Translator
from i2i_app.cache import ModelCache, release_gpu_memory
from i2i_app.catalog import Catalog
from i2i_app.options import AppSettings
from i2i_app.uploads import read_rgb, read_uint8, too_large

log = logging.getLogger(__name__)

MIN_TILE = 64
MAX_TILE = 4096
MAX_PROMPT = 500
CPU_CACHE_BYTES = 2 * 2**30
T = TypeVar("T")

# The inference module behind each tab; a tab whose module does not import is left out of the app.
TASK_MODULES = {
    "translate": "i2i.infer.translate",
    "upscale": "i2i.infer.upscale",
    "text2image": "i2i.infer.text2image",
}


class OutOfMemory(I2IError):
    """A request needed more memory than the device had, even after freeing what could be freed."""


def available_tasks() -> list[str]:
    """The tasks whose inference module imports in this installation."""
    tasks = []
    for task, module in TASK_MODULES.items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            level = logging.INFO if exc.name == module else logging.WARNING  # not in this version / broken
            log.log(level, "no %s tab: %s does not import (%s)", task, module, exc)
            continue
        except Exception as exc:  # a module that fails to import: no tab, and the log says why
            log.warning("no %s tab: %s does not import (%s: %s)", task, module, type(exc).__name__, exc)
            continue
        tasks.append(task)
    return tasks


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's failure (a plain RuntimeError)."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)
    )


class InferenceService:
    """Runs the app's models on one device, keeping them loaded between requests.

    Args:
        settings: Device, precision, cache size, tile size and pixel limit.
        catalog: The models the app offers.
    """

    def __init__(self, settings: AppSettings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.device = select_device(settings.device)
        self.precision = select_precision(settings.precision, self.device)
        budget = settings.cache_mb * 2**20 if settings.cache_mb else default_cache_bytes(self.device)
        self.cache = ModelCache(budget, on_evict=release_gpu_memory)
        self.tasks = available_tasks()

    # ------------------------------------------------------------------------------------------ tasks

    def translate(self, model_id: str | None, direction: str, image_path: str | Path) -> np.ndarray:
        """Translate an uploaded image; returns ``(H, W, 3)`` uint8 RGB of the input's size."""
        entry = self.catalog.get(model_id, "translate")
        if direction not in entry.directions:
            raise I2IError(
                f"direction: {entry.label} translates {' and '.join(entry.directions)} only; pick that"
            )
        image = read_rgb(image_path, self.settings.max_pixels)
        key = ("translate", entry.id, direction, str(self.device), self.precision)

        def load() -> Translator:
            two_way = len(entry.directions) > 1
            return Translator.from_file(
                entry.location,
                direction=direction if two_way else None,
                device=str(self.device),
                precision=self.precision,
            )

        def run() -> np.ndarray:
            return self.cache.get(key, load).translate_image(image)

        h, w = image.shape[:2]
        out = self._with_oom_retry(key, run, f"out of memory translating a {w}x{h} image; try a smaller one")
        return (out * 255.0 + 0.5).astype(np.uint8)

    def upscale(
        self, model_id: str | None, image_path: str | Path, *, tile: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Upscale an uploaded image; returns ``(input, output)`` as uint8 arrays of the same layout.

        ``tile`` (default: the settings') is the tile size to start with; out of memory halves it.
        """
        entry = self.catalog.get(model_id, "upscale")
        tile = self.settings.tile if tile is None else tile
        if not MIN_TILE <= tile <= MAX_TILE:
            raise I2IError(f"tile size: choose between {MIN_TILE} and {MAX_TILE} px, got {tile}")
        image = read_uint8(image_path, self.settings.max_pixels)
        h, w = image.shape[:2]
        if h * w * entry.scale**2 > self.settings.max_pixels:
            err = too_large(w * entry.scale, h * entry.scale, self.settings.max_pixels)
            raise I2IError(f"{err} (the x{entry.scale} result of this {w}x{h} image is too large)")
        key = ("upscale", entry.id, str(self.device), self.precision)
        module = importlib.import_module(TASK_MODULES["upscale"])

        def load() -> Any:
            return module.Upscaler.from_file(
                entry.location, device=str(self.device), precision=self.precision, tile=tile
            )

        cached = self._with_oom_retry(
            key, lambda: self.cache.get(key, load), f"out of memory loading {entry.label}"
        )
        upscaler = copy.copy(cached)  # this request's own tile size; the net is shared
        upscaler.tile = tile
        while True:
            try:
                return image, upscaler.upscale_image(image)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                self._recover(key)
                if upscaler.tile <= MIN_TILE:
                    raise OutOfMemory(
                        f"out of memory upscaling a {w}x{h} image even with {upscaler.tile} px tiles; "
                        "try a smaller image"
                    ) from None
                upscaler.tile = max(MIN_TILE, upscaler.tile // 2)
                log.warning("out of memory; retrying with %d px tiles", upscaler.tile)

    def text2image(self, model_id: str | None, prompt: str, seed: int, count: int) -> list[Any]:
        """``count`` images for ``prompt`` (PIL images), reproducible by ``seed``."""
        entry = self.catalog.get(model_id, "text2image")
        prompt = " ".join((prompt or "").split())
        if not prompt:
            raise I2IError("prompt: describe the image to generate, e.g. 'a small red bird with black wings'")
        if len(prompt) > MAX_PROMPT:
            raise I2IError(f"prompt: {len(prompt)} characters is too long; use at most {MAX_PROMPT}")
        if not 1 <= count <= self.settings.max_images:
            raise I2IError(f"count: choose between 1 and {self.settings.max_images} images")
        if seed < 0 or seed >= 2**63:
            raise I2IError("seed: use a whole number from 0 up")
        key = ("text2image", entry.id, str(self.device), self.precision)
        module = importlib.import_module(TASK_MODULES["text2image"])

        def load() -> Any:
            return module.TextToImage.from_file(
                entry.location, device=str(self.device), precision=self.precision
            )

        def run() -> list[Any]:
            return self.cache.get(key, load).generate(prompt, n=count, seed=int(seed))

        return self._with_oom_retry(key, run, f"out of memory generating {count} images; ask for fewer")

    # -------------------------------------------------------------------------------------- memory

    def _recover(self, key: Any) -> None:
        """After an out-of-memory error: keep only the model in use and release cached GPU blocks."""
        dropped = self.cache.evict_all_but(key)
        release_gpu_memory()
        log.warning("out of memory on %s; dropped %d other cached model(s)", self.device, dropped)

    def _with_oom_retry(self, key: Any, run: Callable[[], T], message: str) -> T:
        """``run()``; on out-of-memory free what can be freed and run it once more, then raise ``message``."""
        for _ in range(2):
            try:
                return run()
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
            self._recover(key)
        raise OutOfMemory(f"{message} (the server's {self.device.type.upper()} is out of memory)")

    # -------------------------------------------------------------------------------------- status

    def device_summary(self) -> str:
        """Device, precision and model memory, in Markdown for the Models tab."""
        if self.device.type == "cuda":
            props = torch.cuda.get_device_properties(self.device)
            device = f"{self.device} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
        else:
            device = str(self.device)
        precision = {
            "fp32": "fp32",
            "bf16": "bf16 (fp32 retry on non-finite output)",
            "fp16": "fp16 (fp32 retry on non-finite output)",
        }[self.precision]
        keys = self.cache.loaded()
        loaded = ", ".join(f"{k[1].split(':', 1)[1]} ({k[0]})" for k in keys) or "none yet"
        return (
            f"**Device:** {device} &nbsp; **Precision:** {precision}  \n"
            f"**Loaded models:** {loaded} ({self.cache.used_bytes / 2**20:.0f} of "
            f"{self.cache.budget_bytes / 2**20:.0f} MB)  \n"
            f"**Limits:** {self.settings.max_pixels / 1e6:.1f} Mpx per image, uploads up to "
            f"{self.settings.max_file_size}, {self.settings.concurrency} job(s) at once, "
            f"{self.settings.max_queue} waiting"
        )


def default_cache_bytes(device: torch.device) -> int:
    """Half the GPU's memory on CUDA (the rest is for activations), else :data:`CPU_CACHE_BYTES`."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory // 2
    return CPU_CACHE_BYTES
