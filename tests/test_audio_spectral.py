"""STFT helpers and the paper's spectral roll-off, against known answers and scipy's STFT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from saga_sr.audio.io import load_audio
from saga_sr.audio.spectral import Rolloff, bin_of_hz, istft, rolloff, stft

SR = 44100
BIN_HZ = SR / 2048


def _band_noise(lo_hz: float, hi_hz: float, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """White noise with an ideal (FFT brick-wall) pass band [lo, hi] Hz."""
    n = int(SR * seconds)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[(f < lo_hz) | (f > hi_hz)] = 0
    return (0.1 * np.fft.irfft(spec, n) / np.std(np.fft.irfft(spec, n))).astype(np.float32)


def test_stft_shape_and_exact_inverse():
    x = np.random.default_rng(0).standard_normal((2, 10000))
    spec = stft(x)
    assert spec.shape == (2, 1025, 1 + 10000 // 512)
    np.testing.assert_allclose(istft(spec, 10000), x, atol=1e-10)


def test_stft_matches_scipy_centred_hann():
    x = np.random.default_rng(1).standard_normal(8192)
    ours = stft(x)
    _, _, ref = signal.stft(
        x, window="hann", nperseg=2048, noverlap=1536, boundary="zeros", padded=False, return_onesided=True
    )
    ref = ref * np.hanning(2049)[:-1].sum()  # scipy divides by the window sum
    np.testing.assert_allclose(np.abs(ours), np.abs(ref[:, : ours.shape[1]]), rtol=1e-6, atol=1e-6)


def test_silence_gives_zero_not_nan():
    r = rolloff(np.zeros((2, 44100), np.float32), SR)
    assert r == Rolloff(normalized=0.0, hz=0.0, bin=0)


@pytest.mark.parametrize("cutoff", [3000.0, 8000.0, 12000.0])
def test_energy_concentrated_just_below_cutoff_gives_cutoff(cutoff):
    r = rolloff(_band_noise(cutoff - 400, cutoff), SR)
    assert abs(r.bin - cutoff / BIN_HZ) <= 2
    assert r.hz == pytest.approx(r.bin * SR / 2048) and r.normalized == pytest.approx(r.bin / 1025)


@pytest.mark.parametrize("cutoff", [2000.0, 6000.0, 16000.0])
def test_flat_band_limited_noise_gives_98_5_percent_of_cutoff(cutoff):
    # summed magnitudes of flat noise grow linearly with frequency: the 98.5 % point is 0.985 * cutoff
    r = rolloff(_band_noise(0, cutoff), SR)
    assert abs(r.bin - 0.985 * cutoff / BIN_HZ) <= 2


def test_matches_independent_implementation_on_real_audio():
    wav, sr = load_audio(Path(__file__).parent / "data" / "drums_stereo.flac")
    _, _, z = signal.stft(wav.mean(0), window="hann", nperseg=2048, noverlap=1536, boundary="zeros", padded=False)
    cum = np.cumsum(np.abs(z).sum(axis=1))
    librosa_style_bin = int(np.argmax(cum >= 0.985 * cum[-1]))
    assert abs(rolloff(wav, sr).bin - librosa_style_bin) <= 1


def test_stereo_is_averaged_to_mono():
    left, right = _band_noise(0, 4000, seed=1), _band_noise(0, 12000, seed=2)
    assert rolloff(np.stack([left, right]), SR) == rolloff((left + right) / 2, SR)


def test_bin_of_hz():
    assert bin_of_hz(4000, SR) == int(4000 * 2048 / SR)
    assert bin_of_hz(1e9, SR) == 1024 and bin_of_hz(-5, SR) == 0


def test_hz_normalized_conversions_match_the_rolloff_definition():
    from saga_sr.audio.spectral import hz_of_bin, hz_to_normalized, normalized_to_hz

    for k in (0, 1, 463, 1024):
        assert hz_to_normalized(hz_of_bin(k, 44100), 44100) == pytest.approx(k / 1025)
        assert normalized_to_hz(k / 1025, 44100) == pytest.approx(hz_of_bin(k, 44100))
