"""A model as the plain array functions that evaluation and the demo score: LR -> {"ours", "ours_no_lfr"}
through the Upsampler, and the pretransform round trip (HR -> encode -> decode)."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from saga_sr.audio.lfr import edge_crossfade_hz, low_frequency_replace
from saga_sr.inference.pipeline import Upsampler
from saga_sr.inference.targets import takes_target_rolloff

# (lr [C, L], sr, cutoff_hz, target_rolloff=normalised) -> {"ours": wav, "ours_no_lfr": wav}; (hr, sr) -> wav
ModelFn = Callable[..., Mapping[str, np.ndarray]]
RoundTripFn = Callable[[np.ndarray, int], np.ndarray]


def model_functions(
    model,
    *,
    steps: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    precision: str = "fp32",
    batch_size: int = 4,
    cfg_audio: float | None = None,
    cfg_text: float | None = None,
) -> tuple[ModelFn, RoundTripFn]:
    """The model's two systems: (LR -> {"ours", "ours_no_lfr"}) through the Upsampler, and the pretransform round trip.

    The model is sampled once per clip and target roll-off, without LFR ("ours_no_lfr", empty prompt, the
    model's own steps and CFG scales unless given (ModelSettings.sampling), the input roll-off f_l measured on
    the LR input as in training, `--target-rolloff` = the value given, None = upsample's default); "ours" is that
    same sample after `low_frequency_replace` with the LR input at the known (simulated) cutoff, the LFR band edge.
    The pipeline applies the same function per decoded chunk, so "ours" matches `saga-sr upsample` up to chunk-seam
    crossfades, at half the sampling cost of a second pass.
    """
    up = Upsampler(model, device, precision)
    sampling = model.settings.sampling(steps, cfg_audio, cfg_text)
    kwargs = dict(
        steps=sampling.steps, seed=seed, batch_size=batch_size, cfg_audio=sampling.cfg_audio, cfg_text=sampling.cfg_text
    )

    def model_fn(lr: np.ndarray, sr: int, cutoff: float, target_rolloff: float | None = None) -> dict[str, np.ndarray]:
        raw = up.upsample(lr, sr, input_cutoff_hz=cutoff, target_rolloff=target_rolloff, lfr=False, **kwargs)
        ours = low_frequency_replace(raw, lr, sr, cutoff_hz=cutoff, crossfade_hz=edge_crossfade_hz(cutoff))
        return {"ours": ours, "ours_no_lfr": raw}

    model_fn.takes_target_rolloff = takes_target_rolloff(model)  # read by run_evaluation for its notes

    def roundtrip_fn(hr: np.ndarray, sr: int) -> np.ndarray:
        return pretransform_roundtrip(model, hr, sr, device)

    return model_fn, roundtrip_fn


def pretransform_roundtrip(model, wav: np.ndarray, sr: int, device: str = "cpu") -> np.ndarray:
    """decode(encode(wav)) with the model's frozen pretransform, channels handled like the Upsampler does."""
    if sr != model.sample_rate:
        raise ValueError(f"round trip expects audio at the model rate {model.sample_rate} Hz, got {sr}")
    x = np.asarray(wav, dtype=np.float32)
    x = x[None] if x.ndim == 1 else x
    length, ratio = x.shape[-1], int(model.downsampling_ratio)
    padded = -(-length // ratio) * ratio
    x = np.pad(x, ((0, 0), (0, padded - length)))
    if model.audio_channels == 1:
        batch = x[:, None, :]  # every channel as its own item
    else:
        batch = (np.repeat(x, model.audio_channels, 0) if x.shape[0] == 1 else x)[None]
    with torch.no_grad():
        y = model.decode(model.encode(torch.from_numpy(np.ascontiguousarray(batch)).to(device))).float().cpu().numpy()
    y = y[:, 0] if model.audio_channels == 1 else (y[0].mean(0, keepdims=True) if x.shape[0] == 1 else y[0])
    return np.ascontiguousarray(y[:, :length], dtype=np.float32)
