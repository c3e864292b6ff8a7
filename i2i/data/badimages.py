"""Skipping unreadable images during training (``data.on_bad_image: skip``) without losing exactness.

:class:`SkipBadImages` wraps any dataset whose items are dicts. An item whose files raise
:class:`~i2i.errors.DataError` (corrupt, truncated, too small, ...) is replaced by the next readable item
with the same augmentation seed, so the replacement is a pure function of the key and a resumed run sees
exactly the same batches. Each item carries the problems met while building it under
:data:`BAD_IMAGES_KEY` (one message per line, each naming the file), which the Trainer counts and logs.

Example:
    >>> data = SkipBadImages(PairedDataset("datasets/facades", "train"))  # doctest: +SKIP
    >>> item = data[(0, 1234)]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from i2i.errors import DataError

BAD_IMAGES_KEY = "_bad_images"


def one_line(message: str) -> str:
    """A (possibly multi-line) error message on one line."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


class SkipBadImages(Dataset):
    """A dataset view that replaces items raising :class:`DataError` by the next readable one.

    Args:
        dataset: The wrapped dataset; keys are ``index`` or ``(index, sample_seed)``, items dicts.
        max_tries: How many consecutive items may be bad before giving up with a :class:`DataError`.
    """

    def __init__(self, dataset: Dataset, max_tries: int = 64) -> None:
        self.dataset = dataset
        self.max_tries = max_tries

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        length = len(self)
        index, seed = key if isinstance(key, tuple) else (key, None)
        problems: list[str] = []
        for offset in range(min(length, self.max_tries)):
            candidate = (int(index) + offset) % length
            try:
                item = self.dataset[candidate if seed is None else (candidate, seed)]
            except DataError as exc:
                problems.append(one_line(str(exc)))
                continue
            if isinstance(item, dict):
                item = {**item, BAD_IMAGES_KEY: "\n".join(problems)}
            return item
        raise DataError(
            f"{len(problems)} items in a row from index {index} cannot be read, the first because: "
            f"{problems[0]} Fix the dataset first; `i2i data check ROOT` lists every problem."
        )
