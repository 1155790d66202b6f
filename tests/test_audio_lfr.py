"""Low-frequency replacement: AudioSR's energy-matched replacement, the crossfade option, shapes."""

from __future__ import annotations

import numpy as np
import pytest

from saga_sr.audio.lfr import crossfade_weights, low_frequency_replace
from saga_sr.audio.spectral import magnitude

SR = 44100
BIN_HZ = SR / 2048


def _noise(hi_hz: float | None, seconds: float = 3.0, seed: int = 0, channels: int = 2) -> np.ndarray:
    n = int(SR * seconds)
    x = np.random.default_rng(seed).standard_normal((channels, n))
    if hi_hz is not None:
        spec = np.fft.rfft(x, axis=-1)
        spec[:, np.fft.rfftfreq(n, 1 / SR) > hi_hz] = 0
        x = np.fft.irfft(spec, n, axis=-1)
    return (0.1 * x / x.std()).astype(np.float32)


def _band_level(x: np.ndarray, lo: int, hi: int) -> float:
    return float(magnitude(x)[..., lo:hi, :].mean())


def test_crossfade_weights_shape():
    w = crossfade_weights(20, 10, 4)
    assert np.all(w[:6] == 1) and np.all(w[10:] == 0) and np.all(np.diff(w[5:11]) < 0)
    assert np.array_equal(crossfade_weights(20, 10, 0), (np.arange(20) < 10).astype(float))


@pytest.mark.parametrize("gain,expected_low_gain", [(1.1, 1.1), (2.0, 1.25), (0.5, 1 / 1.2)])
def test_energy_ratio_is_clamped_to_0_8_1_2(gain, expected_low_gain):
    """AudioSR (scale="input") moves the LR band to the prediction's level; the default moves the
    prediction to the LR's level (the same ratio, clamped the same way) and keeps the LR band as it is."""
    lr = _noise(None)
    k = int(8000 / BIN_HZ)
    for scale, low_gain, high_gain in [
        ("input", expected_low_gain, gain),
        ("prediction", 1.0, gain / expected_low_gain),
    ]:
        out = low_frequency_replace(gain * lr, lr, SR, cutoff_hz=8000.0, crossfade_hz=0.0, scale=scale)
        low = _band_level(out, 10, k - 10) / _band_level(lr, 10, k - 10)
        high = _band_level(out, k + 10, 1000) / _band_level(lr, k + 10, 1000)
        assert low == pytest.approx(low_gain, rel=0.02) and high == pytest.approx(high_gain, rel=0.02), scale
    with pytest.raises(ValueError, match="scale"):
        low_frequency_replace(lr, lr, SR, scale="both")


def test_lr_band_survives_and_prediction_kept_above():
    lr = _noise(6000.0, seed=1)
    pred = _noise(None, seed=2)
    out = low_frequency_replace(pred, lr, SR)  # cutoff from the LR roll-off, default crossfade
    assert out.shape == pred.shape and out.dtype == np.float32
    n = out.shape[-1]
    f = np.fft.rfftfreq(n, 1 / SR)

    def band(x, lo, hi):
        spec = np.fft.rfft(x, axis=-1)
        spec[:, (f < lo) | (f > hi)] = 0
        return np.fft.irfft(spec, n, axis=-1)

    low_out, low_lr = band(out, 50, 5000), band(lr, 50, 5000)
    corr = (low_out * low_lr).sum() / np.sqrt((low_out**2).sum() * (low_lr**2).sum())
    assert corr > 0.999
    high_out, high_pred = band(out, 7000, 20000), band(pred, 7000, 20000)
    gain = (high_out * high_pred).sum() / (high_pred**2).sum()  # the level match scales the prediction
    assert 0.8 - 1e-4 <= gain <= 1.2 + 1e-4
    assert 10 * np.log10(((high_out - gain * high_pred) ** 2).sum() / (high_pred**2).sum()) < -40.0


def _max_step_db(out: np.ndarray, k: int) -> float:
    level = 20 * np.log10(magnitude(out).mean(axis=(0, 2)))
    return float(np.abs(np.diff(level[k - 25 : k + 10])).max())


def test_crossfade_removes_the_seam():
    lr = _noise(9000.0, seconds=4.0, seed=3)
    pred = 0.5 * _noise(None, seconds=4.0, seed=4)  # level mismatch beyond the clamp: an 8 dB seam
    k = int(8000 / BIN_HZ)
    hard = low_frequency_replace(pred, lr, SR, cutoff_hz=8000.0, crossfade_hz=0.0)
    soft = low_frequency_replace(pred, lr, SR, cutoff_hz=8000.0)
    assert _max_step_db(hard, k) > 4.0
    assert _max_step_db(soft, k) < 0.5 * _max_step_db(hard, k)
    # with the crossfade the LR band below the fade is still exactly the (scaled) LR
    assert _band_level(soft, 10, k - 15) == pytest.approx(_band_level(hard, 10, k - 15), rel=1e-3)


