"""A first-in-first-out memory of recent sentence embeddings: extra negatives for a contrastive loss.

An image-text contrastive loss over one batch only sees the batch's other captions as negatives. With a
few hundred distinct captions and a batch of 16, the caption that differs from an image's own in just one
word is rarely among them, so nothing forces the image features to encode that word. Keeping the last
``size`` sentence embeddings (with their caption ids, so an image's own caption is never its negative)
gives each image many more negatives at the cost of a linear layer on stored vectors, as MoCo's queue
does for images (He et al. 2020). The stored vectors are the encoder's outputs, not projections, so a
frozen encoder's entries never go stale; a trainable encoder's do, mildly, as in MoCo.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class SentenceQueue:
    """The last ``size`` sentence embeddings and caption ids pushed, oldest overwritten first.

    Deterministic (no randomness), and its :meth:`state_dict` goes into checkpoints, so a resumed run
    sees the same negatives as an uninterrupted one.

    Args:
        size: Capacity; 0 disables the queue (it stays empty).

    Attributes:
        embeddings: ``(N, D)`` the stored embeddings, N <= size (None before the first push).
        ids: ``(N,)`` int64 their caption ids.

    Example:
        >>> queue = SentenceQueue(3)
        >>> queue.push(torch.ones(2, 4), torch.tensor([0, 1]))
        >>> queue.push(torch.zeros(2, 4), torch.tensor([2, 3]))
        >>> queue.embeddings.shape, queue.ids.tolist()
        (torch.Size([3, 4]), [3, 1, 2])
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"queue size must be >= 0, got {size}")
        self.size = size
        self.embeddings: Tensor | None = None
        self.ids: Tensor | None = None
        self.next = 0  # the slot the next entry overwrites once the queue is full

    def __len__(self) -> int:
        return 0 if self.ids is None else len(self.ids)

    @torch.no_grad()
    def push(self, embeddings: Tensor, ids: Tensor) -> None:
        """Store a batch (detached), overwriting the oldest entries once full.

        Shape:
            - embeddings: ``(B, D)``; ids: ``(B,)``.
        """
        if self.size == 0:
            return
        embeddings, ids = embeddings.detach()[-self.size :], ids.detach().long()[-self.size :]
        if self.embeddings is None or self.ids is None:
            self.embeddings, self.ids = embeddings.clone(), ids.clone()
            self.next = len(ids) % self.size
            return
        if len(self.ids) < self.size:
            room = self.size - len(self.ids)
            self.embeddings = torch.cat([self.embeddings, embeddings[:room]])
            self.ids = torch.cat([self.ids, ids[:room]])
            embeddings, ids = embeddings[room:], ids[room:]
            self.next = len(self.ids) % self.size
        slots = ((self.next + torch.arange(len(ids))) % self.size).to(self.ids.device)
        # Out of place: a loss computed from the old entries may not have run backward yet.
        self.embeddings = self.embeddings.index_copy(0, slots, embeddings)
        self.ids = self.ids.index_copy(0, slots, ids)
        self.next = (self.next + len(ids)) % self.size

    def state_dict(self) -> dict[str, Any]:
        empty = self.embeddings is None or self.ids is None
        return {
            "size": self.size,
            "next": self.next,
            "embeddings": torch.zeros(0) if empty else self.embeddings.cpu(),
            "ids": torch.zeros(0, dtype=torch.long) if empty else self.ids.cpu(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str | None = None) -> None:
        self.size, self.next = int(state["size"]), int(state["next"])
        if state["ids"].numel() == 0:
            self.embeddings, self.ids = None, None
            return
        # Fresh copies: a loaded tensor may sit at any offset of the checkpoint's buffer, and CPU matmul
        # kernels round differently at different alignments, which would break bit-exact resume.
        self.embeddings = state["embeddings"].to(device).clone(memory_format=torch.contiguous_format)
        self.ids = state["ids"].to(device).clone()
