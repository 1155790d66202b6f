"""RolloffFourierConditioner (the roll-off conditioning of `--compute_rolloff`), with learned Fourier features.

Input: normalised spectral roll-offs of the LR input (`low`) and of the target (`high`), each [B] in [0,1)
(bin / 1025, see saga_sr.audio.spectral). Output: one cross-attention token [B,1,Dc] and a global vector [B,Dg]
(the model adds the global vector to the timestep embedding and prepends it: `build_rolloff_prepend`).

Differences from the common third-party port: learned Fourier frequencies (the paper; the port used fixed
log-spaced ones), one embedder per roll-off, and `dropout_rate` is real: in training mode each sample's
cross-attention token is zeroed with that probability (the global vector is never dropped, as in the official
code), so the model also learns to run with the roll-off token absent.
"""

from __future__ import annotations

import torch
from torch import nn

from .conditioners import LearnedPositionalEmbedding


class RolloffFourierConditioner(nn.Module):
    """(low [B], high [B]) -> (cross token [B,1,embedding_dim_cross], global [B,embedding_dim_global]).

    Each roll-off gets learned Fourier features [x, sin(2 pi x w), cos(2 pi x w)] (2*num_frequencies+1 values);
    the two are concatenated and mapped by Linear -> LayerNorm to each output."""

    def __init__(
        self, embedding_dim_cross: int, embedding_dim_global: int, dropout_rate: float = 0.1, num_frequencies: int = 128
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"RolloffFourierConditioner: dropout_rate must be in [0,1), got {dropout_rate}")
        self.embedding_dim_cross, self.embedding_dim_global = embedding_dim_cross, embedding_dim_global
        self.dropout_rate = dropout_rate
        self.low_embedder = LearnedPositionalEmbedding(2 * num_frequencies)
        self.high_embedder = LearnedPositionalEmbedding(2 * num_frequencies)
        features = 2 * (2 * num_frequencies + 1)
        self.to_cross = nn.Sequential(nn.Linear(features, embedding_dim_cross), nn.LayerNorm(embedding_dim_cross))
        self.to_global = nn.Sequential(nn.Linear(features, embedding_dim_global), nn.LayerNorm(embedding_dim_global))

    def features(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Concatenated Fourier features [B, 2*(2F+1)] of the clamped roll-offs."""
        dtype = self.low_embedder.weights.dtype
        low = torch.as_tensor(low).to(self.low_embedder.weights.device, dtype).reshape(-1).clamp(0.0, 1.0)
        high = torch.as_tensor(high).to(self.high_embedder.weights.device, dtype).reshape(-1).clamp(0.0, 1.0)
        if low.shape != high.shape:
            raise ValueError(f"RolloffFourierConditioner: low {tuple(low.shape)} and high {tuple(high.shape)} differ")
        return torch.cat((self.low_embedder(low), self.high_embedder(high)), dim=-1)

    def forward(
        self, low: torch.Tensor, high: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(low, high)
        cross = self.to_cross(feats)[:, None, :]
        if self.training and self.dropout_rate > 0:
            keep = torch.rand(cross.shape[0], generator=generator, device=cross.device) >= self.dropout_rate
            cross = cross * keep[:, None, None].to(cross.dtype)
        return cross, self.to_global(feats)


__all__ = ["RolloffFourierConditioner"]
