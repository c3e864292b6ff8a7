"""Importers for reference checkpoint formats: detect the architecture, map keys to i2i networks.

Each importer module offers ``is_<format>_state_dict``, ``import_<format>`` (state dict -> registry name,
kwargs and renamed tensors) and ``load_<format>`` (file -> network in eval mode), and reads files with
``torch.load(..., weights_only=True)`` only.
"""

from __future__ import annotations

from i2i.importers.junyanz import ImportedNet, import_junyanz, is_junyanz_state_dict, load_junyanz

__all__ = ["ImportedNet", "import_junyanz", "is_junyanz_state_dict", "load_junyanz"]
