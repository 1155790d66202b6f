"""saga_sr.inference.sampling: the one sampling path runs the flow relative to the LR input's level and
gives the level back, so a louder input gives a proportionally louder latent from the same noise."""

from __future__ import annotations

import pytest
import torch

from saga_sr.inference.sampling import relative_latents, sample_latents
from saga_sr.inference.schedules import linear_quadratic


@pytest.fixture(scope="module")
def random_model(make_tiny_model):
    """A random DiT (the init zeroes its residual branches), with the LR's per-frame gain or without it."""

    def make(gain: bool):
        def edit(cfg: dict) -> None:
            for key in ("lr_prefill", "target_band_limit", "lr_gain"):
                cfg["model"]["diffusion"].pop(key, None)
            if gain:
                cfg["model"]["diffusion"]["lr_gain"] = {"smooth_frames": 3, "floor": 0.1}

        return make_tiny_model(sample_size=4096, edit=edit, randomize=("dit",))

    return make


def _sample(model, z_lr, noise):
    metadata = [
        {"prompt": "", "input_rolloff": 0.3, "target_rolloff": 0.9, "seconds_start": 0.0, "seconds_total": 1.0}
    ] * z_lr.shape[0]
    cond = model.conditioning(metadata, "cpu")
    rolloff = (torch.full((z_lr.shape[0],), 0.3), torch.full((z_lr.shape[0],), 0.9))
    return sample_latents(
        model,
        z_lr,
        cond,
        noise,
        linear_quadratic(3),
        cfg_audio=1.4,
        cfg_text=1.2,
        rolloff=rolloff if model.rolloff_conditioner is not None else None,
    )


def test_relative_latents_divide_by_the_lr_gain_only_when_configured(random_model):
    z_lr, z = torch.rand(1, 4, 8, generator=torch.Generator().manual_seed(0)) + 0.5, torch.ones(1, 4, 8)
    model = random_model(gain=True)
    gain, (rel_lr, rel_z) = relative_latents(model, z_lr, z)
    torch.testing.assert_close(rel_lr * gain, z_lr)
    torch.testing.assert_close(rel_z, z / gain)
    gain, (same_lr, same_z) = relative_latents(random_model(gain=False), z_lr, z)
    assert gain is None and same_lr is z_lr and same_z is z


def test_sampling_follows_the_input_level(random_model):
    model = random_model(gain=True)
    g = torch.Generator().manual_seed(2)
    z_lr = torch.randn(1, model.latent_channels, 16, generator=g)
    noise = torch.randn(1, model.latent_channels, 16, generator=g)
    quiet, loud = _sample(model, z_lr, noise), _sample(model, 4.0 * z_lr, noise)
    torch.testing.assert_close(loud, 4.0 * quiet, rtol=1e-4, atol=1e-5)
    plain = random_model(gain=False)  # without a gain the DiT sees the level itself: no such proportion
    assert (_sample(plain, 4.0 * z_lr, noise) - 4.0 * _sample(plain, z_lr, noise)).abs().max() > 1e-2
