"""CLIP score (Hessel et al. 2021; torchmetrics' ``CLIPScore``): how well each image matches its prompt.

    clip_score = mean over pairs of max(100 * cos(E_image, E_text), 0)

with ``E`` the CLIP image and text embeddings. Only a CLIP model already on disk is used (a folder written by
``CLIPModel.save_pretrained`` and ``CLIPProcessor.save_pretrained``, e.g. a downloaded
``openai/clip-vit-base-patch32``): nothing is fetched from a hub. Needs the ``transformers`` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from i2i.errors import CheckpointError, ConfigError, DataError
from i2i.metrics.base import Metric, check_images

HOW_TO_GET = (
    "save one locally first, e.g. in Python: CLIPModel.from_pretrained('openai/clip-vit-base-patch32')"
    ".save_pretrained(DIR) and the same with CLIPProcessor, then pass DIR"
)


class CLIPScore(Metric):
    """Mean CLIP score of generated images against their prompts (higher is better).

    Args:
        model: A ``transformers.CLIPModel``.
        processor: Its ``transformers.CLIPProcessor`` (tokenizer + image preprocessing).
    """

    names = ("clip_score",)
    paired = False

    def __init__(self, model: Any, processor: Any) -> None:
        self.model = model.eval()
        self.processor = processor
        self._scores: list[Tensor] = []

    @torch.inference_mode()
    def scores(self, images: Tensor, texts: Sequence[str]) -> Tensor:
        """Per-pair scores.

        Shape:
            images: (B, 3, H, W) uint8, with ``len(texts) == B`` -> (B,) float64.
        """
        check_images(images, "images")
        if len(texts) != images.shape[0]:
            raise DataError(f"CLIP score needs one prompt per image, got {len(texts)} for {images.shape[0]}")
        pil = [Image.fromarray(image.permute(1, 2, 0).cpu().numpy()) for image in images]
        inputs = self.processor(
            text=list(texts), images=pil, return_tensors="pt", padding=True, truncation=True
        )
        device = next(self.model.parameters()).device
        out = self.model(**{k: v.to(device) for k, v in inputs.items()})
        # image_embeds / text_embeds are the projected, unit-length embeddings.
        cosine = (out.image_embeds * out.text_embeds).sum(dim=-1)
        return (100.0 * cosine).clamp(min=0).double().cpu()

    def update(
        self, fake: Tensor | None = None, real: Tensor | None = None, *, texts: Sequence[str] | None = None
    ) -> None:
        if fake is None:
            return  # reference images carry no prompt to score
        if texts is None:
            raise DataError("CLIP score needs the prompt of each generated image; this evaluation gives none")
        self._scores.append(self.scores(fake, texts))

    def compute(self) -> dict[str, float]:
        if not self._scores:
            raise DataError("CLIP score: no images were added")
        return {"clip_score": float(torch.cat(self._scores).mean())}

    def reset(self, *, keep_real: bool = False) -> None:
        self._scores = []


def load_clip_score(path: str | Path | None) -> CLIPScore:
    """The CLIP score metric with the CLIP model saved in folder ``path`` (never downloaded).

    Raises:
        ConfigError: no folder given, or ``transformers`` is not installed.
        CheckpointError: the folder holds no loadable CLIP model and processor.
    """
    if not path:
        raise ConfigError(
            f"clip_score needs a local CLIP model (--clip-model DIR / eval.clip_model); {HOW_TO_GET}"
        )
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such folder (--clip-model / eval.clip_model); {HOW_TO_GET}")
    try:
        from transformers import CLIPModel, CLIPProcessor
    except ImportError as exc:
        raise ConfigError("clip_score needs the transformers package: pip install transformers") from exc
    try:
        model = CLIPModel.from_pretrained(folder, local_files_only=True)
        processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        first = " ".join(str(exc).split())[:300]
        raise CheckpointError(
            f"{folder}: not a saved CLIP model and processor ({first}); {HOW_TO_GET}"
        ) from exc
    return CLIPScore(model, processor)
