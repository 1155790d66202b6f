"""The Upsampler's fast guided velocity (conditioning once per window: T5 cached per file, DiT projections
once, cross-attention keys/values cached, the timestep-dependent roll-off prepend per step) equals the
plain per-step computation with the model's own `conditioning_inputs`, for the paper-style tiny config and
for the RolloffFourierConditioner path."""

import pytest
import torch

from saga_sr.config.rungs import with_rolloff_conditioner
from saga_sr.flow import NULL_LR_VALUE
from saga_sr.inference.guidance import guided_velocity
from saga_sr.inference.pipeline import window_conditioning


def rolloff_of(model, metadata):
    """The (input, target) roll-offs [B] a RolloffFourierConditioner reads, or None without one."""
    if model.rolloff_conditioner is None:
        return None
    return (torch.tensor([m["input_rolloff"] for m in metadata]), torch.tensor([m["target_rolloff"] for m in metadata]))


def reference_velocity(model, metadata, z_lr, x, t, s_a, s_t):
    """Paper eq. 4 with three plain model calls and conditioning recomputed for this t."""
    b = len(metadata)
    tb = torch.full((b,), t)
    cond = model.conditioning(metadata, "cpu")
    inputs = model.conditioning_inputs(cond, rolloff=rolloff_of(model, metadata), timestep=tb)
    null_text = dict(inputs, cross_attn_cond=torch.zeros_like(inputs["cross_attn_cond"]))
    null_lr = torch.full_like(z_lr, NULL_LR_VALUE)
    u00 = model(x, tb, input_concat_cond=null_lr, **null_text)
    ul0 = model(x, tb, input_concat_cond=z_lr, **null_text)
    ulc = model(x, tb, input_concat_cond=z_lr, **inputs)
    return u00 + s_a * (ul0 - u00) + s_t * (ulc - ul0)


@pytest.mark.parametrize("variant", ["paper", pytest.param("fourier_rolloff", marks=pytest.mark.slow)])
def test_fast_guided_velocity_matches_plain(variant, make_tiny_model):
    fourier = variant == "fourier_rolloff"
    edit = (lambda cfg: cfg.update(with_rolloff_conditioner(cfg))) if fourier else None
    model = make_tiny_model(
        sample_size=4096, edit=edit, randomize=("dit", "rolloff_conditioner") if fourier else ("dit",)
    )
    metadata = [
        {"prompt": "birdsong", "input_rolloff": 0.18, "target_rolloff": 0.9, "seconds_start": s, "seconds_total": 8.0}
        for s in (0.0, 1.5)
    ]
    g = torch.Generator().manual_seed(5)
    z_lr = torch.randn(2, model.latent_channels, 16, generator=g)
    x = torch.randn(2, model.latent_channels, 16, generator=g)
    with torch.no_grad():
        guided = guided_velocity(
            model,
            window_conditioning(model, metadata, {}, "cpu"),
            z_lr,
            scale_audio=1.4,
            scale_text=1.2,
            rolloff=rolloff_of(model, metadata),
        )
        fast = [guided(x, t) for t in (0.9, 0.4)]
        plain = [reference_velocity(model, metadata, z_lr, x, t, 1.4, 1.2) for t in (0.9, 0.4)]
    for f, p in zip(fast, plain):
        torch.testing.assert_close(f, p, atol=2e-5, rtol=1e-4)
    assert (fast[0] - fast[1]).abs().max() > 1e-4  # t matters (incl. the roll-off prepend)
