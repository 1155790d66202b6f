"""Band edge: known answers on noise low-passed at known frequencies, no edge for full-band or gently
tilted spectra, real recordings resampled down, and never above the file's own Nyquist."""

from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soxr

from saga_sr.audio.bandedge import band_edge, band_edge_from_power, long_term_power
from saga_sr.audio.io import load_audio

DEMO = Path(__file__).resolve().parents[1] / "saga_sr" / "assets" / "demo" / "test"


def noise(sr: int, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(sr * seconds)) * 0.1


def resampled_band(x: np.ndarray, sr: int, band_sr: int) -> np.ndarray:
    """x band-limited by going through band_sr and back (soxr HQ: passband to 0.913 x band_sr / 2)."""
    return soxr.resample(soxr.resample(x, sr, band_sr, "HQ"), band_sr, sr, "HQ")


@pytest.mark.parametrize(
    "sr,band_sr",
    [(44100, 8000), (44100, 16000), (44100, 22050), (44100, 32000), (48000, 8000), (48000, 32000), (16000, 8000)],
)
def test_resampler_cliff(sr, band_sr):
    """A file at `sr` whose real band is band_sr / 2: the edge lies in the resampler's transition band
    (0.913-1.0 x band_sr / 2), within 5 % below its end."""
    e = band_edge(resampled_band(noise(sr), sr, band_sr), sr)
    assert e.cliff and 0.95 * band_sr / 2 <= e.hz <= band_sr / 2, e
    assert e.drop_db > 30


@pytest.mark.parametrize("cutoff", [3000.0, 11000.0, 16000.0])
def test_filter_cliff(cutoff):
    """Steep IIR low-passes (an MP3 encoder's 16 kHz low-pass, elliptic order 10) at 44.1 kHz: the edge
    sits at the cutoff, within + max(4 %, 200 Hz) (STFT leakage and the median smoothing: ~9 bins)."""
    sos = scipy.signal.ellip(10, 0.1, 90, cutoff, fs=44100, output="sos")
    e = band_edge(scipy.signal.sosfiltfilt(sos, noise(44100)), 44100)
    assert e.cliff and cutoff <= e.hz <= cutoff + max(0.04 * cutoff, 200.0), e


@pytest.mark.parametrize("slope_db_per_octave", [0.0, -6.0, -12.0, -24.0])
def test_no_cliff_means_nyquist(slope_db_per_octave):
    """Full-band noise with a spectral tilt (natural content) has no edge below the Nyquist frequency."""
    sr = 32000
    spec = np.fft.rfft(noise(sr))
    f = np.maximum(np.fft.rfftfreq(int(sr * 3.0), 1 / sr), 50.0)
    x = np.fft.irfft(spec * (f / 50.0) ** (slope_db_per_octave / 20 / np.log10(2)))
    e = band_edge(x, sr)
    assert not e.cliff and e.hz == sr / 2


def test_never_above_max_hz_and_silence():
    x = noise(44100)
    assert band_edge(x, 44100, max_hz=8000).hz == 8000  # full band, but the file's own Nyquist is 8 kHz
    assert band_edge(resampled_band(x, 44100, 8000), 44100, max_hz=3000).hz <= 3000
    assert band_edge(np.zeros(4096), 44100).hz == 0.0
    assert band_edge_from_power(long_term_power(x), 44100).hz == band_edge(x, 44100).hz


def test_isolated_tone_above_the_band_is_ignored():
    """A pilot tone far above the band (narrower than the median smoothing) does not move the edge."""
    sr = 44100
    x = resampled_band(noise(sr), sr, 16000)
    t = np.arange(x.shape[0]) / sr
    e = band_edge(x + 0.01 * np.sin(2 * np.pi * 19000 * t), sr)
    assert e.cliff and 0.95 * 8000 <= e.hz <= 8000, e


@pytest.mark.parametrize("clip", ["vocal/ambi_choir.flac", "music/loop_mika.flac", "drums/loop_compus.flac"])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 32000])
def test_real_recordings_resampled_down(clip, rate):
    """CC0 recordings resampled down to `rate` and back up to 44.1 kHz: the edge is 0.93-1.0 x rate / 2,
    far above their 98.5 % roll-off, which for these clips is 0.4-0.9 x rate / 2."""
    hr, _ = load_audio(DEMO / clip, target_sr=44100)
    lr = soxr.resample(soxr.resample(hr.T, 44100, rate, "HQ"), rate, 44100, "HQ").T
    e = band_edge(lr, 44100, max_hz=rate / 2)
    assert 0.93 * rate / 2 <= e.hz <= rate / 2, e
