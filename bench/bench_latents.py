"""Pre-encoded latents vs on-the-fly encoding, measured side by side in one run (CPU by default).

1. train: per-example training cost (flow loss forward + backward, batch 1, one segment) on the fly (two
   frozen VAE encodes: HR and LR) vs on latents (`LatentPair` input, no VAE), for A0 and the full model,
   with the SAO-shaped VAE (random weights: the cost does not depend on them) and a random T5 of T5-base's
   shape. The two variants alternate, so both see the same machine load. Targets: >= 20x (A0), >= 2.5x (full).
2. prepare: `prepare_shards` throughput with the SAO-shaped VAE and K LR versions (files/s and audio s/s,
   per core: run it with OMP_NUM_THREADS=1 and --threads 1).
3. loader: items/s of the training DataLoader from the shards just written vs from the same audio files
   (SAGASRDataset: segment read, LR simulation, roll-offs), same batch and workers.

    OMP_NUM_THREADS=1 python bench/bench_latents.py --threads 1 --out /tmp/bench_latents
    OMP_NUM_THREADS=2 python bench/bench_latents.py --what train --threads 2 --precision bf16  # as bf16-mixed trains

On a CPU the full model's ratio is bounded by (two encodes + DiT step) / DiT step, which `ratio_bound` prints:
in float32 here (2 threads) the DiT step (7.8 s) outweighs the two encodes (5.3 s), so the bound is ~1.7; under
bf16 autocast on a CPU with AVX512-BF16 the DiT step shrinks to ~3.9 s while the encodes do not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path

from bench_train_gpu import bench_config

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "saga_sr" / "assets" / "demo" / "train"


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_train(names: list[str], sample_size: int, reps: int, fly_reps: int, precision: str = "fp32") -> dict:
    """Per-example step cost on the fly vs on latents for each config: medians of `reps` latent steps and
    `fly_reps` on-the-fly steps (two VAE encodes each, the expensive part), interleaved, after warm-ups."""
    import numpy as np
    import torch

    from saga_sr.data.latents import LatentPair
    from saga_sr.models.build import build_model
    from saga_sr.training.module import SAGASRTrainer

    out = {}
    for name in names:
        cfg = bench_config(name, sample_size)
        model = build_model(cfg, seed=0)
        module = SAGASRTrainer(model, use_ema=False)
        module.train()
        g = torch.Generator().manual_seed(0)
        audio = 0.1 * torch.randn(1, model.audio_channels, sample_size, generator=g)
        md = {
            "prompt": "a drum loop",
            "seconds_start": 0.0,
            "seconds_total": 30.0,
            "input_rolloff": 0.2,
            "target_rolloff": 0.9,
            "lr_audio": 0.5 * audio[0],
        }
        with torch.no_grad():
            pair = LatentPair(*model.pretransform.posterior(audio), *model.pretransform.posterior(audio * 0.5))
        frames = sample_size // model.downsampling_ratio
        md_lat = {k: v for k, v in md.items() if k != "lr_audio"}
        md_lat["latent_mask"] = torch.ones(frames, dtype=torch.bool)

        def autocast():  # what `--precision bf16-mixed` runs the step under (CPU: AVX512-BF16 where present)
            return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

        def on_the_fly(i: int):
            with autocast():
                loss = module.flow_step(audio, [md], torch.Generator().manual_seed(i))
            loss.backward()
            module.zero_grad(set_to_none=True)

        def on_latents(i: int):
            with autocast():
                loss = module.flow_step(pair, [md_lat], torch.Generator().manual_seed(i))
            loss.backward()
            module.zero_grad(set_to_none=True)

        with torch.no_grad():
            model.pretransform.posterior(audio)  # warm-up: the first call also allocates
            # a median of three: a single timed call read 6.4 s where the steps' own encodes took 2.7 s
            with autocast():
                encode_s = float(np.median([_timed(lambda: model.pretransform.posterior(audio)) for _ in range(3)]))
        on_latents(0)  # the DiT's warm-up
        fly, lat = [], []
        for i in range(reps):  # alternate, so both see the same load
            lat.append(_timed(lambda: on_latents(i + 1)))
            if i < fly_reps:
                fly.append(_timed(lambda: on_the_fly(i + 1)))
        f, la = float(np.median(fly)), float(np.median(lat))
        out[name] = {
            "sample_size": sample_size,
            "channels": model.audio_channels,
            "latent_frames": frames,
            "dit_params_M": round(sum(p.numel() for p in model.dit.parameters()) / 1e6, 1),
            "vae_encode_s": encode_s,
            "on_the_fly_s": f,
            "on_latents_s": la,
            "ratio": f / la,
            # the ceiling of the ratio on this machine: (two encodes + DiT step) / DiT step
            "ratio_bound": (2 * encode_s + la) / la,
            "reps": reps,
            "fly_reps": fly_reps,
            "precision": precision,
        }
        print(json.dumps({"train": {name: out[name]}}), flush=True)
        del module, model
    return out


def bench_prepare(files: list[Path], out: Path, num_lr: int, sample_size: int) -> dict:
    """Throughput of prepare_shards on `files` with the SAO-shaped VAE (config A0: only the VAE matters)."""
    import soundfile as sf

    from saga_sr.data.prepare import prepare_shards
    from saga_sr.models.build import build_model

    src = out / "audio"
    src.mkdir(parents=True, exist_ok=True)
    for f in files:
        (src / f.name).write_bytes(f.read_bytes())
    model = build_model(bench_config("A0", sample_size), seed=0)
    seconds = sum(sf.info(f).duration for f in files)
    t0 = time.perf_counter()
    result = prepare_shards([src], out / "shards", model, num_lr=num_lr, files_per_part=4, progress=False)
    dt = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in (out / "shards").glob("chunk-*.bin"))
    res = {
        "files": result.written,
        "num_lr": num_lr,
        "audio_seconds": seconds,
        "wall_s": dt,
        "files_per_s": result.written / dt,
        "audio_s_per_s": seconds / dt,
        "shard_MB_per_audio_hour": size / 1e6 / (seconds / 3600),
    }
    print(json.dumps({"prepare": res}), flush=True)
    return res


def bench_loader(shards: Path, files: list[Path], sample_size: int, items: int, workers: int, batch: int) -> dict:
    """Items/s of the latent-shard loader vs the audio loader over the same recordings."""
    from torch.utils.data import DataLoader

    from saga_sr.data import SAGASRDataset, collate
    from saga_sr.training.latent_data import LatentDataModule

    cfg = bench_config("A0", sample_size)
    ratio = cfg["model"]["pretransform"]["config"]["downsampling_ratio"]  # the SAO VAE's 2048

    def rate(make_loader) -> float:
        t0, n = time.perf_counter(), 0
        while n < items:
            for _, md in make_loader():
                n += len(md)
                if n >= items:
                    break
        return n / (time.perf_counter() - t0)

    audio_ds = SAGASRDataset(files, sample_size, cfg["sample_rate"], cfg["audio_channels"], compute_rolloff=True)
    shard_dm = LatentDataModule(
        str(shards), cfg, downsampling_ratio=ratio, batch_size=batch, num_workers=workers, use_caption=True, seed=0
    )
    res = {
        "batch": batch,
        "workers": workers,
        "items": items,
        "files": len(files),
        "audio_items_per_s": rate(
            lambda: DataLoader(audio_ds, batch_size=batch, shuffle=True, num_workers=workers, collate_fn=collate)
        ),
        "shards_items_per_s": rate(shard_dm.train_dataloader),
    }
    res["ratio"] = res["shards_items_per_s"] / res["audio_items_per_s"]
    print(json.dumps({"loader": res}), flush=True)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--what", default="train,prepare,loader")
    p.add_argument("--configs", default="A0,full")
    p.add_argument("--sample_size", type=int, default=262144, help="segment (paper: 262144 samples, stereo)")
    p.add_argument("--reps", type=int, default=3, help="timed latent steps per config")
    p.add_argument("--fly_reps", type=int, default=1, help="timed on-the-fly steps per config (slow on CPU)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="train: run both steps under bf16 autocast, as `--precision bf16-mixed` trains (default fp32)",
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--prepare_files", type=int, default=4)
    p.add_argument("--batch", type=int, default=2, help="loader batch")
    p.add_argument("--num_lr", type=int, default=8)
    p.add_argument("--loader_items", type=int, default=64)
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="loader workers (default 0: items/s of one core; with few files, workers restart every epoch)",
    )
    p.add_argument("--shards", type=Path, default=None, help="loader: shards of --data already prepared")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    out = a.out or Path(tempfile.mkdtemp(prefix="bench_latents_"))
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(a.data.glob("*.flac"))[: a.prepare_files]
    what, results = a.what.split(","), {"threads": a.threads}
    if "train" in what:
        results["train"] = bench_train(
            a.configs.split(","), a.sample_size, a.reps, min(a.fly_reps, a.reps), a.precision
        )
    if "prepare" in what:
        results["prepare"] = bench_prepare(files, out, a.num_lr, a.sample_size)
    if "loader" in what:
        shards = a.shards or out / "shards"
        if not (shards / "index.json").is_file():
            results["prepare"] = bench_prepare(files, out, a.num_lr, a.sample_size)
        results["loader"] = bench_loader(
            shards, files, a.sample_size, a.loader_items, a.workers, min(a.batch, len(files))
        )
    (out / "bench_latents.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {out / 'bench_latents.json'}")


if __name__ == "__main__":
    main()
