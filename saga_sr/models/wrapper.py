"""SagaSRModel: the DiT, its conditioners and the frozen pretransform under SAO's checkpoint key layout.

Keys: `model.model.*` (DiT), `conditioner.conditioners.<id>.*`, `pretransform.model.*` (VAE; none for the
patched pretransform), `rolloff_conditioner.*` (optional). This module assembles the DiT's conditioning
inputs the way stable-audio-tools' ConditionedDiffusionModelWrapper does, plus the Fourier roll-off path:
the RolloffFourierConditioner's token goes after the cross-attention ids, and its global vector plus the
DiT's timestep embedding is the prepended condition (`build_rolloff_prepend`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from saga_sr.audio.bwe import dsp_bandwidth_extension
from saga_sr.audio.spectral import hz_to_normalized
from saga_sr.config.typed import ModelSettings
from saga_sr.models.conditioners import MultiConditioner

Cond = dict[str, tuple[torch.Tensor, torch.Tensor]]
LR_GAIN_EPS = 1e-3  # the smallest per-frame gain (an all-zero LR window)


class SagaSRModel(nn.Module):
    """Velocity model on latents with SAGA-SR's conditioning; no guidance inside (see inference.guidance)."""

    def __init__(
        self,
        model: nn.Module,
        conditioner: nn.Module,
        pretransform: nn.Module,
        *,
        config: dict,
        rolloff_conditioner: nn.Module | None = None,
        settings: ModelSettings | None = None,
    ) -> None:
        """`config` is kept as is (it is saved with the weights); what the model reads from it comes from
        `settings` (default: `ModelSettings.from_config(config)`)."""
        super().__init__()
        self.model = model
        self.conditioner = conditioner
        self.pretransform = pretransform
        self.rolloff_conditioner = rolloff_conditioner
        self.pretransform.requires_grad_(False)
        self.pretransform.eval()
        self.config = config
        s = self.settings = settings if settings is not None else ModelSettings.from_config(config)
        self.sample_rate, self.audio_channels, self.sample_size = s.sample_rate, s.audio_channels, s.sample_size
        self.latent_channels: int = int(pretransform.encoded_channels)
        self.downsampling_ratio: int = int(pretransform.downsampling_ratio)
        self.io_channels, self.input_concat_dim = s.io_channels, s.input_concat_dim
        self.cross_attn_cond_ids: list[str] = list(s.cross_attn_cond_ids)
        self.global_cond_ids: list[str] = list(s.global_cond_ids)
        self.diffusion_objective: str = s.diffusion_objective
        self.cfg_scales: dict = s.cfg_scales
        self.default_steps: int | None = s.default_steps  # sampling steps the model was tuned for

    def train(self, mode: bool = True) -> SagaSRModel:
        super().train(mode)
        self.pretransform.eval()  # frozen: never train-mode behaviour
        return self

    @property
    def dit(self) -> nn.Module:
        """The DiffusionTransformer (inside the DiTWrapper)."""
        return self.model.model

    # ---- latent space -------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, audio: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """audio [B, audio_channels, L] -> latent [B, latent_channels, L / downsampling_ratio] (frozen).

        A sampling VAE bottleneck draws its posterior noise from `generator` (None: the global RNG)."""
        return self.pretransform.encode(audio, generator=generator).detach()

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latent [B, latent_channels, T] -> audio [B, audio_channels, T * downsampling_ratio] (frozen)."""
        return self.pretransform.decode(z).detach()

    def lr_input(self, lr: torch.Tensor, cutoff_hz: Sequence[float], seeds: Sequence[int]) -> torch.Tensor:
        """The LR audio [B, C, L] the model encodes as its LR condition: as given, or (config
        `model.diffusion.lr_prefill: "dsp"`) with the DSP bandwidth extension above each item's cutoff.

        Why: a small model learns the spectral tilt just above the cutoff slowly (it under-fills there by
        ~20 dB after 1.5 k steps); given the DSP fill as its input it only has to correct it. LFR puts the
        real input band back afterwards, so the prefill never reaches the output below the cutoff."""
        if self.settings.lr_prefill is None:
            return lr
        x = lr.detach().float().cpu().numpy()
        out = [
            dsp_bandwidth_extension(item, self.sample_rate, float(c), int(s)) for item, c, s in zip(x, cutoff_hz, seeds)
        ]
        return torch.from_numpy(np.stack(out)).to(lr)

    def lr_gain(self, z_lr: torch.Tensor) -> torch.Tensor | None:
        """The per-frame gain [B, 1, T] the flow divides both latents by (config `model.diffusion.lr_gain`), or
        None when the config has none (SAO, the paper's configs: the flow runs on the latents as they are).

        Why: a small DiT does not learn to follow the input's level frame by frame; it puts the same high-band
        level into silences and loud passages. Dividing the HR and LR latents by the LR's own short-time RMS
        (over channels, a moving average over `smooth_frames`, floored at `floor` x the window's RMS) makes the
        flow predict the high band *relative* to the input, and multiplying the sample back by the same gain
        gives level following for free. Only the LR latent is used, so inference computes the same gain."""
        frames = self.settings.lr_gain_frames
        if frames <= 0:
            return None
        power = z_lr.float().pow(2).mean(dim=1, keepdim=True)  # [B, 1, T]
        smooth = torch.nn.functional.avg_pool1d(power, frames, stride=1, padding=frames // 2, count_include_pad=False)[
            ..., : power.shape[-1]
        ]
        window = power.mean(dim=-1, keepdim=True)
        floor = (self.settings.lr_gain_floor**2) * window
        return torch.maximum(smooth, floor).clamp_min(LR_GAIN_EPS**2).sqrt()

    # ---- conditioning -------------------------------------------------------------------------------------
    def conditioning(self, metadata: Sequence[dict], device: torch.device | str) -> Cond:
        """Run every conditioner on its metadata field: {id: (embedding, mask)}."""
        return self.conditioner(list(metadata), device)

    def rolloff_from_hz(self, hz: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """Roll-off in Hz -> the normalised value bin / 1025 the roll-off conditioners take (Hz = bin * sr / 2048)."""
        return torch.as_tensor(hz, dtype=torch.float32) * hz_to_normalized(1.0, self.sample_rate)

    def build_rolloff_prepend(
        self, rolloff_low: torch.Tensor, rolloff_high: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """The roll-off prepend token [B, 1, embed_dim]: roll-off global embedding + timestep embedding.

        `rolloff_low` / `rolloff_high` are normalised roll-offs [B] (see `rolloff_from_hz`)."""
        if self.rolloff_conditioner is None:
            raise ValueError(
                "build_rolloff_prepend: this model has no rolloff_conditioner "
                "(config model.diffusion.rolloff_conditioner)"
            )
        _, global_vec = self.rolloff_conditioner(rolloff_low, rolloff_high)
        return self._prepend_token(global_vec, t)

    def _prepend_token(self, global_vec: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=global_vec.device).reshape(-1).expand(global_vec.shape[0])
        return (global_vec + self.dit.timestep_embedding(t).to(global_vec.dtype))[:, None, :]

    def conditioning_inputs(
        self,
        cond: Cond,
        *,
        rolloff: tuple[torch.Tensor, torch.Tensor] | None = None,
        timestep: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor | None]:
        """The DiT's conditioning kwargs from conditioner outputs (and normalised roll-offs (low, high)).

        Cross-attention: the cross_attention_cond_ids in order, then the roll-off token if this model has a
        rolloff_conditioner and `rolloff` is given. Global: the global ids' embeddings concatenated on
        channels. Prepend: `build_rolloff_prepend(low, high, timestep)` (needs `timestep`). `rolloff` is ignored
        by models without a rolloff_conditioner (paper-style configs read roll-offs as number conditioners
        from the metadata fields `input_rolloff` / `target_rolloff`). `generator` drives the roll-off token's
        dropout in training mode."""
        tokens, masks = [], []
        for cid in self.cross_attn_cond_ids:
            emb, mask = cond[cid]
            if emb.dim() == 2:
                emb, mask = emb[:, None], mask[:, None]
            tokens.append(emb)
            masks.append(mask.bool())
        prepend = prepend_mask = None
        if rolloff is not None and self.rolloff_conditioner is not None:
            low, high = rolloff
            token, global_vec = self.rolloff_conditioner(low, high, generator=generator)
            tokens.append(token)
            masks.append(torch.ones(token.shape[:2], dtype=torch.bool, device=token.device))
            if timestep is None:
                raise ValueError("conditioning_inputs: the roll-off prepend token needs `timestep`")
            prepend = self._prepend_token(global_vec, timestep)
            prepend_mask = torch.ones(prepend.shape[:2], dtype=torch.bool, device=prepend.device)
        global_embed = None
        if self.global_cond_ids:
            global_embed = torch.cat([cond[gid][0] for gid in self.global_cond_ids], dim=-1)
            if global_embed.dim() == 3:
                global_embed = global_embed.squeeze(1)
        return {
            "cross_attn_cond": torch.cat(tokens, dim=1) if tokens else None,
            "cross_attn_mask": torch.cat(masks, dim=1) if masks else None,
            "global_embed": global_embed,
            "prepend_cond": prepend,
            "prepend_cond_mask": prepend_mask,
        }

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        input_concat_cond: torch.Tensor | None = None,
        **conditioning_inputs: Any,
    ) -> torch.Tensor:
        """Plain DiT call: x [B, io, T], t [B] -> velocity [B, io, T] (no guidance, no dropout)."""
        return self.model(x, t, input_concat_cond=input_concat_cond, **conditioning_inputs)


def used_conditioner(model: SagaSRModel):
    """The model's MultiConditioner restricted to the ids the DiT reads, so that e.g. an LR-only config (seed
    002's F0) never loads the T5 encoder it does not use. Shares the conditioner modules; not registered."""
    full = model.conditioner
    used = set(model.cross_attn_cond_ids) | set(model.global_cond_ids)
    if used >= set(full.conditioners):
        return full
    return MultiConditioner(
        {k: c for k, c in full.conditioners.items() if k in used}, default_keys=getattr(full, "default_keys", None)
    )


__all__ = ["SagaSRModel", "used_conditioner"]
