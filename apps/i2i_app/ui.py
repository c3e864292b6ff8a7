"""The Gradio Blocks: the Translate, Upscale, Text to image and Models tabs.

Every event handler goes through :func:`user_errors`: a visitor sees one line saying what to change, never
a traceback or a path on the server (those stay in the server log). Images come in through
:func:`checked_image`, which refuses an oversized image from its header before anything decodes it.
Components carry ``elem_id``s (``tr-*``, ``up-*``, ``t2i-*``, ``models-*``) for the browser tests.
"""

from __future__ import annotations

import atexit
import functools
import html
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from i2i import hub
from i2i.errors import I2IError
from i2i_app.catalog import Catalog, ModelEntry
from i2i_app.options import AppSettings
from i2i_app.service import InferenceService
from i2i_app.uploads import checked_size

log = logging.getLogger(__name__)

EXAMPLES = Path(__file__).parent / "examples"
TRANSLATE_EXAMPLES = ("facade_labels.png", "astronaut.jpg", "cat.jpg")
UPSCALE_EXAMPLES = ("astronaut_face_128.png", "coffee_128.png")
PROMPT_EXAMPLES = ("a small bird with a red head and black wings", "a yellow bird with a short beak")
OUTPUT_MAX_AGE_S = 600
IMAGE_HEIGHT = 360
TABS = {"translate": "Translate", "upscale": "Upscale", "text2image": "Text to image"}


def public_message(exc: BaseException, hidden: Sequence[Path | str] = ()) -> str:
    """``exc`` as one line of escaped text (Gradio renders messages as HTML), server folders removed."""
    text = " ".join(str(exc).split())
    for folder in sorted((str(f) for f in hidden if f), key=len, reverse=True):
        text = text.replace(folder.rstrip(os.sep) + os.sep, "").replace(folder, "<server>")
    return html.escape(text)


