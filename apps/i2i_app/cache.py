"""Loaded models kept between requests, least recently used evicted first when memory runs short.

Loading a model costs far more than running it on one image (reading and verifying the file, building
the net, moving it to the GPU), so each runner (a Translator, Upscaler or TextToImage) is built once and
kept. Memory is what limits how many stay: each runner is charged the bytes of the parameters and buffers
of the nets it holds, and the least recently used ones go until a new one fits.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


def module_bytes(obj: Any) -> int:
    """Bytes of the parameters and buffers of the nets ``obj`` holds (itself, or in its attributes)."""
    modules = (
        [obj] if isinstance(obj, nn.Module) else [v for v in vars(obj).values() if isinstance(v, nn.Module)]
    )
    seen: set[int] = set()
    total = 0
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            if id(tensor) not in seen:
                seen.add(id(tensor))
                total += tensor.numel() * tensor.element_size()
    return total


class ModelCache:
    """A thread-safe LRU cache of loaded runners, bounded by their memory.

    Args:
        budget_bytes: Memory the cached runners may use together. One runner larger than the whole budget
            is still loaded (the request needs it) and is evicted by the next load.
        on_evict: Called after evicting, e.g. to return freed GPU memory to the driver.
    """

    def __init__(self, budget_bytes: int, on_evict: Callable[[], None] | None = None) -> None:
        self.budget_bytes = budget_bytes
        self._on_evict = on_evict
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The runner for ``key``, loaded by ``load()`` on a miss (evicting others to make room)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
            value = load()
            size = module_bytes(value)
            self._make_room(size)
            self._items[key] = (value, size)
            log.info("loaded %s (%.1f MB); cache %.1f MB", key, size / 2**20, self.used_bytes / 2**20)
            return value

    def _make_room(self, size: int) -> None:
        evicted = False
        while self._items and self.used_bytes + size > self.budget_bytes:
            key, _ = self._items.popitem(last=False)
            log.info("evicted %s to make room", key)
            evicted = True
        if evicted:
            self._freed()

    def evict_all_but(self, keep: Hashable | None = None) -> int:
        """Drop every runner except ``keep`` (after an out-of-memory error); returns how many went."""
        with self._lock:
            drop = [k for k in self._items if k != keep]
            for key in drop:
                del self._items[key]
            if drop:
                self._freed()
            return len(drop)

    def _freed(self) -> None:
        if self._on_evict is not None:
            self._on_evict()

    @property
    def used_bytes(self) -> int:
        """Memory charged to the cached runners."""
        with self._lock:
            return sum(size for _, size in self._items.values())

    def loaded(self) -> list[Hashable]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._items)


def release_gpu_memory() -> None:
    """Return cached blocks to the CUDA driver so the next allocation sees them free."""
    if torch.cuda.is_available():
        gc.collect()  # a dropped model caught in a reference cycle would keep its GPU memory until then
        torch.cuda.empty_cache()
