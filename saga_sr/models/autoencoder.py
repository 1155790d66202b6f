"""The Oobleck VAE of Stable Audio Open under stable-audio-tools' names.

Owns: weight-normed convolutions (keys `weight_g`, `weight_v`, `bias`), SnakeBeta, residual units, encoder and
decoder blocks, OobleckEncoder / OobleckDecoder, VAEBottleneck and AudioAutoencoder (keys `encoder.*`, `decoder.*`).

Shape legend: B batch, C audio channels, L samples, Z latent channels, T = L / downsampling_ratio frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    return v.norm(dim=tuple(range(1, v.dim())), keepdim=True)


class _WeightNorm:
    """Replaces a conv's `weight` by `weight_g * weight_v / ||weight_v||` (norm over all dims but 0), like
    torch's legacy weight_norm (so ConvTranspose1d's g is per input channel: [in,1,1])."""

    def _split_weight(self) -> None:
        w = self.weight.detach()
        del self._parameters["weight"]
        g_shape = (w.shape[0],) + (1,) * (w.dim() - 1)
        # (on the meta device the norm is skipped: shapes only, and torch's meta norm is slow)
        g = w.new_empty(g_shape) if w.is_meta else _norm_except_dim0(w)
        self.weight_g = nn.Parameter(g)
        self.weight_v = nn.Parameter(w)

    def _weight(self) -> torch.Tensor:
        return self.weight_v * (self.weight_g / _norm_except_dim0(self.weight_v))


class WNConv1d(_WeightNorm, nn.Conv1d):
    def __init__(self, *args, **kwargs) -> None:
        nn.Conv1d.__init__(self, *args, **kwargs)
        self._split_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self._weight(), self.bias)


class WNConvTranspose1d(_WeightNorm, nn.ConvTranspose1d):
    def __init__(self, *args, **kwargs) -> None:
        nn.ConvTranspose1d.__init__(self, *args, **kwargs)
        self._split_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(
            x, self._weight(), self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )


class SnakeBeta(nn.Module):
    """x + 1/exp(beta) * sin(exp(alpha) x)^2 per channel (log-scale alpha, beta initialised to 0)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.exp()[None, :, None]
        beta = self.beta.exp()[None, :, None]
        return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha).pow(2)


def _activation(channels: int, use_snake: bool) -> nn.Module:
    return SnakeBeta(channels) if use_snake else nn.ELU()


