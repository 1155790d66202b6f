"""saga_sr.inference.bands: the streamed analysis pass (roll-off f_l and band edge: block-wise sums equal the
whole-signal ones, the roll-off equals `audio.spectral.rolloff`, the edge `audio.bandedge.band_edge`) and the
user's target roll-off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from saga_sr.audio.bandedge import band_edge, long_term_power
from saga_sr.audio.lr_sim import simulate_lr
from saga_sr.audio.spectral import magnitude, rolloff
from saga_sr.inference.bands import DEFAULT_TARGET_ROLLOFF, LongTermSpectrum, measure_bands, resolve_target_rolloff

DATA = Path(__file__).parent / "data"


def streaming_rolloff_hz(wav, sr, block_frames):
    x = wav.mean(axis=0) if wav.ndim == 2 else wav
    block = block_frames * 512
    return measure_bands((x[i : i + block] for i in range(0, x.shape[-1], block)), sr, sr).rolloff_hz


@pytest.mark.parametrize("block_frames", [1, 7, 512])
def test_streaming_rolloff_equals_rolloff_on_the_same_audio(block_frames):
    x, sr = sf.read(DATA / "drums_stereo.flac", dtype="float32", always_2d=True)
    x = x.T[:, : 3 * sr]
    for wav in (x, x[0], simulate_lr(x, sr, cutoff=6000.0, filter_type="cheby1", order=8).audio):
        assert streaming_rolloff_hz(wav, sr, block_frames) == rolloff(wav, sr).hz
    # a length that is not a whole number of hops
    t = np.arange(12345) / sr
    tone = np.sin(2 * np.pi * 3000.0 * t).astype(np.float32)
    assert streaming_rolloff_hz(tone, sr, block_frames) == rolloff(tone, sr).hz


def test_resolve_target_rolloff_units_default_and_errors():
    sr = 44100
    norm, hz = resolve_target_rolloff(None, sr)
    assert norm == DEFAULT_TARGET_ROLLOFF and hz == pytest.approx(0.9 * 1025 * sr / 2048)
    assert resolve_target_rolloff(1.0, sr) == (1.0, pytest.approx(1025 * sr / 2048))  # <= 1: normalised
    norm, hz = resolve_target_rolloff(16000, sr)  # > 1: Hz
    assert hz == 16000.0 and norm == pytest.approx(16000 / (sr / 2048) / 1025)
    assert resolve_target_rolloff(sr / 2, sr)[1] == sr / 2
    for bad in (0.0, -3.0, float("nan"), float("inf"), sr / 2 + 1):
        with pytest.raises(ValueError, match="roll-off"):
            resolve_target_rolloff(bad, sr)


@pytest.mark.parametrize("length,block", [(100_001, 777), (3000, 5000), (512, 1), (2047, 2048)])
def test_blockwise_sums_equal_whole(length, block):
    x = np.random.default_rng(length).standard_normal(length)
    acc = LongTermSpectrum()
    for i in range(0, length, block):
        acc.push(x[i : i + block])
    acc.finish()
    np.testing.assert_allclose(acc.mag, magnitude(x).sum(axis=-1), rtol=1e-10)
    np.testing.assert_allclose(acc.power, long_term_power(x), rtol=1e-10)


def test_measure_bands_matches_the_pure_functions():
    sr = 44100
    x = soxr.resample(np.random.default_rng(0).standard_normal(3 * 16000) * 0.1, 16000, sr, "HQ")
    bands = measure_bands((x[i : i + 10_000] for i in range(0, len(x), 10_000)), sr, 16000)
    assert bands.rolloff_hz == pytest.approx(rolloff(x, sr).hz, abs=sr / 2048)
    ref = band_edge(x, sr, max_hz=8000)
    assert bands.edge.hz == ref.hz and bands.edge.cliff and bands.edge.drop_db == pytest.approx(ref.drop_db)
    assert measure_bands([x], sr, 6000).edge.hz <= 3000  # never above the input's own Nyquist
