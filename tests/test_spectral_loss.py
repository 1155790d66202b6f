"""training.spectral_loss: the auxiliary multi-resolution log-spectral term on the predicted clean sample."""

from __future__ import annotations

import torch

from saga_sr.config import check_config, load_config
from saga_sr.config.typed import TrainingSettings
from saga_sr.training.spectral_loss import multires_log_spectral_loss

SR = 44100


def _tone(hz: float, n: int = 8192) -> torch.Tensor:
    t = torch.arange(n) / SR
    return torch.sin(2 * torch.pi * hz * t)[None, None]


def test_zero_for_identical_audio_and_larger_for_an_error_in_the_weighted_high_band():
    base = _tone(1000.0) + 0.1 * _tone(9000.0)
    assert multires_log_spectral_loss(base, base, SR, [4000.0]).item() == 0.0
    low_error = base + 0.1 * _tone(2000.0)
    high_error = base + 0.1 * _tone(12000.0)
    flat = [
        multires_log_spectral_loss(x, base, SR, [4000.0], high_band_weight=1.0).item() for x in (low_error, high_error)
    ]
    weighted = [
        multires_log_spectral_loss(x, base, SR, [4000.0], high_band_weight=8.0).item() for x in (low_error, high_error)
    ]
    assert weighted[1] / weighted[0] > 2 * flat[1] / flat[0]


def test_item_weights_scale_each_item():
    a, b = _tone(1000.0), _tone(1500.0)
    one = multires_log_spectral_loss(a, b, SR, [4000.0]).item()
    half = multires_log_spectral_loss(a, b, SR, [4000.0], item_weights=torch.tensor([0.5])).item()
    assert abs(half - 0.5 * one) < 1e-6 * max(1.0, one)


def test_config_block_is_checked_and_read():
    cfg = load_config("tiny")
    assert TrainingSettings.from_config(cfg).spectral_loss_weight == 0.0
    cfg["training"]["spectral_loss"] = {"weight": 0.2, "high_band_weight": 3}
    assert check_config(cfg) == []
    s = TrainingSettings.from_config(cfg)
    assert (s.spectral_loss_weight, s.spectral_loss_high_band) == (0.2, 3.0)
    cfg["training"]["spectral_loss"] = {"weight": -1}
    assert any("spectral_loss" in p for p in check_config(cfg))


def test_trainer_adds_the_term_and_it_reaches_the_dit(make_tiny_model, make_noise_batch):
    from saga_sr.training.module import SAGASRTrainer

    def edit(weight):
        def apply(cfg: dict) -> None:
            cfg["model"]["diffusion"].pop("lr_prefill", None)
            if weight:
                cfg["training"]["spectral_loss"] = {"weight": weight}

        return apply

    audio, metadata = make_noise_batch(2, 4096, seed=0, lr_cutoff_hz=4000.0)
    losses = []
    for weight in (0.0, 0.5):
        model = make_tiny_model(sample_size=4096, edit=edit(weight), randomize=("dit",))
        trainer = SAGASRTrainer(model, use_ema=False)
        loss = trainer.flow_step(audio, metadata, torch.Generator().manual_seed(1), t=torch.full((2,), 0.3))
        loss.backward()
        grads = [p.grad.abs().sum() for p in model.dit.parameters() if p.grad is not None]
        assert torch.isfinite(loss) and grads and sum(grads) > 0
        losses.append(loss.item())
    assert losses[1] > losses[0]
