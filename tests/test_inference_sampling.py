"""saga_sr.inference.sampling: the one sampling path runs the flow relative to the LR input's level and
gives the level back, so a louder input gives a proportionally louder latent from the same noise."""

from __future__ import annotations

import torch

from saga_sr.config import load_config
from saga_sr.inference.sampling import relative_latents, sample_latents
from saga_sr.inference.schedules import linear_quadratic
from saga_sr.models.build import build_model


def _model(gain: bool):
    cfg = load_config("tiny")
    cfg["sample_size"] = 4096
    for key in ("lr_prefill", "target_band_limit", "lr_gain"):
        cfg["model"]["diffusion"].pop(key, None)
    if gain:
        cfg["model"]["diffusion"]["lr_gain"] = {"smooth_frames": 3, "floor": 0.1}
    model = build_model(cfg, seed=0).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # random DiT weights (the init zeroes its residual branches)
        for p in model.model.parameters():
            p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return model


def _sample(model, z_lr, noise):
    metadata = [{"prompt": "", "input_rolloff": 0.3, "target_rolloff": 0.9, "seconds_start": 0.0,
                 "seconds_total": 1.0}] * z_lr.shape[0]
    cond = model.conditioning(metadata, "cpu")
    rolloff = (torch.full((z_lr.shape[0],), 0.3), torch.full((z_lr.shape[0],), 0.9))
    return sample_latents(model, z_lr, cond, noise, linear_quadratic(3), cfg_audio=1.4, cfg_text=1.2,
                          rolloff=rolloff if model.rolloff_conditioner is not None else None)


def test_relative_latents_divide_by_the_lr_gain_only_when_configured():
    z_lr, z = torch.rand(1, 4, 8, generator=torch.Generator().manual_seed(0)) + 0.5, torch.ones(1, 4, 8)
    model = _model(gain=True)
    gain, (rel_lr, rel_z) = relative_latents(model, z_lr, z)
    torch.testing.assert_close(rel_lr * gain, z_lr)
    torch.testing.assert_close(rel_z, z / gain)
    gain, (same_lr, same_z) = relative_latents(_model(gain=False), z_lr, z)
    assert gain is None and same_lr is z_lr and same_z is z


def test_sampling_follows_the_input_level():
    model = _model(gain=True)
    g = torch.Generator().manual_seed(2)
    z_lr = torch.randn(1, model.latent_channels, 16, generator=g)
    noise = torch.randn(1, model.latent_channels, 16, generator=g)
    quiet, loud = _sample(model, z_lr, noise), _sample(model, 4.0 * z_lr, noise)
    torch.testing.assert_close(loud, 4.0 * quiet, rtol=1e-4, atol=1e-5)
    plain = _model(gain=False)  # without a gain the DiT sees the level itself: no such proportion
    assert (_sample(plain, 4.0 * z_lr, noise) - 4.0 * _sample(plain, z_lr, noise)).abs().max() > 1e-2
