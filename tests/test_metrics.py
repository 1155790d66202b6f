"""Metrics: known answers for both LSD variants, the HF/LF split, silence handling, SI-SDR, all_metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from saga_sr.audio.metrics import LENGTH_TOLERANCE, align, all_metrics, lsd, lsd_bands, lsd_hf, lsd_lf, lsd_ssr, si_sdr

SR = 44100
LOG10_4 = 2 * np.log10(2.0)
X = (0.1 * np.random.default_rng(0).standard_normal((2, SR))).astype(np.float64)


def _lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    spec = np.fft.rfft(x, axis=-1)
    spec[..., np.fft.rfftfreq(x.shape[-1], 1 / SR) > cutoff] = 0
    return np.fft.irfft(spec, x.shape[-1], axis=-1)


def test_identical_signals_give_zero():
    assert lsd(X, X, SR) == 0.0
    assert lsd_ssr(X, X, SR) == pytest.approx(0.0, abs=1e-9)
    assert lsd_bands(X, X, SR, 4000.0) == (0.0, 0.0)


@pytest.mark.parametrize("fn", [lsd, lsd_ssr])
def test_gain_of_half_gives_2_log10_2(fn):
    assert fn(X, 0.5 * X, SR) == pytest.approx(LOG10_4, abs=1e-6)
    assert fn(X, 2.0 * X, SR) == pytest.approx(LOG10_4, abs=1e-6)


def test_lsd_matches_an_independent_scipy_computation():
    est = X + 0.05 * np.random.default_rng(1).standard_normal(X.shape)
    values = []
    for c in range(2):
        _, _, r = signal.stft(X[c], window="hann", nperseg=2048, noverlap=1536, boundary="zeros", padded=False)
        _, _, e = signal.stft(est[c], window="hann", nperseg=2048, noverlap=1536, boundary="zeros", padded=False)
        scale = np.hanning(2049)[:-1].sum()
        pr, pe = np.abs(r * scale) ** 2, np.abs(e * scale) ** 2
        d = np.log10(np.maximum(pr, 1e-8)) - np.log10(np.maximum(pe, 1e-8))
        values.append(np.sqrt((d**2).mean(axis=0))[: 1 + SR // 512].mean())
    assert lsd(X, est, SR) == pytest.approx(np.mean(values), rel=1e-3)


def test_silent_frames_do_not_blow_up():
    ref = X.copy()
    ref[:, : SR // 2] = 0.0  # half a second of digital silence in both
    # ssr_eval variant: frames silent in both are left out
    assert lsd_ssr(ref, 0.5 * ref, SR) == pytest.approx(LOG10_4, abs=1e-6)
    # NU-Wave variant: the 1e-8 floor makes them count as 0 (frames 0..41 see only zeros)
    frames = 1 + SR // 512
    assert lsd(ref, 0.5 * ref, SR) == pytest.approx(LOG10_4 * (frames - 42) / frames, abs=1e-3)
    silent = np.zeros((2, SR))
    assert lsd(silent, silent, SR) == 0.0 and lsd_ssr(silent, silent, SR) == 0.0
    # silence only in the estimate is still penalised
    assert lsd(X, np.zeros_like(X), SR) > 5.0


def test_band_split_at_the_cutoff():
    est = _lowpass(X, 6000.0)
    hf, lf = lsd_bands(X, est, SR, 6000.0)
    assert lf < 0.05 and hf > 3.0
    assert lsd_hf(X, est, SR, 6000.0) == hf and lsd_lf(X, est, SR, 6000.0) == lf
    # the full-band LSD lies between the two (it is a root-mean over all bins)
    assert lf < lsd(X, est, SR) < hf
    hf2, lf2 = lsd_bands(X, 0.5 * X, SR, 6000.0)
    assert hf2 == pytest.approx(LOG10_4, abs=1e-6) and lf2 == pytest.approx(LOG10_4, abs=1e-6)


def test_si_sdr_known_answers():
    assert si_sdr(X, 0.3 * X) > 100.0
    rng = np.random.default_rng(2)
    for snr in (-5.0, 10.0, 30.0):
        noise = rng.standard_normal(X.shape)
        noise -= ((noise * X).sum(-1) / (X * X).sum(-1))[:, None] * X  # orthogonal to the reference
        noise *= np.sqrt((X**2).sum(-1) / (noise**2).sum(-1))[:, None] * 10 ** (-snr / 20)
        assert si_sdr(X, X + noise) == pytest.approx(snr, abs=0.01)
    assert np.isfinite(si_sdr(np.zeros(100), np.zeros(100)))


def test_channels_averaged_and_lengths_trimmed_within_one_hop():
    est = np.stack([X[0], 0.5 * X[1]])
    assert lsd(X, est, SR) == pytest.approx(LOG10_4 / 2, abs=1e-6)
    assert lsd(X, np.pad(0.5 * X, ((0, 0), (0, 300))), SR) == pytest.approx(LOG10_4, abs=1e-6)
    with pytest.raises(ValueError, match="channel"):
        lsd(np.zeros((2, 100)), np.zeros((3, 100)), SR)


def test_mismatched_pairs_are_errors_unless_aligned_on_purpose():
    """An estimate equal to the reference plus 10 s of loud noise must not score a perfect LSD / SI-SDR."""
    noisy = np.concatenate([X, np.random.default_rng(1).normal(0, 0.5, (2, 10 * SR))], axis=1)
    for metric in (lambda r, e: lsd(r, e, SR), lambda r, e: lsd_ssr(r, e, SR), si_sdr):
        with pytest.raises(ValueError, match="length mismatch"):
            metric(X, noisy)
        with pytest.raises(ValueError, match="channel mismatch"):
            metric(X[:1], X)
    with pytest.raises(ValueError, match="length mismatch"):
        lsd(X, X[:, : X.shape[1] - LENGTH_TOLERANCE - 1], SR)
    assert lsd(X, X[:, : X.shape[1] - LENGTH_TOLERANCE], SR) == 0.0  # within one hop: trimmed
    assert lsd(*align(X[:1], np.repeat(0.5 * X[:1], 2, axis=0)), SR) == pytest.approx(LOG10_4, abs=1e-6)
    assert lsd(*align(X, noisy), SR) == 0.0  # aligning is explicit: the noise is cut away


@pytest.mark.parametrize("cutoff", [0.0, -1.0, SR / 2, 30000.0])
def test_band_cutoff_must_lie_inside_the_band(cutoff):
    with pytest.raises(ValueError, match="must lie in"):
        lsd_bands(X, X, SR, cutoff)


def test_all_metrics_keys():
    m = all_metrics(X, 0.5 * X, SR, cutoff_hz=4000.0)
    assert set(m) == {"lsd", "lsd_ssr", "lsd_hf", "lsd_lf", "si_sdr"}
    assert m["lsd"] == pytest.approx(LOG10_4, abs=1e-6) and m["si_sdr"] > 100
    assert all_metrics(X, X, SR)["lsd_hf"] is None


def test_lsd_ssr_matches_an_independent_scipy_computation():
    est = _lowpass(X, 8000.0) + 1e-4 * np.random.default_rng(3).standard_normal(X.shape)
    values = []
    for c in range(2):
        spec = []
        for x in (X[c], est[c]):
            _, _, z = signal.stft(x, window="hann", nperseg=2048, noverlap=2048 - 441, boundary="zeros", padded=False)
            spec.append(np.abs(z * np.hanning(2049)[:-1].sum())[:, : 1 + SR // 441])
        d = np.log10(spec[0] ** 2 / (spec[1] + 1e-12) ** 2 + 1e-12)
        values.append(np.sqrt((d**2).mean(axis=0)).mean())
    assert lsd_ssr(X, est, SR) == pytest.approx(np.mean(values), rel=1e-3)
