"""A procedurally generated captioned dataset: coloured shapes on plain backgrounds, described in words.

"a red circle on a black background", "a gray picture with a blue triangle", ... Five colours x three shapes
x three backgrounds make 45 scenes; nine (colour, shape, background) combinations are held out of training,
but every colour-shape pair and every background is seen with others, so generating a held-out prompt
needs the model to combine what the words say rather than recall a training image. It is the text-to-image
demo's data, the tests' data, and the convergence check's ruler: :func:`measure` reads colour, shape and
background back from any image with plain pixel statistics (no learned classifier).

Each image has five captions from different templates (as CUB's ten per image); one is drawn per step.
Shapes vary in size and position, colours and backgrounds jitter a little, and edges are antialiased. Every
image is drawn from ``np.random.default_rng([seed, split, index])``, so the dataset is the same on every run.

Example:
    >>> data = SyntheticCaptionDataset(8, image_size=32, split="test")
    >>> data[0]["caption"]
    'a red circle on a black background'
    >>> measure(data.render(0))
    ('red', 'circle', 'black')
"""

from __future__ import annotations

import colorsys
import json
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from torch import Tensor

from i2i.data.captions import METADATA_FILE, CaptionDataset
from i2i.data.images import image_to_tensor, save_image

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.88, 0.12, 0.10),
    "yellow": (0.95, 0.82, 0.12),
    "green": (0.12, 0.72, 0.18),
    "blue": (0.12, 0.28, 0.92),
    "purple": (0.62, 0.18, 0.85),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS: dict[str, float] = {"black": 0.06, "white": 0.94, "gray": 0.5}  # gray level
TEMPLATES = (
    "a {colour} {shape} on a {background} background",
    "a {background} picture with a {colour} {shape}",
    "there is a {colour} {shape} in front of a {background} background",
    "{colour} {shape}, {background} background",
    "a {shape} coloured {colour} on {background}",
)
SUPERSAMPLE = 4  # shapes are drawn 4x larger, then area-averaged: antialiased edges
SPLITS = ("train", "test")


class Scene(NamedTuple):
    """What a caption asks for."""

    colour: str
    shape: str
    background: str


def all_scenes() -> list[Scene]:
    """The 45 (colour, shape, background) combinations, in a fixed order."""
    return [Scene(c, s, b) for c in COLOURS for s in SHAPES for b in BACKGROUNDS]


def is_heldout(scene: Scene) -> bool:
    """The nine combinations never shown in training: ``(colour + shape + background) % 5 == 0``.

    Each colour-shape pair keeps at least two training backgrounds, and each background every colour and
    every shape, so a held-out prompt recombines seen parts.
    """
    c, s, b = (
        list(COLOURS).index(scene.colour),
        SHAPES.index(scene.shape),
        list(BACKGROUNDS).index(scene.background),
    )
    return (c + s + b) % 5 == 0


def split_scenes(split: str) -> list[Scene]:
    """The scenes of a split: training combinations, or the held-out ones for ``test``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return [s for s in all_scenes() if is_heldout(s) == (split == "test")]


def captions_for(scene: Scene) -> list[str]:
    """The five captions of a scene, the canonical one (first template) first."""
    words = scene._asdict()
    return [t.format(**words) for t in TEMPLATES]


def render_scene(scene: Scene, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``scene`` with the size, position and colour jitter drawn from ``rng``.

    Returns:
        ``(size, size, 3)`` float32 RGB in ``[0, 1]``.
    """
    big = size * SUPERSAMPLE
    extent = rng.uniform(0.42, 0.66) * big  # side of the square / diameter / triangle base and height
    margin = 0.06 * big
    cx, cy = (rng.uniform(margin + extent / 2, big - margin - extent / 2) for _ in range(2))
    mask = np.zeros((big, big), np.uint8)
    half = extent / 2
    if scene.shape == "circle":
        cv2.circle(mask, (round(cx), round(cy)), round(half), 255, -1)
    elif scene.shape == "square":
        cv2.rectangle(
            mask, (round(cx - half), round(cy - half)), (round(cx + half), round(cy + half)), 255, -1
        )
    else:  # upright isosceles triangle, as wide as it is tall
        points = np.array([[cx, cy - half], [cx - half, cy + half], [cx + half, cy + half]])
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 255)
    alpha = cv2.resize(mask.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_AREA)[..., None]
    colour = np.clip(np.array(COLOURS[scene.colour]) + rng.uniform(-0.06, 0.06, 3), 0, 1)
    background = np.full(3, BACKGROUNDS[scene.background]) + rng.uniform(-0.04, 0.04)
    image = background * (1 - alpha) + colour * alpha
    return np.clip(image, 0, 1).astype(np.float32)