def test_lengths_and_mono_lr_broadcast():
    pred = _noise(None, seconds=1.0, seed=5)
    lr = _noise(4000.0, seconds=1.2, seed=6, channels=1)
    out = low_frequency_replace(pred, lr, SR)
    assert out.shape == pred.shape
    out1 = low_frequency_replace(pred[0], lr[0, :30000], SR)
    assert out1.shape == pred[0].shape
    with pytest.raises(ValueError, match="channels"):
        low_frequency_replace(pred, np.zeros((3, 100)), SR)


def test_silent_lr_leaves_prediction_unchanged():
    pred = _noise(None, seconds=0.5, seed=7)
    out = low_frequency_replace(pred, np.zeros_like(pred), SR)
    np.testing.assert_allclose(out, pred, atol=1e-6)


def test_matches_an_independent_audiosr_style_replacement():
    from scipy import signal

    pred, lr = _noise(None, seconds=1.0, seed=8, channels=1)[0], _noise(5000.0, seconds=1.0, seed=9, channels=1)[0]
    k = int(5000.0 / BIN_HZ)
    kw = dict(fs=SR, window="hann", nperseg=2048, noverlap=1536)
    _, _, sp = signal.stft(pred, **kw)
    _, _, sl = signal.stft(lr, **kw)
    ratio = np.clip(np.abs(sl[k]).sum() / np.abs(sp[k]).sum(), 0.8, 1.2)
    sp[:k] = sl[:k] / ratio
    _, ref = signal.istft(sp, **kw)
    ours = low_frequency_replace(pred, lr, SR, cutoff_hz=5000.0, crossfade_hz=0.0, scale="input")
    inner = slice(2048, len(pred) - 2048)  # edges differ: scipy pads differently
    err = ours[inner] - ref[: len(pred)][inner]
    assert 10 * np.log10((err**2).sum() / (ref[inner] ** 2).sum()) < -60


def test_edge_crossfade_keeps_the_band_to_0_9_nyquist():
    """Edges are found at >= 0.95 x the input's Nyquist: the crossfade below them starts above 0.9 x."""
    from saga_sr.audio.lfr import DEFAULT_CROSSFADE_HZ, edge_crossfade_hz

    for rate in (4000, 8000, 16000, 22050, 32000):
        edge = 0.95 * rate / 2
        assert edge - edge_crossfade_hz(edge) > 0.9 * rate / 2
    assert edge_crossfade_hz(15000.0) == DEFAULT_CROSSFADE_HZ


def test_limit_to_target_removes_the_band_above_and_keeps_the_band_below():
    from saga_sr.audio.lfr import limit_to_target

    sr = 44100
    x = np.random.default_rng(0).standard_normal(sr).astype(np.float32) * 0.1

    def band_db(y, lo, hi):
        spec = np.abs(np.fft.rfft(y)) ** 2
        f = np.fft.rfftfreq(len(y), 1 / sr)
        return 10 * np.log10(spec[(f >= lo) & (f < hi)].mean() + 1e-30)

    y = limit_to_target(x, sr, 11000.0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert abs(band_db(y, 100, 10500) - band_db(x, 100, 10500)) < 0.1  # below the 3 % taper: unchanged
    assert band_db(y, 11200, 22000) < band_db(x, 11200, 22000) - 40  # above the target: gone (STFT masking: ~48 dB)
    np.testing.assert_array_equal(limit_to_target(x, sr, sr / 2), x)  # a target at the Nyquist: nothing to do
    stereo = limit_to_target(np.stack([x, -x]), sr, 11000.0)
    np.testing.assert_allclose(stereo[0], y, atol=1e-6) and np.testing.assert_allclose(stereo[1], -y, atol=1e-6)


def test_a_cutoff_at_the_nyquist_returns_the_input_whole():
    """A full-band input (band edge = the Nyquist of the output rate) has nothing above it to generate: the
    crossfade below the edge must not let the prediction into its top bins."""
    rng = np.random.default_rng(3)
    lr = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    pred = (1.0 * rng.standard_normal(SR)).astype(np.float32)  # 20 dB louder, everywhere
    np.testing.assert_array_equal(low_frequency_replace(pred, lr, SR, cutoff_hz=SR / 2), lr)
    below = low_frequency_replace(pred, lr, SR, cutoff_hz=SR / 2 - 400.0)  # an edge below it still crossfades
    assert not np.allclose(below, lr, atol=1e-3)
