"""The classic noise-to-image GANs: MLP (Goodfellow et al. 2014) and DCGAN (Radford et al. 2016) G and D.

Every generator maps a latent vector ``z`` (plus, for class-conditional models, class labels) to an image
in ``[-1, 1]``; every discriminator maps an image (plus labels) to one real/fake logit per sample.

- Class conditioning (cGAN, Mirza & Osindero 2014): G sees ``[z, y]`` with ``y`` the one-hot label
  (``embedding_dim=0``) or a learned embedding; D either sees the label concatenated to its input
  (``conditioning="concat"``, as spatial planes for the conv D) or scores it with the projection of Miyato &
  Koyama 2018 (``"projection"``): ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>``.
- InfoGAN (Chen et al. 2016): the latent codes ``c`` are part of G's input vector, ``z = [noise, c]`` (see
  :meth:`NoiseGenerator.compose_latent`); D carries the Q head on its shared body, read with
  :meth:`forward_info`.

DCGAN architecture guidelines (Radford et al. 2016, sec. 3): strided (transposed) convolutions instead of
pooling, batch norm in G and D (not on G's output nor D's input layer), no fully connected hidden layers,
ReLU in G with Tanh on the output, LeakyReLU(0.2) in D.

Example:
    >>> import torch
    >>> g, d = DCGANGenerator(image_size=28, out_channels=1, base_channels=8), DCGANDiscriminator(28, 1, 8)
    >>> x = g(torch.randn(4, 100))
    >>> x.shape, d(x).shape
    (torch.Size([4, 1, 28, 28]), torch.Size([4]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.layers import check_norm, named_sequential, norm_layer
from i2i.nets.registry import register

CONDITIONINGS = ("concat", "projection")
Q_HIDDEN = 128  # width of the InfoGAN Q head's hidden layer (the paper's MNIST Q: FC 128-BN-lReLU)


def start_size(image_size: int) -> tuple[int, int]:
    """The DCGAN stack for ``image_size``: ``(s0, k)`` with ``image_size = s0 * 2**k``, ``s0`` 4 or 7.

    G projects ``z`` to an ``s0 x s0`` map and doubles it ``k`` times; D halves the image ``k`` times.
    28 px (MNIST) starts at 7x7, 32/64/128 px at 4x4.

    Raises:
        ConfigError: ``image_size`` is not 4 or 7 times a power of two (at least 8 px).
    """
    for start in (4, 7):
        size, steps = start, 0
        while size < image_size:
            size, steps = size * 2, steps + 1
        if size == image_size and steps >= 1:
            return start, steps
    raise ConfigError(
        f"image_size {image_size}: DCGAN nets need 4 or 7 times a power of two pixels, e.g. 28, 32, 64 or 128"
    )


def _check_sizes(*, minimum: int = 1, **values: int) -> None:
    bad = [f"{k} must be at least {minimum}, got {v}" for k, v in values.items() if v < minimum]
    if bad:
        raise ConfigError("; ".join(bad))


class LabelEncoding(nn.Module):
    """Class labels as vectors: one-hot (``embedding_dim=0``) or a learned embedding.

    Shape:
        - Input: ``(B,)`` integer labels in ``[0, num_classes)``.
        - Output: ``(B, dim)`` with ``dim = embedding_dim or num_classes``.
    """

    def __init__(self, num_classes: int, embedding_dim: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embedding_dim) if embedding_dim else None
        self.dim = embedding_dim or num_classes

    def forward(self, labels: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        if self.embed is not None:
            return self.embed(labels).to(dtype)
        return F.one_hot(labels.long(), self.num_classes).to(dtype)


def _check_labels(labels: Tensor | None, conditional: bool, batch: int) -> None:
    if not conditional and labels is not None:
        raise ValueError("this net is not class-conditional (num_classes=0); do not pass labels")
    if conditional and (labels is None or labels.shape != (batch,)):
        raise ValueError(f"this net is class-conditional: pass labels of shape ({batch},)")


class NoiseGenerator(nn.Module):
    """What every generator here shares: the latent layout ``z = [noise, categorical code, continuous]``.

    Attributes:
        latent_dim: Size of the noise part.
        num_classes: Classes of a class-conditional G (0: unconditional).
        code_categories: Categories of InfoGAN's categorical code (0: none).
        code_continuous: Number of InfoGAN's continuous codes.
        input_dim: Size of ``z`` as :meth:`forward` takes it (noise + codes).
    """

    def __init__(
        self,
        latent_dim: int,
        num_classes: int,
        embedding_dim: int,
        code_categories: int,
        code_continuous: int,
    ) -> None:
        super().__init__()
        _check_sizes(latent_dim=latent_dim)
        _check_sizes(minimum=0, num_classes=num_classes, embedding_dim=embedding_dim)
        _check_sizes(minimum=0, code_categories=code_categories, code_continuous=code_continuous)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.code_categories, self.code_continuous = code_categories, code_continuous
        self.input_dim = latent_dim + code_categories + code_continuous
        self.labels = LabelEncoding(num_classes, embedding_dim) if num_classes else None
        self.condition_dim = self.input_dim + (self.labels.dim if self.labels is not None else 0)

    def compose_latent(
        self, noise: Tensor, categorical: Tensor | None = None, continuous: Tensor | None = None
    ) -> Tensor:
        """``z = [noise, one_hot(categorical), continuous]`` (InfoGAN's ``(z, c)``), for :meth:`forward`.

        Shape:
            - noise ``(B, latent_dim)``; categorical ``(B,)`` integers; continuous ``(B, code_continuous)``.
            - output: ``(B, input_dim)``.
        """
        parts = [noise]
        if self.code_categories:
            if categorical is None:
                raise ValueError(f"this generator needs a categorical code in [0, {self.code_categories})")
            parts.append(F.one_hot(categorical.long(), self.code_categories).to(noise.dtype))
        if self.code_continuous:
            if continuous is None:
                raise ValueError(f"this generator needs {self.code_continuous} continuous code value(s)")
            parts.append(continuous.to(noise.dtype))
        return torch.cat(parts, dim=1)

    def _input(self, z: Tensor, labels: Tensor | None) -> Tensor:
        z = z.flatten(1)
        if z.shape[1] != self.input_dim:
            raise ValueError(
                f"expected z of shape (B, {self.input_dim}) (noise {self.latent_dim} + codes "
                f"{self.code_categories + self.code_continuous}), got {tuple(z.shape)}"
            )
        _check_labels(labels, self.labels is not None, z.shape[0])
        return z if self.labels is None else torch.cat([z, self.labels(labels, z.dtype)], dim=1)


class DiscriminatorHeads(nn.Module):
    """The output layers of both discriminators on body features ``h``: logit, projection, InfoGAN Q.

    ``logit``: a linear map of all features (for the conv D, the same as DCGAN's last conv, whose kernel
    covers the whole ``s0 x s0`` map). ``project``: Miyato & Koyama's class projection on the sum-pooled
    features. ``q``: Q's ``categorical logits ++ continuous means`` (Chen et al. 2016, appendix C).
    """

    def __init__(
        self,
        channels: int,
        spatial: int,
        num_classes: int,
        projection: bool,
        categories: int,
        continuous: int,
    ) -> None:
        super().__init__()
        features = channels * spatial * spatial
        self.logit = nn.Linear(features, 1)
        self.project = nn.Embedding(num_classes, channels) if num_classes and projection else None
        if self.project is not None:
            nn.init.xavier_uniform_(self.project.weight)  # as the SN-GAN projection reference code
        self.categories, self.continuous = categories, continuous
        self.q = None
        if categories + continuous:
            self.q = nn.Sequential(
                nn.Linear(features, Q_HIDDEN), nn.LeakyReLU(0.2), nn.Linear(Q_HIDDEN, categories + continuous)
            )

    def forward(self, h: Tensor, labels: Tensor | None) -> Tensor:
        out = self.logit(h.flatten(1)).squeeze(1)  # (B,)
        if self.project is not None:
            pooled = h.flatten(2).sum(2) if h.dim() > 2 else h  # phi(x): (B, C)
            out = out + (self.project(labels) * pooled).sum(1)
        return out

    def codes(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Q(c | x): ``(B, categories)`` logits and ``(B, continuous)`` means (unit-variance Gaussian)."""
        if self.q is None:
            raise ValueError(
                "this discriminator has no InfoGAN Q head (code_categories = code_continuous = 0)"
            )
        q = self.q(h.flatten(1))
        return q[:, : self.categories], q[:, self.categories :]


class _Discriminator(nn.Module):
    """Labels in, logits out; subclasses build ``heads`` and define ``features(x, labels)``."""

    task = "discriminate"  # read by i2i.hub.task_of

    heads: DiscriminatorHeads

    def _init_conditioning(self, num_classes: int, conditioning: str, embedding_dim: int) -> int:
        """Set up the label input; returns how many extra input features/planes ``concat`` adds."""
        if conditioning not in CONDITIONINGS:
            raise ConfigError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, got {conditioning!r}")
        concat = bool(num_classes) and conditioning == "concat"
        self.labels = LabelEncoding(num_classes, embedding_dim) if concat else None
        self.num_classes = num_classes
        return self.labels.dim if self.labels is not None else 0

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """One real/fake logit per image. Shape: ``(B, C, H, W)`` (+ labels ``(B,)``) -> ``(B,)``."""
        _check_labels(labels, bool(self.num_classes), x.shape[0])
        return self.heads(self.features(x, labels), labels)

    def forward_info(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The logits and InfoGAN's Q outputs from one pass through the shared body.

        Shape:
            ``(B, C, H, W)`` -> ``(B,)`` logits, ``(B, code_categories)`` code logits,
            ``(B, code_continuous)`` code means.
        """
        _check_labels(labels, bool(self.num_classes), x.shape[0])
        h = self.features(x, labels)
        return (self.heads(h, labels), *self.heads.codes(h))


@register("dcgan_g")
class DCGANGenerator(NoiseGenerator):
    """DCGAN generator: project ``z`` to an ``s0 x s0`` map, then stride-2 transposed convs up to the image.

    Widths halve on the way up from ``base_channels * min(2**(k-1), 8)``; for 64 px (``s0=4``, ``k=4``):
    ``z -> 4x4x8b -> 8x8x4b -> 16x16x2b -> 32x32xb -> 64x64xC``, as in the paper's Fig. 1 with ``b=128``.

    Args:
        latent_dim: Noise size (100 in the paper).
        image_size: Output side: 28, 32, 64, 128 (any ``4 * 2**k`` or ``7 * 2**k``).
        out_channels: Image channels (1 for digits, 3 for faces).
        base_channels: Width of the last hidden layer.
        norm: ``"batch"`` (the paper), ``"instance"`` or ``"none"``; never on the output layer.
        num_classes: > 0 makes G class-conditional (labels concatenated to ``z``).
        embedding_dim: Label vector size; 0 means one-hot.
        code_categories: InfoGAN categorical code size (part of ``z``).
        code_continuous: InfoGAN continuous codes (part of ``z``).

    Shape:
        - Input: ``z`` ``(B, input_dim)`` (or ``(B, input_dim, 1, 1)``), labels ``(B,)`` when conditional.
        - Output: ``(B, out_channels, image_size, image_size)`` in ``[-1, 1]``.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 64,
        out_channels: int = 3,
        base_channels: int = 64,
        norm: str = "batch",
        num_classes: int = 0,
        embedding_dim: int = 0,
        code_categories: int = 0,
        code_continuous: int = 0,
    ) -> None:
        super().__init__(latent_dim, num_classes, embedding_dim, code_categories, code_continuous)
        check_norm(norm)
        _check_sizes(out_channels=out_channels, base_channels=base_channels)
        start, ups = start_size(image_size)
        widths = [base_channels * min(2 ** (ups - 1 - i), 8) for i in range(ups)]
        bias = norm != "batch"  # batch norm's shift makes a conv bias redundant

        def up(cin: int, cout: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
            conv = nn.ConvTranspose2d(cin, cout, kernel, stride, padding, bias=bias)
            return named_sequential(conv=conv, norm=norm_layer(norm, cout), act=nn.ReLU())

        # "Project and reshape" (paper Fig. 1) as a transposed conv on the 1x1 map: no hidden FC layer.
        self.project = up(self.condition_dim, widths[0], start, 1, 0)
        self.blocks = nn.Sequential(*(up(widths[i - 1], widths[i], 4, 2, 1) for i in range(1, ups)))
        self.to_image = named_sequential(
            conv=nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1), act=nn.Tanh()
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self._input(z, labels)[:, :, None, None]  # (B, condition_dim, 1, 1)
        return self.to_image(self.blocks(self.project(x)))


@register("dcgan_d")
class DCGANDiscriminator(_Discriminator):
    """DCGAN discriminator: stride-2 convs + LeakyReLU(0.2) down to ``s0 x s0``, then one logit.

    No norm on the input layer (paper sec. 3); widths double from ``base_channels`` up to 8x. For WGAN-GP use
    ``norm="none"`` or ``"instance"``: batch norm mixes the samples, which the per-sample penalty forbids.

    Args:
        image_size: Input side (see :func:`start_size`).
        in_channels: Image channels.
        base_channels: Width of the first conv.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        num_classes: > 0 makes D class-conditional.
        conditioning: ``"concat"`` (label planes concatenated to the image) or ``"projection"``.
        embedding_dim: Label vector size for ``concat``; 0 means one-hot.
        code_categories: InfoGAN: categories of the code Q predicts.
        code_continuous: InfoGAN: continuous codes Q predicts.

    Shape:
        - Input: ``(B, in_channels, image_size, image_size)``, labels ``(B,)`` when conditional.
        - Output: ``(B,)`` logits.
    """

    def __init__(
        self,
        image_size: int = 64,
        in_channels: int = 3,
        base_channels: int = 64,
        norm: str = "batch",
        num_classes: int = 0,
        conditioning: str = "concat",
        embedding_dim: int = 0,
        code_categories: int = 0,
        code_continuous: int = 0,
    ) -> None:
        super().__init__()
        check_norm(norm)
        _check_sizes(in_channels=in_channels, base_channels=base_channels)
        _check_sizes(minimum=0, num_classes=num_classes, code_categories=code_categories)
        start, downs = start_size(image_size)
        extra = self._init_conditioning(num_classes, conditioning, embedding_dim)
        widths = [base_channels * min(2**i, 8) for i in range(downs)]
        blocks = [
            named_sequential(conv=nn.Conv2d(in_channels + extra, widths[0], 4, 2, 1), act=nn.LeakyReLU(0.2))
        ]
        for i in range(1, downs):
            conv = nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1, bias=norm != "batch")
            blocks.append(
                named_sequential(conv=conv, norm=norm_layer(norm, widths[i]), act=nn.LeakyReLU(0.2))
            )
        self.body = nn.Sequential(*blocks)
        self.heads = DiscriminatorHeads(
            widths[-1], start, num_classes, conditioning == "projection", code_categories, code_continuous
        )

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.labels is not None:
            planes = self.labels(labels, x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, planes], dim=1)  # (B, C + label_dim, H, W)
        return self.body(x)