class SyntheticCaptionDataset(CaptionDataset):
    """Coloured shapes with captions; ``split="test"`` holds the held-out combinations.

    Item ``i`` shows scene ``i % len(scenes)`` of its split (balanced), drawn from
    ``default_rng([seed, split, i])``.

    Args:
        num: Number of images.
        image_size: Side ``S``.
        seed: Dataset seed.
        split: ``train`` or ``test``.
        train: Draw one of the five captions per step; otherwise always the canonical one. Defaults to
            ``split == "train"``.

    Shape:
        - ``item["image"]``: ``(3, S, S)`` in ``[-1, 1]``.
    """

    def __init__(
        self,
        num: int,
        image_size: int = 32,
        *,
        seed: int = 0,
        split: str = "train",
        train: bool | None = None,
    ) -> None:
        super().__init__()
        self.scenes = split_scenes(split)
        self.num, self.image_size, self.seed, self.split = num, image_size, seed, split
        self.train = split == "train" if train is None else train
        self._index_captions([captions_for(self.scene(i)) for i in range(num)])

    def scene(self, index: int) -> Scene:
        return self.scenes[index % len(self.scenes)]

    def render(self, index: int) -> np.ndarray:
        """Image ``index`` as ``(S, S, 3)`` float32 RGB in ``[0, 1]``."""
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), index])
        return render_scene(self.scene(index), self.image_size, rng)

    def image(self, index: int, seed: int) -> Tensor:
        return image_to_tensor(self.render(index))


def heldout_prompts() -> list[tuple[str, Scene]]:
    """The canonical caption of each held-out scene, with the scene: the convergence check's prompts."""
    return [(captions_for(s)[0], s) for s in split_scenes("test")]


def write_caption_folder(
    root: str | Path, *, num_train: int, num_test: int, size: int = 64, seed: int = 0
) -> Path:
    """Write the dataset as PNGs plus ``metadata.jsonl`` in ``root/train`` and ``root/test``.

    :class:`~i2i.data.captions.CaptionFolderDataset` reads it back (the Hugging Face imagefolder layout),
    which makes it a worked example of the format for your own data.
    """
    root = Path(root)
    for split, num in (("train", num_train), ("test", num_test)):
        data = SyntheticCaptionDataset(num, size, seed=seed, split=split)
        lines = []
        for index in range(num):
            name = f"{index:05d}.png"
            save_image(data.image(index, index), root / split / name)
            lines.append(json.dumps({"file_name": name, "text": captions_for(data.scene(index))}))
        (root / split / METADATA_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# ----------------------------------------------------------------------------- reading images back

_HUES = {name: colorsys.rgb_to_hsv(*rgb)[0] for name, rgb in COLOURS.items()}  # in [0, 1)
MIN_SATURATION = 0.3  # below this the shape is gray-ish: no colour name fits
MIN_AREA = 0.03  # a foreground smaller than this fraction of the image is "no shape"


def _hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def measure(image: np.ndarray) -> tuple[str | None, str | None, str]:
    """Read ``(colour, shape, background)`` back from an image with plain pixel statistics.

    The background is the median of the one-pixel border (named by its gray level); the foreground is the
    largest connected blob of pixels far from it. Colour: the nearest hue of the blob's median colour
    (None when it is unsaturated). Shape: the blob's fill ratio in its bounding box, 1 for a square,
    pi/4 for a circle, 1/2 for a triangle (None when there is no blob).

    Args:
        image: ``(H, W, 3)`` RGB, float in ``[0, 1]`` or uint8.

    Returns:
        The colour, shape and background names (colour and shape may be None).
    """
    image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    bg = np.median(border, axis=0)
    background = min(BACKGROUNDS, key=lambda name: abs(BACKGROUNDS[name] - float(bg.mean())))
    distance = np.linalg.norm(image - bg, axis=2)
    mask = (distance > max(0.25, 0.5 * float(np.percentile(distance, 99)))).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    if count < 2:
        return None, None, background
    blob = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = int(stats[blob, cv2.CC_STAT_AREA])
    if area < MIN_AREA * mask.size:
        return None, None, background
    width, height = int(stats[blob, cv2.CC_STAT_WIDTH]), int(stats[blob, cv2.CC_STAT_HEIGHT])
    fill = area / float(width * height)
    shape = "square" if fill > 0.88 else "circle" if fill > 0.64 else "triangle"
    rgb = np.median(image[labels == blob], axis=0)
    hue, saturation, _ = colorsys.rgb_to_hsv(*(float(v) for v in rgb))
    colour = None
    if saturation >= MIN_SATURATION:
        colour = min(_HUES, key=lambda name: _hue_distance(_HUES[name], hue))
    return colour, shape, background
