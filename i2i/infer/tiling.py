"""Tile placement and blend weights for tiled inference (:class:`~i2i.infer.upscale.Upscaler`).

Along each axis, tiles of one size start on multiples of the net's input multiple and end flush with the
image; between neighbours a blend zone of (at most) the overlap width mixes them with linear ramps, so the
weights of all tiles sum to one at every pixel.

Example:
    >>> axis = plan_axis(100, tile=40, overlap=8)
    >>> axis.starts, axis.zones
    ((0, 30, 60), ((31, 39), (61, 69)))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AxisTiles:
    """Tile placement along one axis, in input pixels.

    Attributes:
        starts: Start of each tile; every tile is ``size`` long, the last one ends at the image's end.
        size: Tile length.
        zones: ``(a, b)`` blend zone between tile ``i`` and ``i + 1``: tile ``i`` alone before ``a``, tile
            ``i + 1`` alone from ``b``, a linear mix in between.
    """

    starts: tuple[int, ...]
    size: int
    zones: tuple[tuple[int, int], ...]

    def owned(self, i: int, length: int) -> tuple[int, int]:
        """The range tile ``i`` contributes to: from its left zone's start to its right zone's end."""
        return (
            self.zones[i - 1][0] if i > 0 else 0,
            self.zones[i][1] if i < len(self.starts) - 1 else length,
        )


def plan_axis(length: int, tile: int, overlap: int, multiple: int = 1) -> AxisTiles:
    """Place tiles of ``tile`` pixels (0: one tile) along an axis of ``length`` (a multiple of ``multiple``).

    Starts are multiples of ``multiple`` spread evenly; consecutive tiles overlap by at least ``overlap``
    (capped at a quarter tile so that the blend zones of a tile's two sides never meet).
    """
    size = length if tile <= 0 or tile >= length else max(multiple, tile - tile % multiple)
    if size >= length:
        return AxisTiles((0,), length, ())
    overlap = min(overlap, size // 4)
    count = math.ceil((length - overlap) / (size - overlap))
    span = length - size
    starts = [min(span, (i * span // (count - 1)) // multiple * multiple) for i in range(count)]
    starts[-1] = span
    zones: list[tuple[int, int]] = []
    for i in range(count - 1):
        shared = starts[i] + size - starts[i + 1]  # pixels both tiles cover
        width = min(overlap, shared)
        a = starts[i + 1] + (shared - width) // 2
        if zones:
            a = max(a, zones[-1][1])  # rounding to the multiple may crowd zones: keep them in order
        zones.append((a, max(a, min(a + width, starts[i] + size))))
    return AxisTiles(tuple(starts), size, tuple(zones))


def blend_weights(axis: AxisTiles, i: int, length: int, scale: int) -> np.ndarray:
    """Blend weights of tile ``i`` over its owned range, at output resolution. Shape: (owned * scale,)."""
    lo, hi = axis.owned(i, length)
    coords = np.arange(lo * scale, hi * scale, dtype=np.float64) + 0.5
    weight = np.ones_like(coords)
    if i > 0:
        a, b = (z * scale for z in axis.zones[i - 1])
        if b > a:
            weight = np.minimum(weight, np.clip((coords - a) / (b - a), 0, 1))
    if i < len(axis.starts) - 1:
        a, b = (z * scale for z in axis.zones[i])
        if b > a:
            weight = np.minimum(weight, np.clip((b - coords) / (b - a), 0, 1))
    return weight.astype(np.float32)
