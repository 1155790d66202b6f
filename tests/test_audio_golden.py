"""Seeded golden arrays for the two DSP steps every result depends on: LR simulation and low-frequency
replacement. A change to either output (filter design, resampling, seeding, crossfade) fails here, even when
the property tests still pass. Regenerate on purpose only: SAGA_SR_REGEN_GOLDEN=1 pytest tests/test_audio_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from saga_sr.audio.lfr import low_frequency_replace
from saga_sr.audio.lr_sim import simulate_lr

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
SR = 44100
REGEN = os.environ.get("SAGA_SR_REGEN_GOLDEN") == "1"


def _signal(seed: int, channels: int = 2, length: int = 2048) -> np.ndarray:
    """Harmonics up to 18 kHz plus seeded white noise: energy on both sides of every cutoff drawn."""
    t = np.arange(length) / SR
    rng = np.random.default_rng(seed)
    tones = sum(
        np.sin(2 * np.pi * f * t + p) / (1 + i)
        for i, (f, p) in enumerate(zip((220, 1500, 4100, 7300, 11000, 18000), rng.uniform(0, 2 * np.pi, 6)))
    )
    x = 0.3 * tones + 0.05 * rng.standard_normal((channels, length))
    return x.astype(np.float32)


def _check(name: str, got: np.ndarray, meta: dict, *, atol: float) -> None:
    if REGEN:
        np.save(GOLDEN / f"{name}.npy", got)
        (GOLDEN / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    want = np.load(GOLDEN / f"{name}.npy")
    assert json.loads((GOLDEN / f"{name}.json").read_text()) == meta  # the drawn cutoff, filter and order
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


@pytest.mark.parametrize("seed", [0, 3, 4, 8])  # bessel, cheby1, ellip and butter draws
def test_lr_simulation_matches_golden(seed):
    r = simulate_lr(_signal(1), SR, seed=seed)
    # soxr and scipy pick SIMD kernels at run time, so another CPU may round differently: 1e-6 on [-1, 1] audio
    _check(
        f"lr_sim_seed{seed}",
        r.audio,
        {"cutoff_hz": r.cutoff_hz, "filter_type": r.filter_type, "order": r.order},
        atol=1e-6,
    )


def test_lfr_matches_golden():
    hr = _signal(2)
    lr = simulate_lr(hr, SR, cutoff=5000.0, filter_type="cheby1", order=8).audio
    pred = _signal(3)  # a "prediction" whose low band is wrong everywhere
    got = low_frequency_replace(pred, lr, SR, cutoff_hz=5000.0)
    auto = low_frequency_replace(pred, lr[:1], SR)  # mono LR serving both channels, cutoff from its roll-off
    _check("lfr_cutoff5000", got, {"cutoff_hz": 5000.0}, atol=1e-6)  # float FFTs: 1e-6 across CPUs
    _check("lfr_auto_mono", auto, {"cutoff_hz": None}, atol=1e-6)
