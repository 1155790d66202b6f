"""Rectified flow, the training objective (one module for training and validation).

stable-audio-tools' time convention: ``x_t = (1 - t) * x0 + t * noise``; t = 1 is pure noise,
the network predicts the velocity ``noise - x0`` and sampling integrates t from 1 down to 0.
The null LR latent (LR dropout in training = the unconditional branch of guidance) is part of this contract.

Shapes: x0 / noise / pred / target ``[B, C, T]`` latents; t ``[B]``; mask ``[B, T]`` (True = real frames).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TIMESTEP_SAMPLERS = ("uniform", "logit_normal")

# the authors' null LR latent (a constant -5): what LR dropout feeds in training and the unconditional
# classifier-free-guidance branch feeds at inference, so both sides must read this one value
NULL_LR_VALUE = -5.0

# the fixed times at which validation measures the flow loss (stable-audio-tools uses the same five)
VALIDATION_TIMESTEPS = (0.1, 0.3, 0.5, 0.7, 0.9)


def sample_timesteps(
    batch: int,
    kind: str = "uniform",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw training times in (0, 1): ``uniform`` or ``logit_normal`` (sigmoid of a standard normal, the
    official SAGA-SR choice). Random numbers come from `generator` only (its device decides where they are drawn)."""
    gen_device = generator.device if generator is not None else device
    if kind == "uniform":
        t = torch.rand(batch, generator=generator, device=gen_device)
    elif kind == "logit_normal":
        t = torch.sigmoid(torch.randn(batch, generator=generator, device=gen_device))
    else:
        raise ValueError(f"unknown timestep sampler {kind!r}; expected one of {TIMESTEP_SAMPLERS}")
    return t.to(device) if device is not None else t


def _per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a [B] time vector to broadcast against `like` ([B, ...])."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(like.shape[0])
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The point on the straight path from data (t = 0) to noise (t = 1)."""
    tt = _per_sample(t, x0)
    return (1 - tt) * x0 + tt * noise


def flow_source(noise: torch.Tensor, z_lr: torch.Tensor, bridge: float | None) -> torch.Tensor:
    """Where the flow starts (t = 1): pure noise, or with `model.diffusion.lr_bridge` = sigma the LR latent plus
    sigma x noise -- a bridge from the (DSP-prefilled) input to the target, so an untrained model already returns
    the input and training learns only the correction (FLowHigh starts at the LR mel for the same reason).
    `z_lr` is the real LR latent, never the null one of CFG dropout: both guidance branches start from it."""
    return noise if bridge is None else z_lr + bridge * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """d x_t / d t: what the network learns to predict."""
    return noise - x0


def clean_estimate(x_t: torch.Tensor, velocity: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The data point (t = 0) a velocity predicts from x_t: x_t - t * v (the inverse of `interpolate`)."""
    return x_t - _per_sample(t, x_t) * velocity


def flow_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error, over real (unpadded) latent frames only when `mask` [B, T] is given."""
    err = F.mse_loss(pred.float(), target.float(), reduction="none")
    if mask is None:
        return err.mean()
    m = mask.to(err.dtype).reshape(mask.shape[0], *([1] * (err.ndim - 2)), mask.shape[-1]).expand_as(err)
    return (err * m).sum() / m.sum().clamp_min(1.0)


def latent_mask(padding_mask: torch.Tensor, frames: int) -> torch.Tensor:
    """Sample-level padding mask [B, L] -> latent-frame mask [B, frames] (nearest, as stable-audio-tools)."""
    m = F.interpolate(padding_mask[:, None].float(), size=frames, mode="nearest")[:, 0]
    return m > 0.5