class ResidualUnit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dilation: int, use_snake: bool = False) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            _activation(out_channels, use_snake),
            WNConv1d(in_channels, out_channels, kernel_size=7, dilation=dilation, padding=3 * dilation),
            _activation(out_channels, use_snake),
            WNConv1d(out_channels, out_channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class EncoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, use_snake: bool = False) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *(ResidualUnit(in_channels, in_channels, d, use_snake) for d in (1, 3, 9)),
            _activation(in_channels, use_snake),
            WNConv1d(in_channels, out_channels, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DecoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, use_snake: bool = False) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            _activation(in_channels, use_snake),
            WNConvTranspose1d(
                in_channels, out_channels, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)
            ),
            *(ResidualUnit(out_channels, out_channels, d, use_snake) for d in (1, 3, 9)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _check_plain(owner: str, antialias_activation: bool, use_nearest_upsample: bool = False) -> None:
    if antialias_activation or use_nearest_upsample:
        raise NotImplementedError(
            f"{owner}: antialias_activation / use_nearest_upsample are not implemented (SAO uses neither)"
        )


class OobleckEncoder(nn.Module):
    """[B,in_channels,L] -> [B,latent_dim,L/prod(strides)] (latent_dim = 2 x VAE latent: mean and scale)."""

    def __init__(
        self,
        in_channels: int = 2,
        channels: int = 128,
        latent_dim: int = 32,
        c_mults: list[int] = (1, 2, 4, 8),
        strides: list[int] = (2, 4, 8, 8),
        use_snake: bool = False,
        antialias_activation: bool = False,
    ) -> None:
        super().__init__()
        _check_plain("OobleckEncoder", antialias_activation)
        mults = [1, *c_mults]
        if len(strides) != len(c_mults):
            raise ValueError(f"OobleckEncoder: {len(c_mults)} c_mults but {len(strides)} strides")
        self.layers = nn.Sequential(
            WNConv1d(in_channels, mults[0] * channels, kernel_size=7, padding=3),
            *(
                EncoderBlock(mults[i] * channels, mults[i + 1] * channels, strides[i], use_snake)
                for i in range(len(strides))
            ),
            _activation(mults[-1] * channels, use_snake),
            WNConv1d(mults[-1] * channels, latent_dim, kernel_size=3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class OobleckDecoder(nn.Module):
    """[B,latent_dim,T] -> [B,out_channels,T*prod(strides)]."""

    def __init__(
        self,
        out_channels: int = 2,
        channels: int = 128,
        latent_dim: int = 32,
        c_mults: list[int] = (1, 2, 4, 8),
        strides: list[int] = (2, 4, 8, 8),
        use_snake: bool = False,
        antialias_activation: bool = False,
        use_nearest_upsample: bool = False,
        final_tanh: bool = True,
    ) -> None:
        super().__init__()
        _check_plain("OobleckDecoder", antialias_activation, use_nearest_upsample)
        mults = [1, *c_mults]
        if len(strides) != len(c_mults):
            raise ValueError(f"OobleckDecoder: {len(c_mults)} c_mults but {len(strides)} strides")
        depth = len(mults)
        self.layers = nn.Sequential(
            WNConv1d(latent_dim, mults[-1] * channels, kernel_size=7, padding=3),
            *(
                DecoderBlock(mults[i] * channels, mults[i - 1] * channels, strides[i - 1], use_snake)
                for i in range(depth - 1, 0, -1)
            ),
            _activation(mults[0] * channels, use_snake),
            WNConv1d(mults[0] * channels, out_channels, kernel_size=7, padding=3, bias=False),
            nn.Tanh() if final_tanh else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class VAEBottleneck(nn.Module):
    """Splits [B,2Z,T] into mean and scale; std = softplus(scale) + 1e-4; z = mean + std * eps.

    `sample=True` (default, stable-audio-tools' behaviour also in eval) draws eps; `sample=False` returns the
    mean (deterministic). `noise` supplies eps explicitly, `generator` seeds it."""

    def __init__(self, sample: bool = True) -> None:
        super().__init__()
        self.sample = sample

    @staticmethod
    def posterior(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of the Gaussian posterior from the encoder output [B,2Z,T]."""
        mean, scale = x.chunk(2, dim=1)
        return mean, F.softplus(scale) + 1e-4

    def encode(
        self,
        x: torch.Tensor,
        return_info: bool = False,
        *,
        sample: bool | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ):
        mean, std = self.posterior(x)
        var = std * std
        sample = self.sample if sample is None else sample
        if sample:
            if noise is None:
                noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z = noise * std + mean
        else:
            z = mean
        if not return_info:
            return z
        kl = (mean * mean + var - torch.log(var) - 1).sum(1).mean()
        return z, {"kl": kl, "mean": mean, "std": std}

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z


class AudioAutoencoder(nn.Module):
    """Oobleck encoder -> VAE bottleneck -> decoder; `encode` [B,C,L] -> [B,Z,T], `decode` [B,Z,T] -> [B,C,L]."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        downsampling_ratio: int,
        sample_rate: int,
        io_channels: int = 2,
        bottleneck: nn.Module | None = None,
        pretransform: nn.Module | None = None,
        in_channels: int | None = None,
        out_channels: int | None = None,
        soft_clip: bool = False,
    ) -> None:
        super().__init__()
        if pretransform is not None:
            raise NotImplementedError("AudioAutoencoder: a nested pretransform is not implemented")
        self.encoder, self.decoder = encoder, decoder
        self.bottleneck = bottleneck
        self.latent_dim, self.downsampling_ratio = latent_dim, downsampling_ratio
        self.sample_rate, self.io_channels = sample_rate, io_channels
        self.in_channels = in_channels if in_channels is not None else io_channels
        self.out_channels = out_channels if out_channels is not None else io_channels
        self.soft_clip = soft_clip

    def encode(self, audio: torch.Tensor, return_info: bool = False, **bottleneck_kwargs):
        """audio [B,C,L] -> latents [B,Z,L/ratio]; bottleneck_kwargs: sample, noise, generator."""
        pre = self.encoder(audio)
        info = {"pre_bottleneck_latents": pre}
        if self.bottleneck is None:
            z = pre
        else:
            z, extra = self.bottleneck.encode(pre, return_info=True, **bottleneck_kwargs)
            info.update(extra)
        return (z, info) if return_info else z

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if self.bottleneck is not None:
            latents = self.bottleneck.decode(latents)
        out = self.decoder(latents)
        return torch.tanh(out) if self.soft_clip else out


__all__ = [
    "WNConv1d",
    "WNConvTranspose1d",
    "SnakeBeta",
    "ResidualUnit",
    "EncoderBlock",
    "DecoderBlock",
    "OobleckEncoder",
    "OobleckDecoder",
    "VAEBottleneck",
    "AudioAutoencoder",
]