def user_errors(hidden: Sequence[Path | str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a handler so that every failure reaches the browser as a one-line ``gr.Error``."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def handler(*args: Any) -> Any:
            try:
                return fn(*args)
            except gr.Error:
                raise
            except I2IError as exc:
                log.info("%s refused: %s", fn.__name__, exc)
                raise gr.Error(public_message(exc, hidden), print_exception=False) from None
            except Exception:
                log.exception("%s failed", fn.__name__)
                raise gr.Error(
                    "internal error; nothing about it is shown here, the server's log has the details",
                    print_exception=False,
                ) from None

        return handler

    return decorate


def checked_image(max_pixels: int, **kwargs: Any) -> gr.Image:
    """An upload-only image input that hands handlers the file path, its pixel count checked first.

    Gradio's own preprocessing opens the file with PIL, whose decompression-bomb guard raises an error a
    visitor would only see as "Error"; the check runs before it, from the header, and says why. It wraps
    the instance's ``preprocess`` (Gradio calls ``block.preprocess``) rather than subclassing: a component
    subclass makes Gradio write a ``.pyi`` stub next to this module at import time.
    """
    image = gr.Image(type="filepath", image_mode=None, sources=["upload"], **kwargs)
    stock = image.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is not None:
            if payload.path is None or (payload.url or "").startswith("data:"):
                raise gr.Error("image: upload the image as a file", print_exception=False)
            try:
                checked_size(payload.path, max_pixels)
            except I2IError as exc:
                raise gr.Error(public_message(exc), print_exception=False) from None
        return stock(payload)

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


class OutputFolder:
    """Where result files are written before Gradio copies them into its cache; old ones are pruned."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="i2i-app-"))
        atexit.register(shutil.rmtree, self.path, ignore_errors=True)

    def save_png(self, image: np.ndarray | Image.Image, stem: str) -> Path:
        """Write ``image`` as ``<stem>-<unique>.png`` and return its path."""
        cutoff = time.time() - OUTPUT_MAX_AGE_S
        for old in self.path.glob("*.png"):
            if old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)
        target = self.path / f"{stem}-{uuid.uuid4().hex[:8]}.png"
        (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(target, compress_level=1)
        return target


def _choices(entries: list[ModelEntry]) -> list[tuple[str, str]]:
    return [(e.label if e.scale == 1 else f"{e.label} (x{e.scale})", e.id) for e in entries]


def _dropdown(entries: list[ModelEntry], elem_id: str, label: str = "Model") -> gr.Dropdown:
    choices = _choices(entries)
    return gr.Dropdown(
        choices=choices,
        value=choices[0][1] if choices else None,
        label=label,
        elem_id=elem_id,
        interactive=True,
    )


def _none_installed(task: str) -> str:
    kind = {"translate": "translation", "upscale": "super-resolution", "text2image": "text-to-image"}[task]
    return (
        f"*No {kind} model is installed.* Start the app with `--models DIR` pointing at i2i checkpoints or "
        "exported models, or download registry weights with `i2i weights download NAME` and restart."
    )


def models_table(catalog: Catalog) -> list[list[str]]:
    """Rows of the Models tab: name, tab, status, details; the models folder's files first."""
    rows = []
    for e in catalog.entries.values():
        if e.source == "local":
            status = "local" if e.task else "not usable"
        else:
            status = "installed" if e.installed else ("downloadable" if e.task else "not usable")
        rows.append((e.source != "local", [e.label, TABS.get(e.task, "-"), status, e.detail]))
    order = {"local": 0, "installed": 1, "downloadable": 2, "not usable": 3}
    return [row for _, row in sorted(rows, key=lambda r: (r[0], order[r[1][2]], r[1][0].lower()))]


def build_app(settings: AppSettings, catalog: Catalog | None = None) -> gr.Blocks:
    """The app's Blocks for ``settings``; launch it with :func:`i2i_app.server.launch`.

    Args:
        settings: Limits, device, models folder.
        catalog: The models to offer (default: scanned from the registry and ``settings.models_dir``).
    """
    catalog = catalog or Catalog(settings.models_dir).scan()
    service = InferenceService(settings, catalog)
    outputs = OutputFolder()
    hidden = [
        p
        for p in (
            settings.models_dir and settings.models_dir.resolve(),
            hub.weights_dir(),
            hub.i2i_home(),
            outputs.path,
            tempfile.gettempdir(),
            Path.home(),
        )
        if p
    ]
    safe = user_errors(hidden)
    dropdowns: dict[str, gr.Dropdown] = {}

    with gr.Blocks(title="i2i", delete_cache=(600, 3600)) as demo:
        gr.Markdown(
            "# i2i &nbsp;·&nbsp; image-to-image GANs\n"
            "Translate images (Pix2Pix, CycleGAN), upscale them (ESRGAN family) and generate images from "
            "text, with the models installed on this server.",
            elem_id="header",
        )
        with gr.Tabs(elem_id="tabs"):
            if "translate" in service.tasks:
                with gr.Tab("Translate", id="translate", elem_id="tab-translate"):
                    dropdowns["translate"] = _translate_tab(settings, catalog, service, safe)
            if "upscale" in service.tasks:
                with gr.Tab("Upscale", id="upscale", elem_id="tab-upscale"):
                    dropdowns["upscale"] = _upscale_tab(settings, catalog, service, outputs, safe)
            if "text2image" in service.tasks:
                with gr.Tab("Text to image", id="text2image", elem_id="tab-text2image"):
                    dropdowns["text2image"] = _text2image_tab(settings, catalog, service, safe)
            with gr.Tab("Models", id="models", elem_id="tab-models") as models_tab:
                _models_tab(settings, catalog, service, dropdowns, models_tab, safe)
    return demo


def _translate_tab(settings: AppSettings, catalog: Catalog, service: InferenceService, safe: Callable) -> Any:
    entries = catalog.offered("translate")
    if not entries:
        gr.Markdown(_none_installed("translate"), elem_id="tr-empty")
    with gr.Row():
        with gr.Column():
            model = _dropdown(entries, "tr-model")
            direction = gr.Radio(
                choices=list(entries[0].directions if entries else ("AtoB",)),
                value="AtoB",
                label="Direction",
                info="BtoA needs a two-way (CycleGAN) checkpoint",
                elem_id="tr-direction",
            )
            image = checked_image(
                settings.max_pixels, label="Input image", height=IMAGE_HEIGHT, elem_id="tr-input"
            )
            run = gr.Button("Translate", variant="primary", elem_id="tr-run")
        with gr.Column():
            result = gr.Image(
                label="Result",
                format="png",
                height=IMAGE_HEIGHT,
                type="numpy",
                interactive=False,
                buttons=["download"],
                elem_id="tr-output",
            )
    gr.Examples(
        [[str(EXAMPLES / name)] for name in TRANSLATE_EXAMPLES], inputs=[image], label="Examples",
        elem_id="tr-examples",
    )  # fmt: skip

    @safe
    def pick_model(model_id: str | None) -> Any:
        entry = catalog.entries.get(model_id or "")
        directions = list(entry.directions) if entry else ["AtoB"]
        return gr.Radio(choices=directions, value="AtoB")

    @safe
    def translate(model_id: str | None, direction: str, path: str | None) -> np.ndarray:
        if not path:
            raise I2IError("image: upload an image first (or click an example)")
        return service.translate(model_id, direction, path)

    model.change(pick_model, model, direction, api_visibility="private")
    run.click(
        translate,
        [model, direction, image],
        result,
        api_name="translate",
        concurrency_id="inference",
        concurrency_limit=settings.concurrency,
    )
    return model


def _upscale_tab(
    settings: AppSettings, catalog: Catalog, service: InferenceService, outputs: OutputFolder, safe: Callable
) -> Any:
    entries = catalog.offered("upscale")
    if not entries:
        gr.Markdown(_none_installed("upscale"), elem_id="up-empty")
    scales = sorted({e.scale for e in entries}) or [4]
    with gr.Row():
        with gr.Column():
            scale = gr.Radio(
                choices=[(f"x{s}", s) for s in scales], value=scales[-1], label="Scale", elem_id="up-scale"
            )
            model = _dropdown([e for e in entries if e.scale == scales[-1]], "up-model")
            tile = gr.Slider(
                64,
                1024,
                value=min(settings.tile, 1024),
                step=32,
                label="Tile size (px)",
                info="smaller tiles use less GPU memory; halved automatically on out-of-memory",
                elem_id="up-tile",
            )
            image = checked_image(
                settings.max_pixels, label="Input image", height=IMAGE_HEIGHT, elem_id="up-input"
            )
            run = gr.Button("Upscale", variant="primary", elem_id="up-run")
        with gr.Column():
            compare = gr.ImageSlider(label="Before / after", elem_id="up-compare", interactive=False)
            download = gr.File(label="Full-resolution PNG", interactive=False, elem_id="up-file")
            info = gr.Markdown(elem_id="up-info")
    gr.Examples(
        [[str(EXAMPLES / name)] for name in UPSCALE_EXAMPLES], inputs=[image], label="Examples",
        elem_id="up-examples",
    )  # fmt: skip

    @safe
    def pick_scale(value: int) -> Any:
        found = [e for e in catalog.offered("upscale") if e.scale == value]
        choices = _choices(found)
        return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

    @safe
    def upscale(model_id: str | None, tile_px: float, path: str | None) -> tuple[Any, str, str]:
        if not path:
            raise I2IError("image: upload an image first (or click an example)")
        start = time.perf_counter()
        before, after = service.upscale(model_id, path, tile=int(tile_px))
        seconds = time.perf_counter() - start
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem)[:40].strip("_") or "image"  # a visitor's name
        h, w = before.shape[:2]
        before_png = outputs.save_png(before, f"{stem}_input")
        after_png = outputs.save_png(after, f"{stem}_x{after.shape[0] // h}")
        summary = (
            f"{w}x{h} → **{after.shape[1]}x{after.shape[0]}** in {seconds:.2f} s on {service.device.type}"
        )
        return (str(before_png), str(after_png)), str(after_png), summary

    scale.change(pick_scale, scale, model, api_visibility="private")
    run.click(
        upscale,
        [model, tile, image],
        [compare, download, info],
        api_name="upscale",
        concurrency_id="inference",
        concurrency_limit=settings.concurrency,
    )
    return model


def _text2image_tab(
    settings: AppSettings, catalog: Catalog, service: InferenceService, safe: Callable
) -> Any:
    entries = catalog.offered("text2image")
    if not entries:
        gr.Markdown(_none_installed("text2image"), elem_id="t2i-empty")
    with gr.Row():
        with gr.Column():
            model = _dropdown(entries, "t2i-model")
            prompt = gr.Textbox(label="Prompt", lines=2, max_length=500, elem_id="t2i-prompt")
            with gr.Row():
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="t2i-seed")
                count = gr.Slider(
                    1,
                    settings.max_images,
                    value=min(4, settings.max_images),
                    step=1,
                    label="Images",
                    elem_id="t2i-count",
                )
            run = gr.Button("Generate", variant="primary", elem_id="t2i-run")
        with gr.Column():
            gallery = gr.Gallery(label="Images", format="png", columns=4, elem_id="t2i-gallery")
    gr.Examples(
        [[p] for p in PROMPT_EXAMPLES], inputs=[prompt], label="Example prompts", elem_id="t2i-examples"
    )

    @safe
    def generate(model_id: str | None, text: str, seed_value: float | None, n: float) -> list[Any]:
        seed_int = int(seed_value) if seed_value is not None else 0
        return service.text2image(model_id, text, seed_int, int(n))

    run.click(
        generate,
        [model, prompt, seed, count],
        gallery,
        api_name="text2image",
        concurrency_id="inference",
        concurrency_limit=settings.concurrency,
    )
    return model


