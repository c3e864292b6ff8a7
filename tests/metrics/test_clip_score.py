"""CLIP score with a tiny random CLIP built here (transformers), saved to and loaded from a folder."""

import json

import pytest
import torch

from i2i.errors import CheckpointError, ConfigError, DataError

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")  # no merges: words split into letters
    tokenizer = transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    images = transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    config = transformers.CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=32,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(
            image_size=32,
            patch_size=8,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
        ),
        projection_dim=8,
    )
    torch.manual_seed(0)
    transformers.CLIPModel(config).save_pretrained(folder)
    transformers.CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_score_is_100_times_the_clamped_cosine(clip_dir):
    from i2i.metrics.clip_score import load_clip_score

    metric = load_clip_score(clip_dir)
    images = torch.randint(
        0, 256, (3, 3, 40, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    texts = ["a red bird", "a small cat", "blue sky"]
    got = metric.scores(images, texts)
    # The definition, from the model's parts: projected embeddings, unit length, cosine, x100, clamped at 0.
    model, processor = metric.model, metric.processor
    inputs = processor(
        text=texts, images=[im.permute(1, 2, 0).numpy() for im in images], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        image = model.visual_projection(model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output)
        text = model.text_projection(
            model.text_model(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
            ).pooler_output
        )
    cosine = torch.nn.functional.cosine_similarity(image, text, dim=-1)
    expected = (100 * cosine).clamp(min=0).double()
    assert (expected > 0).any()  # not everything clamped away
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    metric.update(images, texts=texts)
    assert metric.compute()["clip_score"] == pytest.approx(float(expected.mean()), abs=1e-4)
    with pytest.raises(DataError, match="one prompt per image"):
        metric.scores(images, texts[:2])


def test_clear_errors_without_a_local_model(tmp_path):
    from i2i.metrics.clip_score import load_clip_score

    with pytest.raises(ConfigError, match="local CLIP model"):
        load_clip_score("")
    with pytest.raises(CheckpointError, match="no such folder"):
        load_clip_score(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="not a saved CLIP model"):
        load_clip_score(tmp_path)
