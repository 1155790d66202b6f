"""Shared by the latent-shard tests: a tiny model config with a real (random) Oobleck VAE, and test clips."""

from __future__ import annotations

import json
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


def prepare_ten_clip_shards(root: Path) -> Path:
    """Ten short clips under ROOT/audio prepared into ROOT/shards (tiny config, K = 2, 4 files per part)."""
    from saga_sr.data.prepare import prepare_shards
    from saga_sr.models.build import build_model
    from saga_sr.training.run import prepare_config

    write_clips(root / "audio", [0.15 + 0.05 * i for i in range(10)])
    model = build_model(prepare_config("tiny", sample_size=4096), seed=1)
    prepare_shards([root / "audio"], root / "shards", model, num_lr=2, files_per_part=4, seed=1, progress=False)
    return root / "shards"


def seen_items(out: Path, rank: int) -> list[dict]:
    """What tests/latent_train.py recorded for `rank`: one {step, files} line per training step."""
    return [json.loads(line) for line in (out / f"seen_rank{rank}.jsonl").read_text().splitlines()]


def assert_two_ranks_split_and_resumed(out: Path) -> None:
    """Two ranks, batch 1, ten items, stopped after step 3 and resumed to step 7: an epoch (5 steps per rank)
    covers every item once over disjoint ranks, and the resumed steps read exactly the 4 items not yet seen."""
    import torch

    seen = {r: seen_items(out, r) for r in (0, 1)}
    for r in (0, 1):
        assert [x["step"] for x in seen[r]] == list(range(7))
    epoch0 = [f for r in (0, 1) for x in seen[r][:5] for f in x["files"]]
    assert sorted(epoch0) == sorted(set(epoch0)) and len(epoch0) == 10  # disjoint ranks, whole set once
    before = {f for r in (0, 1) for x in seen[r][:3] for f in x["files"]}
    after = {f for r in (0, 1) for x in seen[r][3:5] for f in x["files"]}
    assert not before & after and len(after) == 4  # no repeat, no skip across the resume
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 7