def _models_tab(
    settings: AppSettings,
    catalog: Catalog,
    service: InferenceService,
    dropdowns: dict[str, Any],
    tab: gr.Tab,
    safe: Callable,
) -> None:
    status = gr.Markdown(service.device_summary(), elem_id="models-status")
    table = gr.Dataframe(
        value=models_table(catalog),
        headers=["Model", "Tab", "Status", "Details"],
        interactive=False,
        wrap=True,
        elem_id="models-table",
    )
    gr.Markdown(
        "*installed*: registry weights in this server's cache; *local*: files of the `--models` folder; "
        "*downloadable*: `i2i weights download NAME` on the server installs them."
    )
    rescan = gr.Button("Rescan models", elem_id="models-rescan")
    tab.select(safe(lambda: service.device_summary()), None, status, api_visibility="private")

    def refreshed() -> list[Any]:
        catalog.scan()
        updates = []
        for task in dropdowns:
            current = [e for e in catalog.offered(task)]
            if task == "upscale":
                scales = sorted({e.scale for e in current})
                current = [e for e in current if e.scale == scales[-1]] if scales else []
            choices = _choices(current)
            updates.append(gr.Dropdown(choices=choices, value=choices[0][1] if choices else None))
        return [models_table(catalog), service.device_summary(), *updates]

    rescan.click(safe(refreshed), None, [table, status, *dropdowns.values()], api_visibility="private")
    if settings.allow_downloads:
        with gr.Row():
            names = [e.label for e in catalog.downloadable()]
            pick = gr.Dropdown(
                choices=names, value=None, label="Download registry weights", elem_id="models-download-name"
            )
            fetch = gr.Button("Download", elem_id="models-download")

        @safe
        def download(name: str | None) -> list[Any]:
            catalog.download(name)
            left = gr.Dropdown(choices=[e.label for e in catalog.downloadable()], value=None)
            return [*refreshed(), left]

        fetch.click(
            download,
            pick,
            [table, status, *dropdowns.values(), pick],
            api_visibility="private",
            concurrency_id="download",
            concurrency_limit=1,
        )
