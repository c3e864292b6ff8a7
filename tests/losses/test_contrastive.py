"""The image-text contrastive loss: hand-computed values, duplicate masking, extra negatives, errors."""

from __future__ import annotations

import math

import pytest
import torch

from i2i.losses import contrastive_loss


def test_value_by_hand() -> None:
    # Unit rows, cosine matrix [[1, 0], [0, 1]] / tau: each direction's CE is log(1 + e^(-1/tau)).
    u = torch.eye(2)
    expected = math.log(1 + math.exp(-1 / 0.5))
    torch.testing.assert_close(contrastive_loss(u, u, temperature=0.5), torch.tensor(expected))


def test_embeddings_are_normalised_and_the_loss_is_symmetric() -> None:
    torch.manual_seed(0)
    image, text = torch.randn(5, 4), torch.randn(5, 4)
    base = contrastive_loss(image, text)
    torch.testing.assert_close(contrastive_loss(3 * image, 0.5 * text), base)  # scale-free
    torch.testing.assert_close(contrastive_loss(text, image), base)  # both directions, averaged


def test_matching_pairs_score_lower_than_shuffled_ones() -> None:
    torch.manual_seed(0)
    image = torch.randn(6, 8)
    assert contrastive_loss(image, image) < contrastive_loss(image, image.roll(1, dims=0))


def test_items_with_the_same_group_are_not_negatives() -> None:
    # Rows 0 and 1 carry the same caption: with groups, each leaves the other out of its softmax.
    u = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    masked = contrastive_loss(u, u, temperature=0.5, groups=torch.tensor([7, 7, 3]))
    assert masked < contrastive_loss(u, u, temperature=0.5)
    e = math.exp(-1 / 0.5)
    # Rows 0 and 1: the true pair against row 2's orthogonal sentence; row 2: against rows 0 and 1.
    expected = (2 * math.log(1 + e) + math.log(1 + 2 * e)) / 3  # the same in both directions
    torch.testing.assert_close(masked, torch.tensor(expected))


def test_extra_negatives_join_the_image_to_text_softmax_unless_same_group() -> None:
    u = torch.eye(2)
    extra = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # copies of the two sentences
    groups = torch.tensor([0, 1])
    base = contrastive_loss(u, u, temperature=0.5, groups=groups)
    same = contrastive_loss(u, u, temperature=0.5, groups=groups, extra_text=extra, extra_groups=groups)
    e = math.exp(-1 / 0.5)
    # Each image's own caption in the queue is left out; the other one is a further orthogonal negative.
    torch.testing.assert_close(same, torch.tensor(0.5 * (math.log(1 + 2 * e) + math.log(1 + e))))
    assert same > base
    others = torch.tensor([5, 6])
    other = contrastive_loss(u, u, temperature=0.5, groups=groups, extra_text=extra, extra_groups=others)
    # Image to text: the true pair against its copy (now a negative) and two orthogonal sentences.
    expected = 0.5 * (math.log(2 + 2 * e) + math.log(1 + e))
    torch.testing.assert_close(other, torch.tensor(expected))


def test_gradients_reach_both_embeddings() -> None:
    image, text = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    contrastive_loss(image, text, extra_text=torch.randn(5, 3)).backward()
    assert image.grad is not None and text.grad is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": torch.zeros(3, 4)}, "of one shape"),
        ({"temperature": 0.0}, "temperature must be positive"),
        ({"extra_text": torch.zeros(1, 4), "extra_groups": torch.zeros(1)}, "extra_groups needs groups"),
    ],
)
def test_errors(kwargs: dict, message: str) -> None:
    args = {"image": torch.zeros(2, 4), "text": torch.zeros(2, 4), **kwargs}
    with pytest.raises(ValueError, match=message):
        contrastive_loss(args.pop("image"), args.pop("text"), **args)
