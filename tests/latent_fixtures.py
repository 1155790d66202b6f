"""Shared by the latent-shard tests: a tiny model config with a real (random) Oobleck VAE, and test clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from saga_sr.config import read_config


def tiny_vae_config(sample_size: int = 4096) -> dict:
    """tiny.json with a 2-block Oobleck VAE (downsampling 8, 8 latent channels) instead of the patched
    pretransform, so the posterior has a non-zero std and prepare / training really sample it."""
    cfg = read_config("tiny")
    cfg["sample_size"] = sample_size
    block = {"channels": 8, "c_mults": [1, 2], "strides": [2, 4], "use_snake": True}
    cfg["model"]["pretransform"] = {
        "type": "autoencoder",
        "config": {
            "encoder": {"type": "oobleck", "config": {"in_channels": 1, "latent_dim": 16, **block}},
            "decoder": {
                "type": "oobleck",
                "config": {"out_channels": 1, "latent_dim": 8, "final_tanh": False, **block},
            },
            "bottleneck": {"type": "vae"},
            "latent_dim": 8,
            "downsampling_ratio": 8,
            "io_channels": 1,
        },
    }
    cfg["model"]["io_channels"] = 8
    cfg["model"]["diffusion"]["config"].update(io_channels=8, input_concat_dim=8)
    return cfg


def write_clips(folder: Path, seconds: list[float], sr: int = 44100, seed: int = 0) -> list[Path]:
    """Noise clips (peak ~0.3) of the given lengths, named clip00.wav, clip01.wav, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, s in enumerate(seconds):
        path = folder / f"clip{i:02d}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(round(s * sr)))).astype(np.float32), sr)
        paths.append(path)
    return paths
