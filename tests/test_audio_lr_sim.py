"""LR simulation: cutoff drawing and capping, filter bank, determinism, stop-band level, stability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from saga_sr.audio.filters import FILTER_TYPES, lowpass_sos
from saga_sr.audio.io import load_audio
from saga_sr.audio.lr_sim import draw_cutoff, simulate_lr
from saga_sr.audio.spectral import magnitude, rolloff

SR = 44100
NOISE = (0.1 * np.random.default_rng(0).standard_normal((2, SR))).astype(np.float32)


def _band_energy_db(y: np.ndarray, ref: np.ndarray, cutoff: float) -> float:
    """Energy of y above the cutoff bin relative to ref's, in dB."""
    k = int(np.ceil(cutoff * 2048 / SR)) + 1
    return 10 * np.log10((magnitude(y)[..., k:, :] ** 2).sum() / (magnitude(ref)[..., k:, :] ** 2).sum())


@pytest.mark.parametrize("filter_type", FILTER_TYPES)
@pytest.mark.parametrize("order", [2, 10])
@pytest.mark.parametrize("cutoff", [2000.0, 16000.0])
def test_stop_band_40_db_down_and_finite(filter_type, order, cutoff):
    res = simulate_lr(NOISE, SR, cutoff=cutoff, filter_type=filter_type, order=order)
    assert res.audio.shape == NOISE.shape and res.audio.dtype == np.float32
    assert np.isfinite(res.audio).all()
    assert _band_energy_db(res.audio, NOISE, cutoff) < -40.0
    # the pass band survives: energy below a quarter of the cutoff within 1 dB (Bessel droops early)
    k = int(cutoff / 4 * 2048 / SR)
    ratio = (magnitude(res.audio)[:, 1:k] ** 2).sum() / (magnitude(NOISE)[:, 1:k] ** 2).sum()
    assert abs(10 * np.log10(ratio)) < 1.0
    assert (res.cutoff_hz, res.filter_type, res.order) == (cutoff, filter_type, order)


def test_deterministic_for_a_seed_and_varies_across_seeds():
    a, b = simulate_lr(NOISE, SR, seed=3), simulate_lr(NOISE, SR, seed=3)
    assert np.array_equal(a.audio, b.audio) and (a.cutoff_hz, a.filter_type, a.order) == (
        b.cutoff_hz,
        b.filter_type,
        b.order,
    )
    draws = {(r.cutoff_hz, r.filter_type, r.order) for r in (simulate_lr(NOISE, SR, seed=s) for s in range(6))}
    assert len(draws) > 3
    shared = np.random.default_rng(7)
    first, second = simulate_lr(NOISE, SR, rng=shared), simulate_lr(NOISE, SR, rng=shared)
    again = simulate_lr(NOISE, SR, rng=np.random.default_rng(7))
    assert np.array_equal(first.audio, again.audio) and first.cutoff_hz == again.cutoff_hz
    assert (first.cutoff_hz, first.filter_type, first.order) != (second.cutoff_hz, second.filter_type, second.order)


def test_drawn_cutoffs_cover_the_range_and_respect_the_rolloff_cap():
    rng = np.random.default_rng(0)
    draws = np.array([draw_cutoff(rng) for _ in range(2000)])
    assert draws.min() >= 2000 and draws.max() <= 16000
    assert draws.min() < 2200 and draws.max() > 15800 and abs(draws.mean() - 9000) < 300
    assert np.all(draws == np.round(draws))
    capped = np.array([draw_cutoff(rng, hr_rolloff_hz=5000.0) for _ in range(500)])
    assert capped.max() == pytest.approx(0.94 * 5000) and capped.min() >= 2000
    assert all(draw_cutoff(rng, hr_rolloff_hz=1000.0) == 2000.0 for _ in range(20))
    assert all(11025 <= draw_cutoff(rng, (11025, 16000)) <= 16000 for _ in range(50))


def test_rolloff_cap_measured_from_the_clip_when_not_given():
    dull = simulate_lr(NOISE, SR, cutoff=3000.0, filter_type="ellip", order=8).audio
    hr_rolloff = rolloff(dull, SR).hz
    for seed in range(5):
        res = simulate_lr(dull, SR, seed=seed)
        assert 2000.0 <= res.cutoff_hz <= 0.94 * hr_rolloff + 1e-9


def test_real_recording_is_band_limited_as_asked():
    wav, sr = load_audio(Path(__file__).parent / "data" / "guitar_stereo.flac")
    res = simulate_lr(wav, sr, cutoff=4000.0, filter_type="cheby1", order=8)
    assert res.audio.shape == wav.shape
    assert rolloff(res.audio, sr).hz <= 4000.0
    assert _band_energy_db(res.audio, wav, 4000.0) < -40.0


def test_mono_1d_input_and_bad_cutoff():
    res = simulate_lr(NOISE[0], SR, cutoff=8000.0, filter_type="butter", order=4)
    assert res.audio.shape == NOISE[0].shape
    with pytest.raises(ValueError, match="cutoff"):
        simulate_lr(NOISE, SR, cutoff=30000.0)
    with pytest.raises(ValueError, match="unknown filter"):
        simulate_lr(NOISE, SR, cutoff=4000.0, filter_type="cheby2", order=4)


def test_short_clip_does_not_fail():
    res = simulate_lr(NOISE[:, :64], SR, cutoff=2000.0, filter_type="ellip", order=10)
    assert res.audio.shape == (2, 64) and np.isfinite(res.audio).all()


def test_filter_designs_are_stable_sos():
    for ft in FILTER_TYPES:
        sos = lowpass_sos(ft, 10, 2000.0, SR)
        poles = np.concatenate([np.roots(s[3:]) for s in sos])
        assert np.all(np.abs(poles) < 1.0), ft


@pytest.mark.parametrize("rate", [16000, 22050])
def test_resample_only_is_a_real_low_rate_file(rate):
    """filter_type="resample": exactly the file a resampler makes at `rate`, brought back to 44.1 kHz."""
    import soxr

    res = simulate_lr(NOISE, SR, cutoff=rate / 2, filter_type="resample")
    low = soxr.resample(NOISE.T.astype(np.float64), SR, rate, quality="HQ")
    back = soxr.resample(low, rate, SR, quality="HQ").T[:, : NOISE.shape[1]]
    assert np.allclose(res.audio, back, atol=1e-6)
    assert _band_energy_db(res.audio, NOISE, rate / 2) < -40.0
    k = int(rate / 2 * 0.9 * 2048 / SR)  # the resampler keeps the band up to ~0.9 x Nyquist untouched
    ratio = (magnitude(res.audio)[:, 1:k] ** 2).sum() / (magnitude(NOISE)[:, 1:k] ** 2).sum()
    assert abs(10 * np.log10(ratio)) < 0.2
