"""Frozen transforms between waveforms [B,C,L] and the latents the DiT works on [B,Z,T].

Owns: AutoencoderPretransform (the Oobleck VAE, keys `model.*`), PatchedPretransform (stable-audio-tools'
"patched" kind: each frame of `patch_size` samples folded into channels; lossless and parameter-free, so tiny
models train on CPU without VAE weights) and SpectrogramPretransform (a power-compressed complex STFT: channels
= real and imaginary parts of the bins, frames = latent time; invertible and parameter-free, and the level of
every frequency band is one channel, which makes the high-band envelope easy to predict). All expose encode,
decode, downsampling_ratio, encoded_channels, io_channels. None is trained: they stay in eval mode with
gradients off.
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

    def train(self, mode: bool = True) -> Pretransform:
        return super().train(False)  # frozen: never in training mode (no sampling changes, no dropout)

    def _check_length(self, x: torch.Tensor) -> None:
        if x.shape[-1] % self.downsampling_ratio:
            raise AudioError(
                f"{type(self).__name__}: audio length {x.shape[-1]} is not a multiple of the "
                f"downsampling ratio {self.downsampling_ratio}; pad or crop it first"
            )


class AutoencoderPretransform(Pretransform):
    """encode(x) = vae.encode(x) / scale, decode(z) = vae.decode(z * scale).

    `encode(x, sample=...)`: True draws from the VAE posterior (stable-audio-tools' training behaviour, the
    default of the model's bottleneck), False returns its mean (deterministic inference). `iterate_batch` encodes
    and decodes one item at a time to bound memory."""

    def __init__(
        self,
        model: AudioAutoencoder,
        scale: float = 1.0,
        model_half: bool = False,
        iterate_batch: bool = False,
        chunked: bool = False,
    ) -> None:
        super().__init__()
        if model_half or chunked:
            raise NotImplementedError(
                "AutoencoderPretransform: model_half / chunked are not implemented; "
                "window long audio in latent space instead (saga_sr.inference.pipeline)"
            )
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
        return torch.cat([fn(x[i : i + 1]) for i in range(x.shape[0])], dim=0)

    def encode(
        self, x: torch.Tensor, *, sample: bool | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
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


class SpectrogramPretransform(Pretransform):
    """[B,C,L] <-> [B, C*2*(n_fft//2+1), L/hop]: compressed complex STFT, exactly invertible up to float error.

    Frames: Hann window of `n_fft`, hop `hop`, the signal zero-padded by (n_fft - hop) / 2 on each side so that
    L samples give exactly L / hop frames (the latent grid of the other pretransforms). Each bin X (divided by
    sqrt(sum window^2), so white noise keeps its level) becomes |X|^power * X / |X| -- magnitude compression as
    in speech enhancement: a quiet high band is not lost under the flow's unit noise, and an error in the
    latent is a relative (log-like) error in level, which is what LSD measures. Then divided by `scale`.
    Channel layout: (audio channel, real/imag, bin). Decoding inverts the compression, takes the inverse FFT
    of every frame and overlap-adds with the squared-window normalisation (weighted overlap-add)."""

    def __init__(self, channels: int, n_fft: int, hop: int, power: float = 0.3, scale: float = 1.0) -> None:
        super().__init__()
        if channels < 1 or hop < 1 or n_fft < 2 * hop or n_fft % 2 or (n_fft - hop) % 2:
            raise ValueError(
                f"SpectrogramPretransform: need channels >= 1, n_fft >= 2 * hop, n_fft and "
                f"n_fft - hop even; got channels {channels}, n_fft {n_fft}, hop {hop}"
            )
        if not (0 < power <= 1) or not scale > 0:
            raise ValueError(f"SpectrogramPretransform: power must be in (0, 1] and scale > 0, got {power}, {scale}")
        self.channels, self.n_fft, self.hop = channels, n_fft, hop
        self.power, self.scale = float(power), float(scale)
        self.bins = n_fft // 2 + 1
        self.io_channels = channels
        self.encoded_channels = channels * 2 * self.bins
        self.downsampling_ratio = hop
        self.pad = (n_fft - hop) // 2
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def _gain(self) -> float:
        return float(self.window.pow(2).sum().sqrt())

    def encode(self, x: torch.Tensor, **_: object) -> torch.Tensor:
        self._check_length(x)
        dtype = x.dtype
        xp = torch.nn.functional.pad(x.float(), (self.pad, self.pad))
        frames = xp.unfold(-1, self.n_fft, self.hop) * self.window.float()  # [B, C, T, n_fft]
        spec = torch.fft.rfft(frames, dim=-1) / self._gain()  # [B, C, T, F]
        mag = spec.abs().clamp_min(1e-12)
        spec = spec * mag.pow(self.power - 1.0)
        z = torch.stack([spec.real, spec.imag], dim=2)  # [B, C, 2, T, F]
        return (rearrange(z, "b c r t f -> b (c r f) t") / self.scale).to(dtype)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        dtype = z.dtype
        z = rearrange(z.float() * self.scale, "b (c r f) t -> b c t f r", c=self.channels, r=2)
        spec = torch.complex(z[..., 0].contiguous(), z[..., 1].contiguous())
        mag = spec.abs().clamp_min(1e-12)
        spec = spec * mag.pow(1.0 / self.power - 1.0) * self._gain()
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=-1) * self.window.float()  # [B, C, T, n_fft]
        b, c, t, _ = frames.shape
        length = (t - 1) * self.hop + self.n_fft
        fold = lambda f: torch.nn.functional.fold(  # noqa: E731 -- overlap-add of [N, n_fft, T] frames
            f, output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop)
        ).reshape(f.shape[0], -1)
        out = fold(rearrange(frames, "b c t n -> (b c) n t"))
        env = fold(self.window.float().pow(2)[None, :, None].expand(1, self.n_fft, t).contiguous())
        out = out / env.clamp_min(1e-8)
        return out[:, self.pad : self.pad + t * self.hop].reshape(b, c, t * self.hop).to(dtype)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """(latent, None): the spectrogram is deterministic."""
        return self.encode(x), None


__all__ = ["Pretransform", "AutoencoderPretransform", "PatchedPretransform", "SpectrogramPretransform"]
