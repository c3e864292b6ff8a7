"""The model cache: loaded once, kept, least recently used evicted when memory runs short."""

from __future__ import annotations

from torch import nn

from i2i_app.cache import ModelCache, module_bytes


class Runner:
    """Like a Translator: holds its net in an attribute."""

    def __init__(self, features: int) -> None:
        self.net = nn.Linear(features, features, bias=False)  # features**2 float32 weights
        self.name = f"runner{features}"


def test_module_bytes_counts_the_nets_an_object_holds():
    assert module_bytes(Runner(16)) == 16 * 16 * 4
    bn = nn.BatchNorm2d(8)  # 2x8 parameters, 2x8 running stats and a step counter
    assert module_bytes(bn) == 4 * 8 * 4 + 8


def test_hits_do_not_reload_and_the_least_recently_used_goes_first():
    evictions = []
    cache = ModelCache(budget_bytes=2 * 32 * 32 * 4, on_evict=lambda: evictions.append(1))
    loads = []

    def loader(features):
        return lambda: loads.append(features) or Runner(features)

    a = cache.get("a", loader(32))
    b = cache.get("b", loader(32))
    assert cache.get("a", loader(32)) is a  # hit: same object, no load
    assert loads == [32, 32] and cache.used_bytes == 2 * 32 * 32 * 4
    cache.get("c", loader(32))  # over budget: "b" is the least recently used
    assert cache.loaded() == ["a", "c"] and evictions == [1]
    assert cache.get("b", loader(32)) is not b  # reloaded
    assert cache.loaded() == ["c", "b"]


def test_a_model_larger_than_the_budget_still_loads_alone():
    cache = ModelCache(budget_bytes=100)
    cache.get("small", lambda: Runner(4))
    big = cache.get("big", lambda: Runner(64))
    assert cache.loaded() == ["big"] and cache.get("big", lambda: None) is big


def test_evict_all_but_keeps_the_model_in_use():
    cache = ModelCache(budget_bytes=10**9)
    for key in ("a", "b", "c"):
        cache.get(key, lambda: Runner(4))
    assert cache.evict_all_but("b") == 2
    assert cache.loaded() == ["b"]
