"""Reading ``.pth`` files safely: ``torch.load(weights_only=True)`` with errors users can act on."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from i2i.errors import CheckpointError


def load_torch_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Unpickle ``path`` with the weights-only unpickler (tensors and plain containers only).

    A pickle can run arbitrary code when loaded, so nothing else is ever unpickled: a file holding other
    Python objects is refused, naming the object it holds.

    Raises:
        CheckpointError: missing, truncated or corrupt file, or one holding pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # The weights-only unpickler names the class or function it refused ("GLOBAL module.name").
        refused = re.search(r"GLOBAL ([\w.]+)", str(exc)) or re.search(r"global: ([\w.]+)", str(exc))
        if refused:
            raise CheckpointError(
                f"{path}: refused to load: the file contains Python objects other than tensors "
                f"({refused.group(1).rstrip('.')}), which could run code when unpickled; only plain "
                "state_dict files are accepted"
            ) from exc
        raise CheckpointError(f"{path}: not a readable PyTorch file; it may be corrupt or truncated") from exc
    except Exception as exc:  # truncated zip, random bytes, not a torch file: many exception types
        detail = " ".join(str(exc).split())[:200]
        raise CheckpointError(
            f"{path}: not a readable PyTorch file ({type(exc).__name__}: {detail}); it may be truncated"
        ) from exc
