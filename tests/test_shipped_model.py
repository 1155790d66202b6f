"""The shipped saga-sr-mini model: it is packaged, loads, is the default of `upsample`, and its target
roll-off knob moves the output's high band."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tomllib

from saga_sr.models.shipped import SHIPPED_MODEL_DIR, default_model_path

ROOT = Path(__file__).resolve().parent.parent


def _clip(seconds: float = 1.5, sr: int = 16000) -> np.ndarray:
    """Harmonics plus a little noise: something with a spectral envelope to extend."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(0.2 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 30) if 220 * k < sr / 2)
    x = x + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return (x * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)).astype(np.float32)


def test_shipped_model_is_the_default_and_packaged():
    assert default_model_path() == SHIPPED_MODEL_DIR
    weights = SHIPPED_MODEL_DIR / "model.safetensors"
    assert weights.stat().st_size <= 25 * 2**20
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["saga_sr"]
    for name in ("model.safetensors", "config.json"):
        rel = (SHIPPED_MODEL_DIR / name).relative_to(ROOT / "saga_sr")
        assert any(rel in {p.relative_to(ROOT / "saga_sr") for p in (ROOT / "saga_sr").glob(pat)} for pat in patterns)


def test_shipped_model_loads_half_precision_weights_as_the_mini_config():
    from safetensors import safe_open

    from saga_sr.config import load_config
    from saga_sr.models.checkpoint import load_model

    with safe_open(str(SHIPPED_MODEL_DIR / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {__import__("torch").float16}
    model = load_model(SHIPPED_MODEL_DIR)
    mini = load_config("mini")
    assert model.config["model"] == mini["model"] and model.default_steps == mini["model"]["diffusion"]["default_steps"]


def test_upsample_without_model_uses_the_shipped_one(tmp_path, capsys):
    from saga_sr.cli import main

    sf.write(tmp_path / "in.wav", _clip(), 16000)
    assert main(["upsample", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out"), "-q"]) == 0
    out, sr = sf.read(tmp_path / "out" / "in.wav")
    assert sr == 44100 and abs(len(out) - 1.5 * 44100) <= 1 and np.isfinite(out).all()


def _band_db(x: np.ndarray, lo: float, hi: float, sr: int = 44100) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return 10 * np.log10(spec[(f >= lo) & (f < hi)].sum() + 1e-20)


@pytest.mark.slow
def test_target_rolloff_knob_moves_the_high_band():
    """Asking for content up to 11 kHz instead of 19.9 kHz leaves clearly less energy in 12-20 kHz. (The model
    hears the target through its roll-off tokens, and the upsampler enforces a given target after decoding:
    `target_band_limit` in mini.json; MODEL_CARD.md measures each part.)"""
    from saga_sr.inference.pipeline import Upsampler
    from saga_sr.models.checkpoint import load_model

    up = Upsampler(load_model(SHIPPED_MODEL_DIR), "cpu")
    x = _clip(2.0)
    wide = up.upsample(x[None], 16000, target_rolloff=0.9, seed=0)[0]
    narrow = up.upsample(x[None], 16000, target_rolloff=11000.0, seed=0)[0]
    assert _band_db(wide, 12000, 20000) - _band_db(narrow, 12000, 20000) > 3.0
    assert abs(_band_db(wide, 100, 7000) - _band_db(narrow, 100, 7000)) < 0.5  # the input band is the input's

    # The DiT alone (band limit off): the same seed gives bit-identical output for one target, so any change
    # comes from the DiT reading its roll-off tokens. Measured on this clip: the 12-20 kHz difference is 28 dB
    # below the band, whose energy moves by 0.07 dB (MODEL_CARD.md: at most 1.4 dB, not a working knob alone).
    free_wide, again, free_narrow = (
        up.upsample(x[None], 16000, target_rolloff=target, seed=0, limit_band=False)[0]
        for target in (0.9, 0.9, 11000.0)
    )
    np.testing.assert_array_equal(free_wide, again)
    high = _band_db(free_wide, 12000, 20000)
    assert _band_db(free_wide - free_narrow, 12000, 20000) > high - 40.0  # the tokens reach the output
    assert abs(high - _band_db(free_narrow, 12000, 20000)) < 1.5  # the band limit, not the DiT, makes the knob
