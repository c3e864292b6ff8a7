"""Shared test settings for this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Use one intra-op thread: these nets are tiny, and on a busy 2-core machine OpenMP threads waiting for
    each other make them 10-20x slower. Restored after each test, so other folders are unaffected.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
