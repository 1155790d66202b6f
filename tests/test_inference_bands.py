"""saga_sr.inference.bands: the streamed clip roll-off and the user's target roll-off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saga_sr.audio.lr_sim import simulate_lr
from saga_sr.audio.spectral import rolloff
from saga_sr.inference.bands import DEFAULT_TARGET_ROLLOFF, resolve_target_rolloff, streaming_rolloff_hz

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("block_frames", [1, 7, 512])
def test_streaming_rolloff_equals_rolloff_on_the_same_audio(block_frames):
    x, sr = sf.read(DATA / "drums_stereo.flac", dtype="float32", always_2d=True)
    x = x.T[:, : 3 * sr]
    for wav in (x, x[0], simulate_lr(x, sr, cutoff=6000.0, filter_type="cheby1", order=8).audio):
        assert streaming_rolloff_hz(wav, sr, block_frames=block_frames) == rolloff(wav, sr).hz
    # a length that is not a whole number of hops
    t = np.arange(12345) / sr
    tone = np.sin(2 * np.pi * 3000.0 * t).astype(np.float32)
    assert streaming_rolloff_hz(tone, sr, block_frames=block_frames) == rolloff(tone, sr).hz


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
