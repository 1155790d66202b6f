"""The Upsampler's fast guided velocity (conditioning once per window: T5 cached per file, DiT projections
once, cross-attention keys/values cached, the seeds' timestep-dependent roll-off prepend per step) equals the
plain per-step computation with the model's own `conditioning_inputs`, for the paper-style tiny config and
for the seeds' RolloffFourierConditioner path."""

import pytest
import torch

from saga_sr.config import load_config
from saga_sr.config.rungs import with_rolloff_conditioner
from saga_sr.flow import NULL_LR_VALUE
from saga_sr.inference.guidance import guided_velocity
from saga_sr.inference.pipeline import Upsampler
from saga_sr.models.build import build_model


def random_dit(cfg):
    model = build_model(cfg, seed=0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in list(model.dit.parameters()) + list((model.rolloff_conditioner or torch.nn.Linear(1, 1)).parameters()):
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def reference_velocity(model, metadata, z_lr, x, t, s_a, s_t):
    """Paper eq. 4 with three plain model calls and conditioning recomputed for this t."""
    b = len(metadata)
    tb = torch.full((b,), t)
    cond = model.conditioning(metadata, "cpu")
    rolloff = None
    if model.rolloff_conditioner is not None:
        rolloff = (torch.tensor([m["input_rolloff"] for m in metadata]),
                   torch.tensor([m["target_rolloff"] for m in metadata]))
    inputs = model.conditioning_inputs(cond, rolloff=rolloff, timestep=tb)
    null_text = dict(inputs, cross_attn_cond=torch.zeros_like(inputs["cross_attn_cond"]))
    null_lr = torch.full_like(z_lr, NULL_LR_VALUE)
    u00 = model(x, tb, input_concat_cond=null_lr, **null_text)
    ul0 = model(x, tb, input_concat_cond=z_lr, **null_text)
    ulc = model(x, tb, input_concat_cond=z_lr, **inputs)
    return u00 + s_a * (ul0 - u00) + s_t * (ulc - ul0)


@pytest.mark.parametrize("variant", ["paper", pytest.param("seeds_rolloff", marks=pytest.mark.slow)])
def test_fast_guided_velocity_matches_plain(variant):
    cfg = load_config("tiny")
    cfg["sample_size"] = 4096
    if variant == "seeds_rolloff":
        cfg = with_rolloff_conditioner(cfg)
    model = random_dit(cfg)
    up = Upsampler(model, "cpu", "fp32")
    metadata = [{"prompt": "birdsong", "input_rolloff": 0.18, "target_rolloff": 0.9, "seconds_start": s,
                 "seconds_total": 8.0} for s in (0.0, 1.5)]
    g = torch.Generator().manual_seed(5)
    z_lr = torch.randn(2, model.latent_channels, 16, generator=g)
    x = torch.randn(2, model.latent_channels, 16, generator=g)
    with torch.no_grad():
        guided = guided_velocity(model, up._conditioning(metadata, {}), z_lr, scale_audio=1.4, scale_text=1.2,
                                 rolloff=up._rolloff(metadata))
        fast = [guided(x, t) for t in (0.9, 0.4)]
        plain = [reference_velocity(model, metadata, z_lr, x, t, 1.4, 1.2) for t in (0.9, 0.4)]
    for f, p in zip(fast, plain):
        torch.testing.assert_close(f, p, atol=2e-5, rtol=1e-4)
    assert (fast[0] - fast[1]).abs().max() > 1e-4  # t matters (incl. the seeds' prepend)
