"""Training benchmarks (not tests): tiny.json training speed, memorisation of 8 clips, data-loader throughput.

usage: python bench/bench_train.py [--what speed,memorise,loader] [--threads 2] [--steps 20]
                                   [--memorise_steps 300] [--data DIR] [--out DIR]

- speed: optimiser steps/s of tiny.json (batch 4, its 32768-sample segments) on `--threads` CPU threads,
  forward + backward + AdamW, after 3 warm-up steps.
- memorise: can the model fit its data at all? The tiny model trains on 8 clips exactly one segment long (so every
  epoch sees the same audio); the train loss must fall to a low plateau. Writes OUT/memorise/loss_curve.png.
- loader: SAGASRDataset items/s (read segment + resample + LR simulation + roll-offs) through a DataLoader.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "saga_sr" / "assets" / "demo" / "train"  # the shipped CC0 clips; --data for your own


def _audio_files(data: Path, n: int) -> list[Path]:
    files = sorted(data.glob("*.flac")) or sorted((ROOT / "tests" / "data").glob("*.flac"))
    return files[:n]


def bench_speed(threads: int, steps: int, data: Path) -> dict:
    import torch

    from saga_sr.config import prepare_config
    from saga_sr.data import SAGASRDataset, collate
    from saga_sr.models.build import build_model
    from saga_sr.training.module import SAGASRTrainer

    torch.set_num_threads(threads)
    cfg = prepare_config("tiny")
    module = SAGASRTrainer(build_model(cfg, seed=0))
    ds = SAGASRDataset(
        _audio_files(data, 8),
        cfg["sample_size"],
        cfg["sample_rate"],
        cfg["audio_channels"],
        compute_rolloff=True,
        deterministic=True,
    )
    audio, md = collate([ds[i % len(ds)] for i in range(4)])
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        loss = module.flow_step(audio, md, torch.Generator().manual_seed(i))
        loss.backward()
        opt.step()
        opt.zero_grad()
        module.diffusion_ema.update()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    n_params = sum(p.numel() for p in module.diffusion.parameters() if p.requires_grad)
    return {
        "threads": threads,
        "batch": 4,
        "sample_size": cfg["sample_size"],
        "trainable_params": n_params,
        "steps_per_s": 1.0 / float(np.median(times)),
        "s_per_step_median": float(np.median(times)),
    }


def bench_memorise(steps: int, data: Path, out: Path, threads: int) -> dict:
    import soundfile as sf
    import torch

    from saga_sr.audio.io import load_audio
    from saga_sr.training.metrics_csv import read_metrics
    from saga_sr.training.run import train

    torch.set_num_threads(threads)
    size = 8192
    clips = out / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    for f in _audio_files(data, 8):
        wav, sr = load_audio(f, target_sr=44100, channels=1)
        start = min(wav.shape[1] - size, wav.shape[1] // 4)
        sf.write(clips / f"{f.stem}.wav", wav[0, max(0, start) : max(0, start) + size], 44100)
    run = train(
        train_dir=[str(clips)],
        model_config="tiny",
        sample_size=size,
        batch_size=8,
        max_steps=steps,
        learning_rate=1e-3,
        num_workers=0,
        val_every=10**9,
        log_every=1,
        output_dir=str(out / "run"),
        no_progress_bar=True,
        seed=0,
    )
    steps_, loss = read_metrics(run / "metrics.csv")["train/loss"]
    k = max(5, len(loss) // 10)
    return {
        "clips": 8,
        "sample_size": size,
        "steps": steps,
        "first_loss_mean": float(np.mean(loss[:k])),
        "last_loss_mean": float(np.mean(loss[-k:])),
        "min_loss": float(np.min(loss)),
        "curve": str(run / "loss_curve.png"),
    }


def bench_loader(data: Path, items: int, workers: int) -> dict:
    from torch.utils.data import DataLoader

    from saga_sr.data import SAGASRDataset, collate

    out = {}
    for name, size, channels in (("tiny 32768 mono", 32768, 1), ("paper 262144 stereo", 262144, 2)):
        ds = SAGASRDataset(_audio_files(data, 64), size, 44100, channels, compute_rolloff=True)
        loader = DataLoader(ds, batch_size=4, shuffle=True, num_workers=workers, collate_fn=collate)
        t0, n = time.perf_counter(), 0
        while n < items:
            for audio, _ in loader:
                n += audio.shape[0]
                if n >= items:
                    break
        out[name] = {"items_per_s": n / (time.perf_counter() - t0), "workers": workers, "files": len(ds)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--what", default="speed,memorise,loader")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--memorise_steps", type=int, default=300)
    p.add_argument("--loader_items", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="bench_train_"))
    results = {}
    what = a.what.split(",")
    if "speed" in what:
        results["speed"] = bench_speed(a.threads, a.steps, a.data)
        print(json.dumps({"speed": results["speed"]}), flush=True)
    if "loader" in what:
        results["loader"] = bench_loader(a.data, a.loader_items, a.workers)
        print(json.dumps({"loader": results["loader"]}), flush=True)
    if "memorise" in what:
        results["memorise"] = bench_memorise(a.memorise_steps, a.data, out / "memorise", a.threads)
        print(json.dumps({"memorise": results["memorise"]}), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_train.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {out / 'bench_train.json'}")


if __name__ == "__main__":
    main()
