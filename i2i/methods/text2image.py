"""Text-to-image GAN: Reed et al. 2016's matching-aware conditional GAN, brought up to DF-GAN practice.

G maps noise and a sentence embedding ``e = phi(t)`` to an image (``text2image_g``: text-and-noise FiLM in
every up-block); D scores an image *together with* a sentence (``text2image_d``). The heart of Reed et al.'s
GAN-CLS is the **matching-aware** discriminator: besides real-vs-generated, D must reject real images paired
with the wrong sentence, so "looks real" is not enough, the image has to match its text:

    L_D = L_real(D(x, e)) + 1/2 [L_fake(D(G(z, e), e)) + L_fake(D(x, e_mis))]      (Reed et al. alg. 1)
    L_G = L_G(D(G(z, e), e)) [+ lambda_int L_G(D(G(z', e_int), e_int))]

with ``L_real``/``L_fake``/``L_G`` those of any core loss kind (hinge by default, as DF-GAN), ``e_mis`` the
sentence of another image of the batch (the batch rolled by one, as DF-GAN) and the optional GAN-INT term on
interpolated sentences ``e_int = beta e + (1 - beta) e_mis`` (Reed et al. eq. 5), which D never sees as real.
D is regularised by DF-GAN's matching-aware gradient penalty ``k E[||grad_{x,e} D(x, e)||^p]`` on real,
matching pairs (k = 2, p = 6), or R1, or nothing.

The matching-aware loss only asks D to reject the batch's *other* sentences, which mostly differ from the
truth in an easy word (on the captioned-shapes demo, the colour), so D need never read the rest (the
shape). ``contrastive_weight > 0`` adds XMC-GAN's (Zhang et al. 2021) image-text contrastive loss: D
embeds real images and sentences into a joint space where each image must pick its own sentence out of
the batch plus a queue of the last ``contrastive_queue`` sentences (MoCo-style; with a queue, the
one-word-different captions are nearly always among the negatives), and G gets the same InfoNCE on its
images, a direct gradient towards what tells captions apart:

    L_D += lambda_c InfoNCE(f_img(x), f_txt(e)),    L_G += lambda_c InfoNCE(f_img(G(z, e)), f_txt(e))

Sentence encoders (:mod:`i2i.nets.text`): a frozen pretrained one (default all-MiniLM-L6-v2, shipped inside a
wheel; or a local CLIP), whose embeddings of every caption are computed once and cached so a step costs
only the GAN; or the trainable ``char_gru``, which belongs to D's optimizer (D's matching-aware loss is what
teaches it to tell sentences apart) while G sees its output detached. G's spec records the encoder, so a
checkpoint generates from a prompt with no config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from i2i.config import Config, NetConfig, register_method_config
from i2i.data.captions import CaptionDataset, CaptionFolderDataset
from i2i.data.synthetic_captions import SyntheticCaptionDataset
from i2i.errors import ConfigError
from i2i.hub import i2i_home
from i2i.losses import GAN_KINDS, contrastive_loss, d_loss, g_loss, matching_aware_penalty, r1_penalty
from i2i.nets.text import (
    DEFAULT_SENTENCE_MODEL,
    KINDS,
    descriptor,
    embed_captions,
    load_text_encoder,
    text_scale,
)
from i2i.train.diagnostics import HealthMonitor, d_stats, diversity
from i2i.train.method import build_net
from i2i.train.sentence_queue import SentenceQueue

REGULARIZERS = ("ma_gp", "r1", "none")
TRAINABLE_ENCODER = "char_gru"
SAMPLE_COLUMNS = 6
PREPROCESS = ("resize_and_crop", "none")


@dataclass
class TextEncoderConfig:
    """The ``model.text_encoder`` section: which sentence encoder conditions the GAN."""

    # sentence_transformer | clip (frozen, pretrained) | trainable (char_gru, trained with D)
    kind: str = "sentence_transformer"
    name: str = DEFAULT_SENTENCE_MODEL  # pretrained: the bundled all-MiniLM-L6-v2 or a local folder
    args: dict[str, Any] = field(default_factory=dict)  # trainable: char_gru arguments (out_dim, ...)
    cache: bool = True  # frozen: cache the dataset's caption embeddings in $I2I_HOME/cache/text_embeddings
    batch_size: int = 256  # captions per encoder call when embedding a dataset


@register_method_config("text2image")
@dataclass
class TextToImageGANConfig:
    """The ``model:`` section of a text-to-image config (``method: text2image``)."""

    generator: NetConfig = field(default_factory=lambda: NetConfig("text2image_g", {"base_channels": 32}))
    discriminator: NetConfig = field(default_factory=lambda: NetConfig("text2image_d", {"base_channels": 32}))
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    image_size: int = 64  # 64, 128 or 256 (any power of two from 16)
    latent_dim: int = 100  # noise z ~ N(0, I)
    gan_loss: str = "hinge"  # hinge (DF-GAN) | vanilla (Reed et al.) | lsgan | wgan
    matching_aware: bool = True  # D also rejects real images with another image's sentence (GAN-CLS)
    regularizer: str = "ma_gp"  # ma_gp (DF-GAN) | r1 | none
    reg_weight: float = 2.0  # MA-GP's k (DF-GAN: 2); for r1 it is gamma / 2
    ma_gp_power: float = 6.0  # MA-GP's p
    interpolation_weight: float = 0.0  # GAN-INT: G loss on interpolated sentences (Reed et al.: 1); 0: off
    interpolation_beta: float = 0.5
    contrastive_weight: float = 0.0  # XMC-GAN's image-text InfoNCE for D (reals) and G (fakes); 0: off
    contrastive_temperature: float = 0.1
    contrastive_queue: int = 0  # recent sentences kept as extra contrastive negatives (MoCo-style); 0: none
    sample_seed: int = 0  # seed of the fixed noise behind the sample grids
    health_warnings: bool = True


def _check(cfg: TextToImageGANConfig) -> None:
    enc = cfg.text_encoder
    checks = [
        (
            cfg.gan_loss in GAN_KINDS,
            f"model.gan_loss: unknown kind {cfg.gan_loss!r}; choose {', '.join(GAN_KINDS)}",
        ),
        (
            cfg.regularizer in REGULARIZERS,
            f"model.regularizer: unknown {cfg.regularizer!r}; choose {', '.join(REGULARIZERS)}",
        ),
        (enc.kind in KINDS, f"model.text_encoder.kind: unknown {enc.kind!r}; choose {', '.join(KINDS)}"),
        (
            enc.kind == "trainable" or not enc.args,
            "model.text_encoder.args: only the trainable encoder takes arguments; remove them or set "
            "model.text_encoder.kind=trainable",
        ),
        (0.0 <= cfg.interpolation_beta <= 1.0, "model.interpolation_beta must be between 0 and 1"),
        (cfg.contrastive_weight >= 0, "model.contrastive_weight must be 0 (off) or more"),
        (cfg.contrastive_temperature > 0, "model.contrastive_temperature must be positive"),
        (cfg.contrastive_queue >= 0, "model.contrastive_queue must be 0 (none) or more"),
        (cfg.latent_dim >= 1, "model.latent_dim must be at least 1"),
        (enc.batch_size >= 1, "model.text_encoder.batch_size must be at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


class TextToImageGAN:
    """The matching-aware text-conditional GAN over ``g``, ``d`` (and the trainable encoder ``text``).

    Batches are ``{"image": (B, 3, S, S) in [-1, 1], "caption": [str], "caption_id": (B,)}`` plus the
    cached sentence embeddings ``"embedding": (B, D)`` (frozen encoders) or the character ids
    ``"tokens": (B, L)`` (trainable encoder).
    """

    ema_nets = ("g",)

    def __init__(self, cfg: TextToImageGANConfig) -> None:
        _check(cfg)
        self.cfg = cfg
        enc = cfg.text_encoder
        if enc.kind == "trainable":
            text, text_args = build_net(
                NetConfig(TRAINABLE_ENCODER, enc.args), "model.text_encoder", init=None
            )
            text_info = {"kind": "trainable", "net": "text", "dim": text.dim}
        else:
            text_info = descriptor(load_text_encoder(enc.kind, enc.name))
        sizes = {"image_size": cfg.image_size, "text_dim": text_info["dim"]}
        g, g_args = build_net(cfg.generator, "model.generator", init=None, latent_dim=cfg.latent_dim, **sizes)
        d, d_args = build_net(cfg.discriminator, "model.discriminator", init=None, **sizes)
        if cfg.contrastive_weight > 0 and not getattr(d, "embed_dim", 0):
            raise ConfigError(
                "model.contrastive_weight: the contrastive loss needs D's image and sentence embedding "
                "heads; set model.discriminator.args.embed_dim (e.g. 64) or model.contrastive_weight=0"
            )
        self.nets: dict[str, nn.Module] = {"g": g, "d": d}
        self.specs: dict[str, dict[str, Any]] = {
            "g": {
                "name": cfg.generator.name,
                "args": g_args,
                "value_range": [-1, 1],
                "task": "text2image",
                "text_encoder": text_info,  # what TextToImage needs to embed a prompt
            },
            "d": {"name": cfg.discriminator.name, "args": d_args, "value_range": [-1, 1]},
        }
        # D's optimizer trains the trainable encoder: the matching-aware loss needs sentences told apart.
        self.groups = {"d": ("d",), "g": ("g",)}
        if enc.kind == "trainable":
            self.nets["text"] = text
            self.specs["text"] = {"name": TRAINABLE_ENCODER, "args": text_args}
            self.groups["d"] = ("d", "text")
        self.monitor = HealthMonitor(cfg.gan_loss, enabled=cfg.health_warnings)
        self.queue = SentenceQueue(cfg.contrastive_queue if cfg.contrastive_weight > 0 else 0)

    def _text(self, batch: Mapping[str, Any], nets: Mapping[str, nn.Module] | None = None) -> Tensor:
        """The batch's sentence embeddings at unit RMS (:func:`text_scale`). Shape: ``(B, D)``."""
        if "embedding" in batch:
            return text_scale(batch["embedding"])
        return text_scale((nets or self.nets)["text"](batch["tokens"]))

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        with torch.no_grad():  # G conditions on the sentence code; only D's loss trains an encoder
            text = self._text(batch)
        # Global RNG on the batch's device: a resumed run restores it, so it draws the same z.
        noise = torch.randn(text.shape[0], self.cfg.latent_dim, device=text.device)
        return {"fake": self.nets["g"](noise, text), "text": text}

    def d_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        cfg, d = self.cfg, self.nets["d"]
        real, text = batch["image"], self._text(batch)
        reg = cfg.regularizer if cfg.reg_weight > 0 else "none"
        if reg != "none":  # the penalties differentiate D w.r.t. its inputs
            real = real.detach().requires_grad_(True)
        if reg == "ma_gp" and not text.requires_grad:
            text = text.detach().requires_grad_(True)
        features = d.features(real)
        real_logits = d.logits(features, text)
        fake_logits = d(out["fake"].detach(), text)  # detached: the D update must not reach G
        terms: dict[str, Tensor] = {}
        if cfg.matching_aware:
            # Image i with sentence i - 1: a real image the sentence does not describe, judged fake. The
            # fake side's mean over [generated, mismatched] is Reed's (L_fake(s_f) + L_fake(s_w)) / 2.
            mismatch_logits = d.logits(features, text.roll(1, dims=0))
            terms["d_gan"] = d_loss(cfg.gan_loss, real_logits, torch.cat([fake_logits, mismatch_logits]))
        else:
            terms["d_gan"] = d_loss(cfg.gan_loss, real_logits, fake_logits)
        if reg == "ma_gp":
            penalty = matching_aware_penalty(real_logits, (real, text), power=cfg.ma_gp_power)
            terms["d_ma_gp"] = cfg.reg_weight * penalty
        elif reg == "r1":
            terms["d_r1"] = cfg.reg_weight * r1_penalty(real_logits, real)
        if cfg.contrastive_weight > 0:
            # Real images must pick their own sentence out of the batch: D's features must encode every
            # word that tells two captions apart, which the GAN loss alone does not demand.
            terms["d_contrastive"] = self._contrastive(d, features, text, batch)
            if "caption_id" in batch:  # after the loss: the batch's sentences are negatives from now on
                self.queue.push(text, batch["caption_id"])
        stats = {**d_stats(cfg.gan_loss, real_logits, fake_logits), **diversity(out["fake"], real)}
        if cfg.matching_aware:
            mismatch = d_stats(cfg.gan_loss, real_logits, mismatch_logits)["stat/d_fake_acc"]
            stats["stat/d_mismatch_acc"] = mismatch  # D rejects real images with the wrong sentence
        self.monitor.observe(stats)
        return {**terms, **stats}

    def g_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        cfg, d = self.cfg, self.nets["d"]
        fake, text = out["fake"], out["text"]
        features = d.features(fake)
        terms = {"g_gan": g_loss(cfg.gan_loss, d.logits(features, text))}
        if cfg.contrastive_weight > 0:
            # The same InfoNCE on generated images: a direct pull towards what tells the captions apart.
            terms["g_contrastive"] = self._contrastive(d, features, text, batch)
        if cfg.interpolation_weight > 0:
            # GAN-INT: sentences between two of the batch have no real image, but D knows what matching
            # looks like, so satisfying it there fills the gaps of the text manifold.
            beta = cfg.interpolation_beta
            mixed = beta * text + (1 - beta) * text.roll(1, dims=0)
            noise = torch.randn(text.shape[0], cfg.latent_dim, device=text.device)
            fake_int = self.nets["g"](noise, mixed)
            terms["g_int"] = cfg.interpolation_weight * g_loss(cfg.gan_loss, d(fake_int, mixed))
        return terms

    def _contrastive(self, d: nn.Module, features: Tensor, text: Tensor, batch: Mapping[str, Any]) -> Tensor:
        """Weighted image-text InfoNCE of images with their sentences, the queued sentences as negatives.

        Shape:
            - features: ``(B, 8b, 4, 4)`` (``d.features``); text: ``(B, D)``; output: ``()``.
        """
        ids = batch.get("caption_id")
        extra = extra_ids = None
        if len(self.queue) and ids is not None:
            extra, extra_ids = d.text_embedding(self.queue.embeddings), self.queue.ids
        loss = contrastive_loss(
            d.image_embedding(features),
            d.text_embedding(text),
            temperature=self.cfg.contrastive_temperature,
            groups=ids,
            extra_text=extra,
            extra_groups=extra_ids,
        )
        return self.cfg.contrastive_weight * loss

    def samples(self, batch: Mapping[str, Any], nets: Mapping[str, nn.Module]) -> dict[str, Tensor]:
        """The batch's real images, then one column per fixed noise vector, generated from their captions."""
        text = self._text(batch, nets)
        generator = torch.Generator().manual_seed(self.cfg.sample_seed)
        noise = torch.randn(SAMPLE_COLUMNS, self.cfg.latent_dim, generator=generator).to(text.device)
        images = {"real": batch["image"]}
        for j in range(SAMPLE_COLUMNS):
            images[f"z{j}"] = nets["g"](noise[j].expand(text.shape[0], -1), text)
        return images

    def state_dict(self) -> dict[str, Any]:
        return {"queue": self.queue.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "queue" in state:  # checkpoints from before the queue have none
            self.queue.load_state_dict(state["queue"], next(self.nets["d"].parameters()).device)

    @staticmethod
    def datasets(cfg: Config) -> tuple[Dataset, Dataset]:
        """The training and held-out captioned sets of ``cfg.data``, with their text features attached.

        ``data.source``: ``folder`` (``data.root`` with ``metadata.jsonl`` or ``.txt`` captions, splits
        ``data.train_split``/``data.test_split`` when present) or ``synthetic`` (captioned shapes, whose
        test split holds the combinations never seen in training).
        """
        model, data = cfg.model, cfg.data
        if model.matching_aware and data.batch_size < 2:
            raise ConfigError(
                "data.batch_size: the matching-aware loss pairs each image with another image's caption "
                "from the batch; use at least 2 (or model.matching_aware=false)"
            )
        size = model.image_size
        if data.source == "synthetic":
            syn = data.synthetic
            train: CaptionDataset = SyntheticCaptionDataset(syn.num_train, size, seed=cfg.seed, split="train")
            test: CaptionDataset = SyntheticCaptionDataset(syn.num_test, size, seed=cfg.seed, split="test")
        elif data.source == "folder":
            if not data.root:
                raise ConfigError(
                    "data.root: no caption folder given; set it (e.g. --set data.root=datasets/cub_captions, "
                    "made by `i2i datasets convert-captions`) or use data.source=synthetic"
                )
            if data.preprocess not in PREPROCESS:
                raise ConfigError(
                    f"data.preprocess: {data.preprocess!r}; text2image takes {' or '.join(PREPROCESS)} "
                    "(resize_and_crop: resize to 76/64 of the size, random crop, as DF-GAN)"
                )
            load = 0 if data.preprocess == "resize_and_crop" else size
            train = CaptionFolderDataset(
                data.root, data.train_split, image_size=size, load_size=load, flip=data.flip
            )
            test = CaptionFolderDataset(data.root, data.test_split, image_size=size, flip=False, train=False)
        else:
            raise ConfigError(f"data.source: unknown source {data.source!r}; choose folder or synthetic")
        attach_text_features(model.text_encoder, (train, test))
        return train, test


def attach_text_features(cfg: TextEncoderConfig, datasets: Sequence[CaptionDataset]) -> None:
    """Give every item its sentence embedding (frozen encoders, embedded once and cached) or its tokens."""
    if cfg.kind == "trainable":
        tokenizer = build_net(NetConfig(TRAINABLE_ENCODER, cfg.args), "model.text_encoder", init=None)[0]
        for dataset in datasets:
            dataset.set_text_features(tokenize=tokenizer.tokenizer())
        return
    encoder = load_text_encoder(cfg.kind, cfg.name)
    cache = i2i_home() / "cache" / "text_embeddings" if cfg.cache else None
    for dataset in datasets:
        dataset.set_text_features(embeddings=embed_captions(encoder, dataset.texts, cache, cfg.batch_size))
