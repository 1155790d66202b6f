"""Rectified flow: path endpoints, target, time samplers, masked loss."""

from __future__ import annotations

import pytest
import torch

from saga_sr.flow import clean_estimate, flow_loss, interpolate, latent_mask, sample_timesteps, velocity_target


def test_path_endpoints_and_velocity():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    assert torch.allclose(interpolate(x0, noise, torch.zeros(3)), x0)
    assert torch.allclose(interpolate(x0, noise, torch.ones(3)), noise)
    t = torch.tensor([0.2, 0.5, 0.9])
    xt = interpolate(x0, noise, t)
    # moving along the target velocity from x_t by (1 - t) lands on the noise
    assert torch.allclose(xt + (1 - t)[:, None, None] * velocity_target(x0, noise), noise, atol=1e-6)
    assert torch.allclose(xt[1], 0.5 * (x0[1] + noise[1]))


@pytest.mark.parametrize("kind", ["uniform", "logit_normal"])
def test_timesteps_in_unit_interval_and_seeded(kind):
    a = sample_timesteps(4096, kind, torch.Generator().manual_seed(1))
    b = sample_timesteps(4096, kind, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (4096,)
    assert float(a.min()) > 0 and float(a.max()) < 1
    assert abs(float(a.mean()) - 0.5) < 0.02
    if kind == "logit_normal":  # concentrated around the middle
        assert float(((a > 0.25) & (a < 0.75)).float().mean()) > 0.6


def test_unknown_sampler():
    with pytest.raises(ValueError, match="unknown timestep sampler"):
        sample_timesteps(2, "cosine")


def test_masked_loss_ignores_padding():
    pred, target = torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    target[:, :, 2:] = 10.0  # the padded frames are way off
    mask = torch.tensor([[True, True, False, False]] * 2)
    assert float(flow_loss(pred, target, mask)) == 0.0
    assert float(flow_loss(pred, target)) == pytest.approx(50.0)
    target[0, 0, 0] = 1.0
    assert float(flow_loss(pred, target, mask)) == pytest.approx(1.0 / 12)


def test_latent_mask_nearest():
    pm = torch.zeros(1, 1024, dtype=torch.bool)
    pm[:, :512] = True
    assert latent_mask(pm, 4).tolist() == [[True, True, False, False]]


def test_clean_estimate_inverts_the_path_with_the_true_velocity():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, 4, 6, generator=g), torch.randn(3, 4, 6, generator=g)
    t = torch.tensor([0.1, 0.5, 0.9])
    x_t = interpolate(x0, noise, t)
    torch.testing.assert_close(clean_estimate(x_t, velocity_target(x0, noise), t), x0, rtol=1e-5, atol=1e-6)
