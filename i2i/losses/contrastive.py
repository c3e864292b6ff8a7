"""Image-text contrastive loss (InfoNCE over a batch), as XMC-GAN (Zhang et al. 2021) and CLIP use it.

Each image of a batch is paired with its own sentence; the other sentences of the batch are its negatives,
and the other images are the negatives of each sentence. With ``u_i``, ``v_j`` the L2-normalised image and
sentence embeddings and ``tau`` a temperature:

    L = 1/2 [CE(softmax_j(<u_i, v_j> / tau), i) + CE(softmax_i(<u_i, v_j> / tau), j)]

averaged over the batch. Batch items that carry the *same* caption are not negatives of each other (a
batch of a small dataset often holds one caption twice): ``groups`` masks them out of the softmax. Extra
sentences (e.g. a queue of recent captions, :class:`~i2i.train.sentence_queue.SentenceQueue`) join the
image-to-sentence softmax as further negatives.

Example:
    >>> import torch
    >>> u = torch.eye(3)
    >>> contrastive_loss(u, u, temperature=0.01) < 1e-3  # every image nearest its own sentence
    tensor(True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["contrastive_loss"]


def contrastive_loss(
    image: Tensor,
    text: Tensor,
    *,
    temperature: float = 0.1,
    groups: Tensor | None = None,
    extra_text: Tensor | None = None,
    extra_groups: Tensor | None = None,
) -> Tensor:
    """Symmetric InfoNCE between matching rows of ``image`` and ``text``.

    Args:
        image: Image embeddings (normalised here).
        text: Sentence embeddings of the same images, row for row (normalised here).
        temperature: ``tau``; XMC-GAN uses 0.1.
        groups: Optional per-item ids (e.g. caption ids): items with equal ids other than the pair itself
            are left out of each other's softmax instead of counting as negatives.
        extra_text: Optional further sentence embeddings, negatives of every image (image-to-sentence
            direction only) unless their id in ``extra_groups`` equals the image's in ``groups``.
        extra_groups: Ids of ``extra_text``; needs ``groups``.

    Returns:
        The scalar loss, differentiable w.r.t. both embeddings.

    Raises:
        ValueError: the shapes do not pair up, or the temperature is not positive.

    Shape:
        - image: ``(B, K)``; text: ``(B, K)``; groups: ``(B,)``; extra_text: ``(N, K)``;
          extra_groups: ``(N,)``; output: ``()``.
    """
    if image.dim() != 2 or image.shape != text.shape:
        raise ValueError(
            f"expected image and text embeddings of one shape (B, K), got {tuple(image.shape)} and "
            f"{tuple(text.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if extra_groups is not None and groups is None:
        raise ValueError("extra_groups needs groups: the ids of the batch's own sentences")
    image, text = F.normalize(image.float(), dim=1), F.normalize(text.float(), dim=1)
    scores = image @ text.T / temperature  # (B, B): row i, image i against every sentence
    if groups is not None:
        same = groups[:, None] == groups[None, :]
        duplicate = same & ~torch.eye(len(groups), dtype=torch.bool, device=scores.device)
        scores = scores.masked_fill(duplicate, float("-inf"))  # not a negative; the diagonal stays
    target = torch.arange(scores.shape[0], device=scores.device)
    to_text = scores
    if extra_text is not None:
        extra = image @ F.normalize(extra_text.float(), dim=1).T / temperature  # (B, N)
        if groups is not None and extra_groups is not None:
            extra = extra.masked_fill(groups[:, None] == extra_groups[None, :], float("-inf"))
        to_text = torch.cat([scores, extra], dim=1)  # (B, B + N): the true sentence is still column i
    return 0.5 * (F.cross_entropy(to_text, target) + F.cross_entropy(scores.T, target))
