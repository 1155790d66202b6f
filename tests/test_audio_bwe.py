"""DSP bandwidth-extension baseline: LR band untouched, tilted level above the cutoff, envelope, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from saga_sr.audio.bwe import dsp_bandwidth_extension
from saga_sr.audio.lr_sim import simulate_lr
from saga_sr.audio.spectral import magnitude

SR = 44100
BIN_HZ = SR / 2048
HR = (0.1 * np.random.default_rng(0).standard_normal((2, 2 * SR))).astype(np.float32)
LR = simulate_lr(HR, SR, cutoff=4000.0, filter_type="cheby1", order=8).audio


def test_deterministic_for_a_seed():
    a, b = dsp_bandwidth_extension(LR, SR, 4000.0, seed=1), dsp_bandwidth_extension(LR, SR, 4000.0, seed=1)
    assert np.array_equal(a, b) and a.shape == LR.shape and a.dtype == np.float32
    assert not np.array_equal(a, dsp_bandwidth_extension(LR, SR, 4000.0, seed=2))


def test_lr_band_untouched_and_high_band_filled_with_a_tilt():
    out = dsp_bandwidth_extension(LR, SR, 4000.0, seed=0)
    k = int(4000 / BIN_HZ)
    diff = magnitude(out - LR)[:, : k - 4].mean()
    assert 20 * np.log10(diff / magnitude(LR)[:, 10 : k - 4].mean()) < -40
    level = magnitude(out).mean(axis=(0, 2))
    lr_level = magnitude(LR).mean(axis=(0, 2))
    assert level[k + 10 : 900].min() > 30 * lr_level[k + 10 : 900].max()  # the LR had (almost) nothing there
    ref_level = level[k // 2 : int(0.9 * k)].mean()
    f_ref = np.sqrt(k // 2 * int(0.9 * k)) * BIN_HZ
    for f in (6000.0, 12000.0):  # -6 dB/octave continued from the top octave below the cutoff
        expected_db = 20 * np.log10(ref_level) - 6.0 * np.log2(f / f_ref)
        got_db = 20 * np.log10(level[int(f / BIN_HZ) - 3 : int(f / BIN_HZ) + 3].mean())
        assert got_db == pytest.approx(expected_db, abs=1.5)


def test_follows_the_temporal_envelope():
    lr = LR.copy()
    lr[:, SR:] *= 0.1  # second half 20 dB quieter
    lr[:, SR + SR // 2 :] = 0.0  # last quarter silent
    out = dsp_bandwidth_extension(lr, SR, 4000.0, seed=0)
    high = out - lr
    loud = np.sqrt((high[:, 4096 : SR - 4096] ** 2).mean())
    quiet = np.sqrt((high[:, SR + 4096 : SR + SR // 2 - 4096] ** 2).mean())
    assert 20 * np.log10(loud / quiet) == pytest.approx(20.0, abs=1.5)
    assert np.abs(high[:, SR + SR // 2 + 4096 :]).max() < 1e-9


def test_cutoff_at_nyquist_or_from_rolloff():
    np.testing.assert_array_equal(dsp_bandwidth_extension(LR, SR, 22050.0, seed=0), LR)
    auto = dsp_bandwidth_extension(LR[0], SR, None, seed=0)
    assert auto.shape == LR[0].shape and np.abs(auto - LR[0]).max() > 1e-3
