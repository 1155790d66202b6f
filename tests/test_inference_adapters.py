"""saga_sr.inference.adapters: which classifier-free-guidance scales the evaluated model is sampled with."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from saga_sr.config.typed import ModelSettings
from saga_sr.inference import adapters


class _RecordingUpsampler:
    """Stands in for the Upsampler: records the sampling keywords, returns the LR input."""

    calls: list[dict] = []

    def __init__(self, model, device, precision):
        pass

    def upsample(self, lr, sr, **kwargs):
        _RecordingUpsampler.calls.append(kwargs)
        return np.asarray(lr, dtype=np.float32)


@pytest.mark.parametrize(
    "model_scales, flags, expected",
    [
        ({}, {}, (1.4, 1.2)),  # neither: the paper's scales
        ({"audio": 2.0, "text": 3.0}, {}, (2.0, 3.0)),  # the model's own config
        ({"audio": 2.0}, {}, (2.0, 1.2)),  # a scale the config leaves out falls back on its own
        ({"audio": 2.0, "text": 3.0}, {"cfg_audio": 1.0, "cfg_text": 0.0}, (1.0, 0.0)),  # flags win, 0 included
        ({"audio": 2.0, "text": 3.0}, {"cfg_text": 5.0}, (2.0, 5.0)),  # each flag on its own
    ],
)
def test_cfg_scale_precedence_flag_then_model_config_then_default(monkeypatch, model_scales, flags, expected):
    monkeypatch.setattr(adapters, "Upsampler", _RecordingUpsampler)
    _RecordingUpsampler.calls = []
    settings = ModelSettings(
        sample_rate=44100,
        audio_channels=1,
        sample_size=4096,
        io_channels=8,
        cfg_audio=model_scales.get("audio"),
        cfg_text=model_scales.get("text"),
    )
    model = SimpleNamespace(settings=settings)
    model_fn, _ = adapters.model_functions(model, steps=3, seed=5, **flags)
    lr = np.zeros((1, 4096), dtype=np.float32)
    out = model_fn(lr, 44100, 4000.0)
    assert set(out) == {"ours", "ours_no_lfr"}
    (kwargs,) = _RecordingUpsampler.calls
    assert (kwargs["cfg_audio"], kwargs["cfg_text"]) == expected
    assert kwargs["steps"] == 3 and kwargs["seed"] == 5 and kwargs["input_cutoff_hz"] == 4000.0
    assert kwargs["lfr"] is False  # "ours" applies LFR itself, once
