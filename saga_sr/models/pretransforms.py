"""Frozen transforms between waveforms [B,C,L] and the latents the DiT works on [B,Z,T].

Owns: AutoencoderPretransform (the Oobleck VAE, keys `model.*`) and PatchedPretransform (stable-audio-tools'
"patched" kind: each frame of `patch_size` samples folded into channels; lossless and parameter-free, so tiny
models train on CPU without VAE weights). Both expose encode, decode, downsampling_ratio, encoded_channels,
io_channels. Neither is trained: they stay in eval mode with gradients off.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ..errors import AudioError
from .autoencoder import AudioAutoencoder


class Pretransform(nn.Module):
    """Common interface; subclasses set the three sizes and implement encode / decode / posterior."""

    io_channels: int
    encoded_channels: int
    downsampling_ratio: int

    def train(self, mode: bool = True) -> "Pretransform":
        return super().train(False)  # frozen: never in training mode (no sampling changes, no dropout)

    def _check_length(self, x: torch.Tensor) -> None:
        if x.shape[-1] % self.downsampling_ratio:
            raise AudioError(f"{type(self).__name__}: audio length {x.shape[-1]} is not a multiple of the "
                             f"downsampling ratio {self.downsampling_ratio}; pad or crop it first")


class AutoencoderPretransform(Pretransform):
    """encode(x) = vae.encode(x) / scale, decode(z) = vae.decode(z * scale).

    `encode(x, sample=...)`: True draws from the VAE posterior (stable-audio-tools' training behaviour, the
    default of the model's bottleneck), False returns its mean (deterministic inference). `iterate_batch` encodes
    and decodes one item at a time to bound memory."""

    def __init__(self, model: AudioAutoencoder, scale: float = 1.0, model_half: bool = False,
                 iterate_batch: bool = False, chunked: bool = False) -> None:
        super().__init__()
        if model_half or chunked:
            raise NotImplementedError("AutoencoderPretransform: model_half / chunked are not implemented; "
                                      "window long audio in latent space instead (saga_sr.inference.pipeline)")
        self.model = model
        self.scale = float(scale)
        self.iterate_batch = iterate_batch
        self.io_channels = model.io_channels
        self.encoded_channels = model.latent_dim
        self.downsampling_ratio = model.downsampling_ratio
        self.model.requires_grad_(False)
        self.eval()

    def _per_item(self, fn, x: torch.Tensor) -> torch.Tensor:
        if not self.iterate_batch:
            return fn(x)
        return torch.cat([fn(x[i:i + 1]) for i in range(x.shape[0])], dim=0)

    def encode(self, x: torch.Tensor, *, sample: bool | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        self._check_length(x)
        kwargs = {} if self.model.bottleneck is None else {"sample": sample, "generator": generator}
        return self._per_item(lambda a: self.model.encode(a, **kwargs), x) / self.scale

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, std) of the latent posterior in the scaled latent space, so that `mean + std * eps` is what
        `encode(x, sample=True)` returns for noise eps; std is None without a VAE bottleneck (deterministic)."""
        self._check_length(x)
        pre = self._per_item(self.model.encoder, x)
        if self.model.bottleneck is None:
            return pre / self.scale, None
        mean, std = self.model.bottleneck.posterior(pre)
        return mean / self.scale, std / self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._per_item(self.model.decode, z * self.scale)


class PatchedPretransform(Pretransform):
    """[B,C,L] <-> [B,C*patch_size,L/patch_size] by folding frames into channels (exact inverse).

    `scale` divides the folded waveform (z = frames / scale) so that typical audio (RMS about 0.1) reaches
    the unit variance of the flow's noise; without it the data would be a faint signal under the noise at
    almost every t. 1.0 is SAT's plain patching; a power of two keeps the round trip exact."""

    def __init__(self, channels: int, patch_size: int, scale: float = 1.0) -> None:
        super().__init__()
        if channels < 1 or patch_size < 1:
            raise ValueError(f"PatchedPretransform: channels {channels} and patch_size {patch_size} must be >= 1")
        if not scale > 0:
            raise ValueError(f"PatchedPretransform: scale must be > 0, got {scale}")
        self.channels, self.patch_size, self.scale = channels, patch_size, float(scale)
        self.io_channels = channels
        self.encoded_channels = channels * patch_size
        self.downsampling_ratio = patch_size

    def encode(self, x: torch.Tensor, **_: object) -> torch.Tensor:
        self._check_length(x)
        return rearrange(x, "b c (l h) -> b (c h) l", h=self.patch_size) / self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return rearrange(z * self.scale, "b (c h) l -> b c (l h)", h=self.patch_size)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """(latent, None): the patched transform is deterministic."""
        return self.encode(x), None


__all__ = ["Pretransform", "AutoencoderPretransform", "PatchedPretransform"]
