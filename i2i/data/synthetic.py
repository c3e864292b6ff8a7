"""A procedurally generated paired task: semantic label maps -> rendered street-facade scenes.

A tiny stand-in for pix2pix's ``facades``/``cityscapes`` so the demo, tests, convergence checks and
``--dry-run`` need no download. A is a label map in flat class colours (:data:`PALETTE`); B is the
"photo": bricks, glass with frames and reflections, roof tiles, wooden doors, foliage, grass, asphalt
with lane marks and a cloudy gradient sky, under random global lighting. The mapping is learnable
(colour -> texture) but not trivial: the mean image is a poor predictor, and material tints vary per
scene, as in real data.

Everything is drawn from ``np.random.default_rng(seed)``; the layout is drawn before any texture, so a
seed gives the same scene at every ``size``.

Example:
    >>> label, scene = render_pair(3, size=64)
    >>> label.shape, scene.dtype
    ((64, 64, 3), dtype('float32'))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from i2i.data.images import image_to_tensor, save_image
from i2i.data.paired import apply_pair_transform, split_key
from i2i.data.transforms import PairedTransform
from i2i.errors import ConfigError

SKY, WALL, WINDOW, DOOR, ROOF, TREE, GRASS, ROAD = range(8)
CLASS_NAMES = ("sky", "wall", "window", "door", "roof", "tree", "grass", "road")
PALETTE = (
    np.array(
        [
            [120, 190, 255],  # sky
            [230, 110, 40],  # wall
            [30, 60, 200],  # window
            [150, 50, 170],  # door
            [240, 220, 30],  # roof
            [20, 120, 40],  # tree
            [120, 230, 80],  # grass
            [90, 90, 90],  # road
        ],
        dtype=np.float32,
    )
    / 255.0
)
SPLITS = ("train", "test", "val")


@dataclass
class _Building:
    x0: float
    x1: float
    top: float
    roof: float  # gable height (0: flat roof)
    rows: int
    cols: int
    win_w: float  # window size as a fraction of its grid cell
    win_h: float
    door_x: float  # door centre, as a fraction of the facade width
    door_w: float
    door_h: float
    brick: np.ndarray  # (3,) base colour
    roof_color: np.ndarray


def _layout(rng: np.random.Generator) -> tuple[float, float, list[_Building], np.ndarray, dict]:
    """Draw the scene geometry in unit coordinates (independent of resolution)."""
    ground = rng.uniform(0.68, 0.84)
    road_top = ground + rng.uniform(0.3, 0.65) * (1.0 - ground)
    buildings = []
    for _ in range(int(rng.integers(1, 4))):
        width = rng.uniform(0.28, 0.6)
        x0 = rng.uniform(-0.1, 1.0 - width + 0.1)
        buildings.append(
            _Building(
                x0=x0,
                x1=x0 + width,
                top=rng.uniform(0.18, 0.45),
                roof=rng.uniform(0.06, 0.14) if rng.random() < 0.5 else 0.0,
                rows=int(rng.integers(2, 6)),
                cols=int(rng.integers(2, 6)),
                win_w=rng.uniform(0.45, 0.7),
                win_h=rng.uniform(0.45, 0.7),
                door_x=rng.uniform(0.2, 0.8),
                door_w=rng.uniform(0.06, 0.1),
                door_h=rng.uniform(0.12, 0.2),
                brick=np.array([0.62, 0.3, 0.2]) * rng.uniform(0.85, 1.15) * rng.uniform(0.93, 1.07, 3),
                roof_color=np.array([0.45, 0.15, 0.1]) if rng.random() < 0.6 else np.array([0.28, 0.3, 0.34]),
            )
        )
    # Trees: (centre x, centre y, radius x, radius y), standing on the ground line, drawn in front.
    count = int(rng.integers(0, 4))
    rx, ry = rng.uniform(0.05, 0.12, count), rng.uniform(0.08, 0.17, count)
    trees = np.stack([rng.uniform(0.0, 1.0, count), ground - 0.7 * ry, rx, ry], axis=1)
    look = {
        "sun": rng.uniform(-0.35, 0.35),
        "vignette": rng.uniform(0.1, 0.3),
        "cloud": rng.uniform(0.55, 0.8),
        "brick_h": rng.uniform(0.025, 0.04),
        "dash": rng.uniform(0.08, 0.14),
    }
    look["tint"] = rng.uniform(0.92, 1.08, 3)
    return ground, road_top, buildings, trees, look


def _noise(rng: np.random.Generator, size: int, grid: tuple[int, int]) -> np.ndarray:
    """Smooth value noise in ~[0, 1]: a random ``grid`` upsampled bicubically. Shape: ``(size, size)``."""
    coarse = rng.random(grid, dtype=np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _cells(coord: np.ndarray, start: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer cell index and fractional position in the cell, for a regular grid along one axis."""
    pos = (coord - start) / step
    cell = np.floor(pos)
    return cell.astype(np.int64), pos - cell


