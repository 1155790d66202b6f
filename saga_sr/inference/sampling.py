"""The one sampling path from noise to a latent, shared by the Upsampler and validation: the flow runs on
latents relative to the LR input's level (`relative_latents`), so the guided velocity, the sampler and the
gain all live here and nowhere else.

Shape legend: B batch, K latent channels, T latent frames.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, ContextManager, Mapping

import torch

from saga_sr.flow import flow_source
from saga_sr.inference.guidance import guided_velocity
from saga_sr.inference.samplers import euler

__all__ = ["relative_latents", "sample_latents"]


def relative_latents(
    model, z_lr: torch.Tensor, *latents: torch.Tensor
) -> tuple[torch.Tensor | None, tuple[torch.Tensor, ...]]:
    """(gain [B, 1, T] or None, (z_lr, *latents) divided by it): the latents the flow runs on.

    The gain is `model.lr_gain(z_lr)` (None: the config has none and the latents are returned as they are);
    it depends on the LR latent only, so training and sampling divide by the same gain."""
    gain = model.lr_gain(z_lr)
    both = (z_lr, *latents)
    return gain, (both if gain is None else tuple(z / gain for z in both))


@torch.no_grad()
def sample_latents(
    model,
    z_lr: torch.Tensor,
    cond: Mapping,
    noise: torch.Tensor,
    ts: torch.Tensor,
    *,
    cfg_audio: float,
    cfg_text: float,
    rolloff: tuple[torch.Tensor, torch.Tensor] | None = None,
    autocast: Callable[[], ContextManager] = nullcontext,
    callback: Callable | None = None,
) -> torch.Tensor:
    """Guided Euler sampling from `noise` [B, K, T] (around the LR latent with `lr_bridge`) to a latent [B, K, T]
    at the LR input's level.

    z_lr: the encoded LR input [B, K, T]; cond: the model's conditioner outputs for the batch; rolloff:
    normalised (input, target) roll-offs [B] for a roll-off conditioner; ts: the time grid."""
    gain, (z_rel,) = relative_latents(model, z_lr)
    velocity = guided_velocity(
        model, cond, z_rel, scale_audio=cfg_audio, scale_text=cfg_text, rolloff=rolloff, autocast=autocast
    )
    start = flow_source(noise.to(z_rel), z_rel, model.settings.lr_bridge)
    z = euler(velocity, start, ts, callback=callback)
    return z if gain is None else z * gain
