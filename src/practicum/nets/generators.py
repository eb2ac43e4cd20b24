"""Generative nets for images: a convolutional VAE and a DCGAN (Radford et al. 2016) pair.

Each stride-2 block halves (encoder, discriminator) or doubles (decoder, generator) the image
size, so height and width must be divisible by 2 ** len(channels): 8x8 digits take 2 blocks,
28x28 MNIST 2, 32x32 CIFAR up to 5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from torch import Tensor, nn

from practicum.config.constraints import PositiveInt, PositiveInts
from practicum.config.knobs import Double, Toggle
from practicum.errors import UserError
from practicum.nets.sizes import require_image_shape


def _base_size(in_shape: Sequence[int], channels: Sequence[int], model: str) -> tuple[int, int]:
    _, height, width = require_image_shape(in_shape, model)
    if not channels:
        raise UserError("model.net.channels is empty: give at least one block, e.g. [32, 64]")
    scale = 2 ** len(channels)
    if height % scale or width % scale:
        raise UserError(
            f"model={model} with {len(channels)} blocks needs image sizes divisible by {scale}, "
            f"but the data gives {height}x{width}: use fewer entries in model.net.channels"
        )
    return height // scale, width // scale


def _down(in_channels: int, out_channels: int, norm: bool, slope: float) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(slope, inplace=True))
    return layers


def _up(in_channels: int, out_channels: int, norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=not norm)
    ]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return layers


class ConvVAE(nn.Module):
    """Encoder to a diagonal Gaussian over `latent_dim` codes; decoder to per-pixel logits."""

    # what the diagnosis and the autopilot may turn (practicum/config/knobs.py)
    knobs = {"latent_dim": Double(most=512), "channels": Double(most=512), "batch_norm": Toggle()}
    # forward draws the code z (the reparameterization), in eval mode too: the determinism check
    # of evaluation exempts a net that declares it (docs/extending.md)
    samples_on_purpose = True

    def __init__(
        self,
        in_shape: Sequence[int],
        latent_dim: Annotated[int, PositiveInt] = 16,
        channels: Annotated[Sequence[int], PositiveInts] = (32, 64),
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.in_shape = [int(v) for v in in_shape]
        self.latent_dim = latent_dim
        base_h, base_w = _base_size(in_shape, channels, "vae")
        widths = [self.in_shape[0], *channels]
        encoder: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            encoder += _down(a, b, batch_norm, 0.2)
        self.encoder = nn.Sequential(*encoder, nn.Flatten())
        flat = channels[-1] * base_h * base_w
        self.to_stats = nn.Linear(flat, 2 * latent_dim)  # mean and log-variance
        decoder: list[nn.Module] = [
            nn.Linear(latent_dim, flat),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (channels[-1], base_h, base_w)),
        ]
        reversed_widths = widths[::-1]
        for a, b in zip(reversed_widths[:-2], reversed_widths[1:-1], strict=True):
            decoder += _up(a, b, batch_norm)
        decoder.append(nn.ConvTranspose2d(reversed_widths[-2], self.in_shape[0], 4, 2, 1))
        self.decoder = nn.Sequential(*decoder)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_var = self.to_stats(self.encoder(x)).chunk(2, dim=-1)
        return mean, log_var

    def decode(self, z: Tensor) -> Tensor:
        """Per-pixel logits of the image in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Logits of the reconstruction, and the posterior's mean and log-variance."""
        mean, log_var = self.encode(x)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()  # reparameterization
        return self.decode(z), mean, log_var


class DCGAN(nn.Module):
    """A generator (noise -> image in [-1, 1]) and a discriminator (image -> real/fake logit).

    Both mirror `channels`: strided (transposed) convolutions, batch norm, ReLU in the generator
    and LeakyReLU(0.2) in the discriminator, as in DCGAN.
    """

    # what the diagnosis and the autopilot may turn (practicum/config/knobs.py)
    knobs = {"latent_dim": Double(most=512), "channels": Double(most=512)}

    def __init__(
        self,
        in_shape: Sequence[int],
        latent_dim: Annotated[int, PositiveInt] = 32,
        channels: Annotated[Sequence[int], PositiveInts] = (64, 128),
    ) -> None:
        super().__init__()
        self.in_shape = [int(v) for v in in_shape]
        self.latent_dim = latent_dim
        base_h, base_w = _base_size(in_shape, channels, "gan")
        widths = [self.in_shape[0], *channels]
        reversed_widths = widths[::-1]
        generator: list[nn.Module] = [
            nn.Linear(latent_dim, channels[-1] * base_h * base_w, bias=False),
            nn.Unflatten(1, (channels[-1], base_h, base_w)),
            nn.BatchNorm2d(channels[-1]),
            nn.ReLU(inplace=True),
        ]
        for a, b in zip(reversed_widths[:-2], reversed_widths[1:-1], strict=True):
            generator += _up(a, b, True)
        generator += [nn.ConvTranspose2d(reversed_widths[-2], self.in_shape[0], 4, 2, 1), nn.Tanh()]
        self.generator = nn.Sequential(*generator)
        discriminator: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            discriminator += _down(a, b, i > 0, 0.2)  # no batch norm on the input layer
        self.discriminator = nn.Sequential(
            *discriminator, nn.Flatten(), nn.Linear(channels[-1] * base_h * base_w, 1)
        )

    def generate(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def discriminate(self, x: Tensor) -> Tensor:
        return self.discriminator(x).squeeze(-1)

    def forward(self, z: Tensor) -> Tensor:
        return self.generate(z)
