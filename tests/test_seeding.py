"""saga_sr.seeding: named streams never share a seed, and the upsampler's per-window draws use them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from saga_sr import seeding
from saga_sr.seeding import Stream, derive_seed, numpy_rng, torch_generator


def test_no_two_streams_of_any_seed_and_window_coincide():
    keyed = [derive_seed(s, stream, w) for s, stream, w in itertools.product(range(4), Stream, range(4))]
    unkeyed = [derive_seed(s, stream) for s, stream in itertools.product(range(4), Stream)]
    two_keys = [derive_seed(s, stream, w, 0) for s, stream, w in itertools.product(range(4), Stream, range(4))]
    everything = keyed + unkeyed + two_keys
    assert len(set(everything)) == len(everything) == 4 * len(Stream) * 9


def test_a_trailing_zero_key_is_another_seed():
    """numpy's SeedSequence alone maps [a, b] and [a, b, 0] to one state; the key count keeps them apart."""
    assert np.random.SeedSequence([1, 2]).generate_state(1)[0] == np.random.SeedSequence([1, 2, 0]).generate_state(1)[0]
    assert derive_seed(1, Stream.NOISE) != derive_seed(1, Stream.NOISE, 0)
    assert numpy_rng(1, Stream.CROP, 5).random() != numpy_rng(1, Stream.CROP, 5, 0).random()


def test_seeds_are_stable_and_need_a_named_stream():
    assert derive_seed(3, Stream.NOISE, 2) == derive_seed(3, Stream.NOISE, 2)
    assert 0 <= derive_seed(-1, Stream.NOISE, 2**70) < 2**63
    a = torch.rand(3, generator=torch_generator(3, Stream.POSTERIOR, 1))
    assert torch.equal(a, torch.rand(3, generator=torch_generator(3, Stream.POSTERIOR, 1)))
    with pytest.raises(TypeError, match="Stream"):
        derive_seed(3, 1, 2)


def dsp_prefilled(cfg: dict) -> None:
    cfg["model"]["diffusion"]["lr_prefill"] = "dsp"


def test_upsample_windows_draw_from_distinct_streams(monkeypatch, make_tiny_model):
    """Noise, posterior and DSP-prefill seeds of seeds 0 and 1 over several windows: all different (seeds derived by
    offsets would make seed 1's noise seed 0's posterior draw, and (seed 0, window 1) equal (seed 1, window 0))."""
    from saga_sr.inference import pipeline

    model = make_tiny_model(sample_size=2048, edit=dsp_prefilled)  # windows of 0.05 s: several per input
    generator_seeds, prefill_seeds = [], []
    real_generator, real_input = pipeline.torch_generator, model.lr_input

    def recording_generator(*parts, device="cpu"):
        generator_seeds.append(seeding.derive_seed(*parts))
        return real_generator(*parts, device=device)

    monkeypatch.setattr(pipeline, "torch_generator", recording_generator)
    model.lr_input = lambda lr, cutoffs, seeds: prefill_seeds.extend(seeds) or real_input(lr, cutoffs, seeds)
    wav = 0.1 * np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    up = pipeline.Upsampler(model)
    for seed in (0, 1):
        up.upsample(wav, 16000, steps=1, seed=seed, cfg_audio=1.0, cfg_text=1.0)
    windows = len(prefill_seeds) // 2
    assert windows >= 3
    assert len(generator_seeds) == 2 * 2 * windows  # a posterior and a noise generator per window and seed
    everything = generator_seeds + prefill_seeds
    assert len(set(everything)) == len(everything)
