"""model.diffusion.lr_bridge: the flow starts at the (DSP-prefilled) LR latent plus sigma x noise instead of pure
noise, in training (the DiT's x_t at t = 1) and in sampling (a model with zero velocity returns its start)."""

from __future__ import annotations

import pytest
import torch

from saga_sr.config import check_config, load_config
from saga_sr.config.typed import ModelSettings
from saga_sr.flow import flow_source
from saga_sr.inference.sampling import sample_latents
from saga_sr.inference.schedules import linear_quadratic


def test_flow_source_is_noise_without_a_bridge_and_the_lr_latent_plus_scaled_noise_with_one():
    g = torch.Generator().manual_seed(0)
    noise, z_lr = torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, 5, generator=g)
    assert flow_source(noise, z_lr, None) is noise
    torch.testing.assert_close(flow_source(noise, z_lr, 0.5), z_lr + 0.5 * noise)
    torch.testing.assert_close(flow_source(noise, z_lr, 0.0), z_lr)


def test_config_reads_and_checks_lr_bridge():
    cfg = load_config("tiny")
    assert ModelSettings.from_config(cfg).lr_bridge is None
    cfg["model"]["diffusion"]["lr_bridge"] = 0.5
    assert check_config(cfg) == [] and ModelSettings.from_config(cfg).lr_bridge == 0.5
    cfg["model"]["diffusion"]["lr_bridge"] = -1
    assert any("lr_bridge" in p for p in check_config(cfg))
    cfg["model"]["diffusion"]["lr_bridge"] = 0.5
    cfg["model"]["diffusion"]["config"]["input_concat_dim"] = 0
    assert any("lr_bridge" in p and "input_concat_dim" in p for p in check_config(cfg))


def _bridged(make_tiny_model, sigma):
    def edit(cfg: dict) -> None:
        for key in ("lr_prefill", "target_band_limit", "lr_gain"):
            cfg["model"]["diffusion"].pop(key, None)
        if sigma is not None:
            cfg["model"]["diffusion"]["lr_bridge"] = sigma

    return make_tiny_model(sample_size=4096, edit=edit)


@pytest.mark.parametrize("sigma", [None, 0.0, 0.5])
def test_sampling_with_zero_velocity_returns_where_the_flow_starts(make_tiny_model, monkeypatch, sigma):
    model = _bridged(make_tiny_model, sigma)
    monkeypatch.setattr(model.dit, "forward", lambda x, *args, **kwargs: torch.zeros_like(x))
    g = torch.Generator().manual_seed(1)
    z_lr = torch.randn(1, model.latent_channels, 16, generator=g)
    noise = torch.randn(1, model.latent_channels, 16, generator=g)
    metadata = [{"prompt": "", "seconds_start": 0.0, "seconds_total": 1.0, "input_rolloff": 0.3, "target_rolloff": 0.9}]
    rolloff = (torch.tensor([0.3]), torch.tensor([0.9])) if model.rolloff_conditioner is not None else None
    out = sample_latents(
        model,
        z_lr,
        model.conditioning(metadata, "cpu"),
        noise,
        linear_quadratic(4),
        cfg_audio=1.4,
        cfg_text=1.2,
        rolloff=rolloff,
    )
    torch.testing.assert_close(out, flow_source(noise, z_lr, sigma))


def test_training_with_a_zero_sigma_bridge_feeds_the_lr_latent_as_x_at_t_1(
    make_tiny_model, make_noise_batch, monkeypatch
):
    from saga_sr.training.module import SAGASRTrainer

    model = _bridged(make_tiny_model, 0.0)
    seen = {}

    def spy(x, t, input_concat_cond=None, **kwargs):
        seen["x"], seen["lr"] = x.detach().clone(), input_concat_cond.detach().clone()
        return torch.zeros_like(x)

    monkeypatch.setattr(model.dit, "forward", spy)
    trainer = SAGASRTrainer(model, use_ema=False)
    audio, metadata = make_noise_batch(2, 4096, seed=2)
    trainer.flow_step(audio, metadata, torch.Generator().manual_seed(3), t=torch.ones(2), dropout=False)
    torch.testing.assert_close(seen["x"], seen["lr"])
