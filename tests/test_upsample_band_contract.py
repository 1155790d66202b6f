"""The upsampling contract: the input's real content is never replaced. For CC0 recordings
(vocal, music, drums) at 8, 16, 22.05 and 32 kHz (and 4 kHz), the output matches the input (resampled to 44.1 kHz)
over 50 Hz .. 0.9 x the input's Nyquist, with LSD < 0.3 -- whatever the model, here the tiny config with
every DiT weight random (one step, CFG scales 1: one DiT pass, which keeps the test quick; the band
survives by construction, whatever the sampling). And the model's input roll-off f_l is the measured roll-off,
never the edge."""

from pathlib import Path

import numpy as np
import pytest
import soxr

from saga_sr.audio.io import load_audio
from saga_sr.audio.metrics import lsd_range
from saga_sr.audio.spectral import hz_to_normalized, rolloff

DEMO = Path(__file__).resolve().parents[1] / "saga_sr" / "assets" / "demo" / "test"
CLIPS = ["vocal/ambi_choir.flac", "music/loop_mika.flac", "drums/loop_compus.flac"]


@pytest.fixture(scope="module")
def upsampler(random_upsampler):
    return random_upsampler


@pytest.mark.slow
@pytest.mark.parametrize("clip", CLIPS)
def test_input_band_survives(upsampler, clip):
    hr, _ = load_audio(DEMO / clip, target_sr=44100)
    hr = hr[:, :44100]
    for rate in (4000, 8000, 16000, 22050, 32000):  # 4 kHz: the crossfade narrows (audio.lfr.edge_crossfade_hz)
        x = soxr.resample(hr.T, 44100, rate, "HQ").T.astype(np.float32)
        y, info = upsampler.upsample_with_info(x, rate, steps=1, cfg_audio=1.0, cfg_text=1.0)
        ref = soxr.resample(x.T, rate, 44100, "HQ").T
        band = lsd_range(ref, y, 44100, 50.0, 0.9 * rate / 2)
        assert band < 0.3, (clip, rate, band, info)
        assert info.band_edge_hz >= 0.9 * rate / 2 and info.rolloff_hz < info.band_edge_hz


def test_rolloff_conditioning_is_measured_not_the_edge(upsampler, monkeypatch):
    """f_l (input_rolloff / rolloff_low) is the input's 98.5 % roll-off at 44.1 kHz, as in training, with
    the detected edge and with an explicit input_cutoff_hz alike."""
    hr, _ = load_audio(DEMO / CLIPS[0], target_sr=44100)
    x = soxr.resample(hr[:, :44100].T, 44100, 16000, "HQ").T.astype(np.float32)
    expected = rolloff(soxr.resample(x.T, 16000, 44100, "HQ").T, 44100).hz
    seen = []
    real = upsampler.model.conditioning
    monkeypatch.setattr(
        upsampler.model,
        "conditioning",
        lambda metadata, device: seen.append(dict(metadata[0])) or real(metadata, device),
    )
    for cutoff in (None, 3000.0):
        _, info = upsampler.upsample_with_info(x, 16000, steps=1, input_cutoff_hz=cutoff)
        assert info.rolloff_hz == pytest.approx(expected, abs=44100 / 2048)
        assert seen[-1]["rolloff_low"] == info.rolloff_hz
        assert seen[-1]["input_rolloff"] == pytest.approx(hz_to_normalized(info.rolloff_hz, 44100))
    assert info.band_edge_hz == 3000.0 and info.detected_edge_hz > 7000
