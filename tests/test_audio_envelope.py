"""audio.envelope: the generated band follows the LR's top-octave envelope (known answers), and the config key
that turns it on (model.diffusion.envelope_follow) is validated and reaches the upsampler's decode path."""

from __future__ import annotations

import numpy as np
import pytest

from saga_sr.audio.envelope import follow_top_octave_envelope
from saga_sr.audio.spectral import stft
from saga_sr.config import check_config, read_config
from saga_sr.config.typed import ModelSettings

SR, CUT = 44100, 4000.0
N = 2 * SR


def _tone(hz: float, amp: float | np.ndarray = 1.0) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * hz * np.arange(N) / SR)).astype(np.float32)


def _pair() -> tuple[np.ndarray, np.ndarray]:
    """A prediction with a stationary 10 kHz band over a 1 kHz tone, and an LR whose top octave (a 3 kHz tone)
    steps from amplitude 1 to 0.25 halfway."""
    step = np.where(np.arange(N) < N // 2, 1.0, 0.25)
    pred = 0.1 * _tone(1000.0) + 0.1 * _tone(10000.0)
    lr = 0.5 * _tone(1000.0) + 0.2 * _tone(3000.0, step)
    return pred, lr


def _halves_rms(x: np.ndarray, hz: float) -> tuple[float, float]:
    """RMS of the STFT bin at `hz` over the middle of each half (away from the step)."""
    mag = np.abs(stft(x.astype(np.float64)))[round(hz * 2048 / SR)]
    t = mag.shape[0]
    first, second = mag[t // 8 : 3 * t // 8], mag[5 * t // 8 : 7 * t // 8]
    return float(np.sqrt(np.mean(first**2))), float(np.sqrt(np.mean(second**2)))


# the top octave's energy is 1 then 1/16 (mean 17/32): the band's total energy moves by mean((top / mean) ** s)
@pytest.mark.parametrize(
    "strength, ratio, energy", [(1.0, 0.25, 1.0), (0.5, 0.5, ((32 / 17) ** 0.5 + (2 / 17) ** 0.5) / 2)]
)
def test_band_takes_the_top_octave_envelope_at_strength(strength, ratio, energy):
    """Strength 1: the band's energy follows the top octave at the band's own total energy; 0.5: half the
    modulation depth in dB."""
    pred, lr = _pair()
    out = follow_top_octave_envelope(pred, lr, CUT, SR, strength)
    first, second = _halves_rms(out, 10000.0)
    assert second / first == pytest.approx(ratio, rel=0.03)
    band_in = (np.abs(stft(pred.astype(np.float64))[186:]) ** 2).sum()
    band_out = (np.abs(stft(out.astype(np.float64))[186:]) ** 2).sum()
    assert band_out / band_in == pytest.approx(energy, rel=0.03)
    in_first, in_second = _halves_rms(pred, 10000.0)
    assert in_second / in_first == pytest.approx(1.0, rel=0.01)  # the band was stationary


def test_input_band_below_the_cutoff_is_untouched_and_strength_zero_changes_nothing():
    pred, lr = _pair()
    before = pred.copy()
    out = follow_top_octave_envelope(pred, lr, CUT, SR, 1.0)
    np.testing.assert_array_equal(pred, before)  # never in place
    diff = np.abs(stft((out - pred).astype(np.float64))[: 186 - 8]) ** 2
    low = np.abs(stft(pred.astype(np.float64))[: 186 - 8]) ** 2
    assert diff.sum() < 1e-6 * low.sum()  # below -60 dB: only the gain steps' window skirts
    np.testing.assert_array_equal(follow_top_octave_envelope(pred, lr, CUT, SR, 0.0), pred)


def test_silent_top_octave_or_edge_at_nyquist_returns_the_prediction():
    pred, lr = _pair()
    only_low = 0.5 * _tone(1000.0)
    np.testing.assert_array_equal(follow_top_octave_envelope(pred, only_low * 0.0, CUT, SR, 1.0), pred)
    np.testing.assert_array_equal(follow_top_octave_envelope(pred, lr, 0.995 * SR / 2, SR, 1.0), pred)
    stereo = follow_top_octave_envelope(np.stack([pred, pred]), np.stack([lr, lr]), CUT, SR, 1.0)
    np.testing.assert_allclose(stereo[0], follow_top_octave_envelope(pred, lr, CUT, SR, 1.0), atol=1e-6)


def test_bad_strength_or_shapes_are_refused():
    pred, lr = _pair()
    with pytest.raises(ValueError, match="strength"):
        follow_top_octave_envelope(pred, lr, CUT, SR, 1.5)
    with pytest.raises(ValueError, match="same"):
        follow_top_octave_envelope(pred, lr[:-1], CUT, SR, 1.0)


@pytest.mark.parametrize("value", [1.5, -0.1, "half", True])
def test_config_refuses_bad_envelope_follow(value):
    cfg = read_config("mini")
    cfg["model"]["diffusion"]["envelope_follow"] = value
    problems = check_config(cfg)
    assert any("envelope_follow" in p for p in problems), problems


def test_config_envelope_follow_reaches_the_model_settings():
    cfg = read_config("mini")
    cfg["model"]["diffusion"].pop("envelope_follow", None)
    assert ModelSettings.from_config(cfg).envelope_follow == 0.0
    cfg["model"]["diffusion"]["envelope_follow"] = 0.5
    assert check_config(cfg) == []
    assert ModelSettings.from_config(cfg).envelope_follow == 0.5


def _band_envelope_correlation(out: np.ndarray, lr: np.ndarray, edge: float, sr: int) -> float:
    """Correlation over frames of the output's log band energy above the edge with the LR's top octave's."""
    k = round(edge * 2048 / sr)
    o, x = np.abs(stft(out.astype(np.float64))) ** 2, np.abs(stft(lr.astype(np.float64))) ** 2
    band = np.log10(o[k + 8 :].sum(axis=0) + 1e-20)
    top = np.log10(x[k // 2 : int(0.9 * k)].sum(axis=0) + 1e-20)
    return float(np.corrcoef(band[4:-4], top[4:-4])[0, 1])


def test_upsampler_applies_the_configured_envelope_following_per_chunk():
    """A random DiT's band does not follow the input's bursts; with envelope_follow 1 every decoded chunk's band
    does (the LR and its decode margin are at hand per chunk), and the upsampler reports the strength."""
    import torch

    from saga_sr.audio.resample import resample
    from saga_sr.inference.pipeline import Upsampler
    from saga_sr.models.build import build_model

    rng = np.random.default_rng(0)
    n = 32000
    bursts = np.where((np.arange(n) // 1600) % 2 == 0, 1.0, 0.05)
    wav = (0.2 * rng.standard_normal(n) * bursts).astype(np.float32)
    lr_model_rate = resample(wav[None], 16000, 44100)[0]
    corr = {}
    for strength in (0.0, 1.0):
        cfg = read_config("mini")
        cfg["sample_size"] = 16384
        cfg["model"]["diffusion"]["envelope_follow"] = strength
        for key in ("lr_prefill", "lr_gain", "lr_bridge"):  # prefill or bridge: the band has the LR's envelope
            cfg["model"]["diffusion"].pop(key)
        torch.manual_seed(0)
        up = Upsampler(build_model(cfg, seed=0).eval())
        out, info = up.upsample_with_info(wav, 16000, steps=1, input_cutoff_hz=7000.0)
        assert info.envelope_follow == strength
        corr[strength] = _band_envelope_correlation(out[0], lr_model_rate[: out.shape[-1]], 7000.0, 44100)
    assert corr[1.0] > 0.9, corr
    assert corr[1.0] > corr[0.0] + 0.1, corr


@pytest.mark.parametrize("strength", [0.0, 0.5])
def test_validation_follows_the_envelope_before_lfr_when_the_config_says_so(monkeypatch, strength):
    """Training's validation decodes outside the Upsampler: it applies the configured step to each item at its
    LFR cutoff with the item's LR, and not at all when the config leaves it off."""
    import torch

    from saga_sr.models.build import build_model
    from saga_sr.training import validation
    from saga_sr.training.module import SAGASRTrainer

    calls = []

    def spy(pred, lr, cutoff_hz, sr, s):
        calls.append((pred.shape, lr.shape, cutoff_hz, sr, s))
        return pred

    monkeypatch.setattr(validation, "follow_top_octave_envelope", spy)
    cfg = read_config("mini")
    cfg["sample_size"] = 4096
    cfg["model"]["diffusion"]["envelope_follow"] = strength
    module = SAGASRTrainer(build_model(cfg, seed=0), use_ema=False, val_steps=1)
    audio = 0.1 * torch.randn(2, 1, 4096, generator=torch.Generator().manual_seed(0))
    md = [
        {
            "lr_audio": 0.5 * audio[i],
            "padding_mask": torch.ones(4096, dtype=torch.bool),
            "prompt": "music",
            "input_rolloff": 0.2,
            "target_rolloff": 0.8,
            "rolloff_low": 3000.0 + 1000 * i,
            "lr_cutoff_hz": 3000.0 + 1000 * i,
        }
        for i in range(2)
    ]
    validation.validate_batch(module, audio, md, 0)
    expected = [((1, 4096), (1, 4096), 3000.0 + 1000 * i, 44100, strength) for i in range(2)] if strength else []
    assert calls == expected