def _rgb(r: float, g: float, b: float) -> np.ndarray:
    return np.array([r, g, b], dtype=np.float32)


def render_pair(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Render one (label map, scene) pair, fully determined by ``seed``.

    Args:
        seed: non-negative integer; the same seed gives the same scene at any ``size``.
        size: side in pixels.

    Returns:
        ``(label_map, scene)``. Shape: ``(size, size, 3)`` each, float32 RGB in ``[0, 1]``.
    """
    rng = np.random.default_rng(seed)
    ground, road_top, buildings, trees, look = _layout(rng)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")  # (size, size) each, unit coordinates
    pixel = 1.0 / size

    # Geometry pass: class per pixel, plus what the painters need (owner building, local coordinates).
    label = np.full((size, size), SKY, dtype=np.int64)
    label[yy >= ground] = GRASS
    label[yy >= road_top] = ROAD
    owner = np.full((size, size), -1, dtype=np.int64)
    local_u = np.zeros((size, size), np.float32)  # position inside a window or door, in [0, 1)
    local_v = np.zeros((size, size), np.float32)
    for i, b in enumerate(buildings):
        wall = (xx >= b.x0) & (xx < b.x1) & (yy >= b.top) & (yy < ground)
        label[wall] = WALL
        owner[wall] = i
        if b.roof > 0:
            # Gable: the row at height t above the eaves spans (1 - t / roof) of the half-width.
            half, centre = (b.x1 - b.x0) / 2.0, (b.x0 + b.x1) / 2.0
            rise = (b.top - yy) / b.roof
            roof = (yy < b.top) & (rise <= 1.0) & (np.abs(xx - centre) <= half * (1.0 - rise) + pixel)
            label[roof] = ROOF
            owner[roof] = i
        margin = 0.08 * (b.x1 - b.x0)
        fx0, fx1, fy0, fy1 = b.x0 + margin, b.x1 - margin, b.top + 0.03, ground - b.door_h - 0.02
        if fy1 - fy0 > 0.05:  # room for a window grid above the door zone
            cell_x, u = _cells(xx, fx0, (fx1 - fx0) / b.cols)
            cell_y, v = _cells(yy, fy0, (fy1 - fy0) / b.rows)
            u, v = (u - (1 - b.win_w) / 2) / b.win_w, (v - (1 - b.win_h) / 2) / b.win_h
            window = wall & (cell_x >= 0) & (cell_x < b.cols) & (cell_y >= 0) & (cell_y < b.rows)
            window &= (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
            label[window] = WINDOW
            local_u[window], local_v[window] = u[window], v[window]
        door_cx = b.x0 + b.door_x * (b.x1 - b.x0)
        door = wall & (np.abs(xx - door_cx) < b.door_w / 2) & (yy >= ground - b.door_h)
        label[door] = DOOR
        local_u[door] = ((xx - door_cx) / b.door_w + 0.5)[door]
        local_v[door] = ((yy - ground + b.door_h) / b.door_h)[door]
    tree_light = np.zeros((size, size), np.float32)
    for cx, cy, rx, ry in trees:
        crown = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        label[crown] = TREE
        tree_light[crown] = (1.15 - 0.55 * (yy - cy + ry) / (2 * ry))[crown]

    scene = np.zeros((size, size, 3), dtype=np.float32)
    _paint_buildings(scene, label, owner, buildings, yy, xx, look, pixel)
    _paint_materials(scene, label, rng, yy, xx, local_u, local_v, tree_light, ground, road_top, look)

    # Global lighting: sun from one side, vignette, colour temperature, sensor noise.
    light = 1.0 + look["sun"] * (xx - 0.5) - look["vignette"] * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    scene *= light[:, :, None] * look["tint"].astype(np.float32)
    scene += rng.standard_normal(scene.shape, dtype=np.float32) * np.float32(0.012)
    np.clip(scene, 0.0, 1.0, out=scene)
    return PALETTE[label], scene


def _paint_buildings(
    scene: np.ndarray,
    label: np.ndarray,
    owner: np.ndarray,
    buildings: list[_Building],
    yy: np.ndarray,
    xx: np.ndarray,
    look: dict,
    pixel: float,
) -> None:
    """Paint brick walls and tiled roofs in place; textures are computed on the masked pixels only."""
    brick_h = max(look["brick_h"], 2.0 * pixel)
    brick_w = 2.5 * brick_h
    mortar_color = _rgb(0.78, 0.76, 0.72)
    for i, b in enumerate(buildings):
        wall = (label == WALL) & (owner == i)
        y, x = yy[wall], xx[wall]
        # Running bond: odd rows shift by half a brick; each brick gets its own hashed shade.
        row, frac_y = _cells(y, b.top, brick_h)
        col, frac_x = _cells(x + (row % 2) * brick_w / 2, b.x0, brick_w)
        shade = ((row * 73856093) ^ (col * 19349663)) % 997 / np.float32(997.0)
        mortar = (frac_y < max(0.18, pixel / brick_h)) | (frac_x < max(0.08, pixel / brick_w))
        bricks = b.brick.astype(np.float32) * (0.8 + 0.4 * shade)[:, None]
        scene[wall] = np.where(mortar[:, None], mortar_color, bricks)
        roof = (label == ROOF) & (owner == i)
        if roof.any():
            tile_row, tile_frac = _cells(yy[roof], b.top, brick_h * 1.5)
            tile_shade = 0.65 + 0.45 * tile_frac + 0.08 * ((tile_row % 3) == 0)
            scene[roof] = b.roof_color.astype(np.float32) * tile_shade[:, None]


def _paint_materials(
    scene: np.ndarray,
    label: np.ndarray,
    rng: np.random.Generator,
    yy: np.ndarray,
    xx: np.ndarray,
    local_u: np.ndarray,
    local_v: np.ndarray,
    tree_light: np.ndarray,
    ground: float,
    road_top: float,
    look: dict,
) -> None:
    """Paint sky, windows, doors, trees, grass and road in place, on the masked pixels only.

    The noise fields are drawn whole and in a fixed order, so the RNG stream never depends on which
    classes are present.
    """
    size = label.shape[0]
    clouds = 0.6 * _noise(rng, size, (4, 6)) + 0.4 * _noise(rng, size, (9, 13))
    grain_noise = _noise(rng, size, (3, 8))
    leaves = 0.55 + 0.6 * _noise(rng, size, (size // 6 + 2, size // 6 + 2))
    # Grass blades: noise stretched vertically.
    blades = cv2.resize(rng.random((max(2, size // 8), size), dtype=np.float32), (size, size))
    grit = rng.random((size, size), dtype=np.float32)

    # Sky: vertical gradient to a hazy horizon, soft clouds.
    sky = label == SKY
    t = np.clip(yy[sky] / ground, 0.0, 1.0)[:, None]
    cover = np.clip((clouds[sky] - look["cloud"]) * 4.0, 0.0, 1.0)[:, None]
    gradient = _rgb(0.22, 0.42, 0.82) * (1 - t) + _rgb(0.72, 0.84, 0.95) * t
    scene[sky] = gradient * (1 - cover) + 0.96 * cover
    # Glass: dark, a diagonal reflection streak, light frame along the window edge.
    window = label == WINDOW
    u, v = local_u[window], local_v[window]
    frame = 0.12  # of the window's size
    edge = (u < frame) | (u > 1 - frame) | (v < frame) | (v > 1 - frame)
    streak = np.clip(1.0 - np.abs(u - 0.7 * v - 0.15) / 0.12, 0.0, 1.0)
    glass = _rgb(0.12, 0.17, 0.26) + (0.32 * streak + 0.12 * (1 - v))[:, None]
    scene[window] = np.where(edge[:, None], _rgb(0.88, 0.87, 0.82), glass)
    # Door: wood with vertical grain and a darker frame.
    door = label == DOOR
    u, v = local_u[door], local_v[door]
    grain = 0.85 + 0.15 * np.sin(u * 40.0 + 3.0 * grain_noise[door])
    door_edge = (u < 0.12) | (u > 0.88) | (v < 0.06)
    scene[door] = _rgb(0.42, 0.25, 0.12) * np.where(door_edge, 0.6, grain)[:, None]
    # Foliage: clumpy noise, lit from the top of the crown.
    tree = label == TREE
    scene[tree] = _rgb(0.12, 0.34, 0.1) * (leaves[tree] * tree_light[tree])[:, None]
    # Grass: greener towards the viewer.
    grass = label == GRASS
    far = np.clip((yy[grass] - ground) / max(road_top - ground, 1e-3), 0.0, 1.0)
    scene[grass] = _rgb(0.24, 0.5, 0.14) * (0.7 + 0.45 * blades[grass] + 0.15 * far)[:, None]
    # Road: asphalt grain and a dashed centre line.
    road = label == ROAD
    asphalt = _rgb(0.24, 0.24, 0.26) * (0.85 + 0.3 * grit[road])[:, None]
    _, dash = _cells(xx[road], 0.0, look["dash"])
    lane = (np.abs(yy[road] - (road_top + 1.0) / 2.0) < max(0.012, 1.0 / size)) & (dash < 0.55)
    asphalt[lane] = 0.9
    scene[road] = asphalt


def _scene_seed(seed: int, split: str, index: int) -> int:
    # Interleaving the split into the low bits makes train/test/val scenes disjoint by construction.
    return ((seed << 40) + index) * 4 + SPLITS.index(split)


def _file_stem(index: int, num: int) -> str:
    return f"{index:0{max(5, len(str(num - 1)))}d}"


class SyntheticPairedDataset(Dataset):
    """``num`` synthetic (label map, scene) pairs, as ``{"a": label, "b": scene, "name": "00000"}``.

    Args:
        num: number of pairs.
        size: side of the rendered images, in pixels.
        seed: dataset seed; splits of one seed hold disjoint scenes.
        split: ``"train"``, ``"test"`` or ``"val"``.
        transform: augmentation; None converts to tensors unchanged.

    Shape:
        - ``item["a"]``, ``item["b"]``: ``(3, size, size)`` float32 in ``[-1, 1]`` (without transform).
    """

    def __init__(
        self,
        num: int,
        size: int = 64,
        *,
        seed: int = 0,
        split: str = "train",
        transform: PairedTransform | None = None,
    ) -> None:
        for name, value, low in (("num", num, 1), ("size", size, 8), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(
                    f"data.{name} of the synthetic dataset must be an integer >= {low}; got {value!r}."
                )
        if split not in SPLITS:
            raise ConfigError(
                f"data.split of the synthetic dataset must be one of {', '.join(SPLITS)}; got {split!r}."
            )
        self.num, self.size, self.seed, self.split = num, size, seed, split
        self.transform = transform

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor | str]:
        index, seed = split_key(key, self.num)
        label, scene = render_pair(_scene_seed(self.seed, self.split, index), self.size)
        name = _file_stem(index, self.num)
        source = f"synthetic {self.split} pair {name}"
        a, b = apply_pair_transform(label, scene, seed, self.transform, (source, source))
        return {"a": a, "b": b, "name": name}


def write_synthetic_dataset(
    root: str | Path, *, num_train: int, num_test: int, size: int = 64, seed: int = 0
) -> Path:
    """Write aligned A|B PNGs to ``root/train/00000.png`` ... and ``root/test/...``.

    ``PairedDataset(root, split, layout="aligned")`` then reads back what ``SyntheticPairedDataset(num,
    size, seed=seed, split=split)`` yields, up to 8-bit quantisation.

    Returns:
        ``root``, as a Path.
    """
    root = Path(root)
    for split, num in (("train", num_train), ("test", num_test)):
        for index in range(num):
            label, scene = render_pair(_scene_seed(seed, split, index), size)
            pair = image_to_tensor(np.concatenate([label, scene], axis=1))  # (3, size, 2 * size)
            save_image(pair, root / split / f"{_file_stem(index, num)}.png")
    return root