@register("mlp_g")
class MLPGenerator(NoiseGenerator):
    """The fully connected generator of Goodfellow et al. 2014: ReLU hidden layers, Tanh output.

    Hidden widths ``hidden_dim * 2**i`` for ``i < num_layers`` (256, 512, 1024 by default).

    Args:
        latent_dim: Noise size.
        image_size: Output side.
        out_channels: Image channels.
        hidden_dim: Width of the first hidden layer.
        num_layers: Number of hidden layers.
        num_classes, embedding_dim, code_categories, code_continuous: as :class:`DCGANGenerator`.

    Shape:
        - Input: ``z`` ``(B, input_dim)``, labels ``(B,)`` when conditional.
        - Output: ``(B, out_channels, image_size, image_size)`` in ``[-1, 1]``.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 28,
        out_channels: int = 1,
        hidden_dim: int = 256,
        num_layers: int = 3,
        num_classes: int = 0,
        embedding_dim: int = 0,
        code_categories: int = 0,
        code_continuous: int = 0,
    ) -> None:
        super().__init__(latent_dim, num_classes, embedding_dim, code_categories, code_continuous)
        _check_sizes(
            out_channels=out_channels, hidden_dim=hidden_dim, image_size=image_size, num_layers=num_layers
        )
        self.shape = (out_channels, image_size, image_size)
        widths = [self.condition_dim] + [hidden_dim * 2**i for i in range(num_layers)]
        layers: list[nn.Module] = []
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(cin, cout), nn.ReLU()]
        self.hidden = nn.Sequential(*layers)
        self.to_image = nn.Sequential(nn.Linear(widths[-1], out_channels * image_size**2), nn.Tanh())

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.to_image(self.hidden(self._input(z, labels)))
        return x.view(x.shape[0], *self.shape)  # (B, C, H, W)


@register("mlp_d")
class MLPDiscriminator(_Discriminator):
    """The fully connected discriminator of Goodfellow et al. 2014: LeakyReLU (for maxout) and dropout.

    Hidden widths ``hidden_dim * 2**i`` for ``i`` from ``num_layers - 1`` down to 0 (1024, 512, 256).

    Args:
        image_size: Input side.
        in_channels: Image channels.
        hidden_dim: Width of the last hidden layer.
        num_layers: Number of hidden layers.
        dropout: Dropout after each hidden layer (the paper trains D with dropout).
        num_classes, conditioning, embedding_dim, code_categories, code_continuous: as
            :class:`DCGANDiscriminator` (``concat`` appends the label vector to the flattened image).

    Shape:
        - Input: ``(B, in_channels, image_size, image_size)``, labels ``(B,)`` when conditional.
        - Output: ``(B,)`` logits.
    """

    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        hidden_dim: int = 256,
        num_layers: int = 3,
        dropout: float = 0.3,
        num_classes: int = 0,
        conditioning: str = "concat",
        embedding_dim: int = 0,
        code_categories: int = 0,
        code_continuous: int = 0,
    ) -> None:
        super().__init__()
        _check_sizes(
            in_channels=in_channels, hidden_dim=hidden_dim, image_size=image_size, num_layers=num_layers
        )
        _check_sizes(minimum=0, num_classes=num_classes, code_categories=code_categories)
        extra = self._init_conditioning(num_classes, conditioning, embedding_dim)
        widths = [in_channels * image_size**2 + extra]
        widths += [hidden_dim * 2**i for i in reversed(range(num_layers))]
        layers: list[nn.Module] = []
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(cin, cout), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.heads = DiscriminatorHeads(
            hidden_dim, 1, num_classes, conditioning == "projection", code_categories, code_continuous
        )

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = x.flatten(1)
        if self.labels is not None:
            x = torch.cat([x, self.labels(labels, x.dtype)], dim=1)
        return self.body(x)  # (B, hidden_dim)
