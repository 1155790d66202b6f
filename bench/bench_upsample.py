"""Benchmark `Upsampler.upsample`: real-time factor, peak memory against input length, cost split.

CPU (default): the tiny config (random weights), inputs of 1, 10 and 60 s at 16 kHz, `--steps` Euler steps
(default 8: 100 steps of the tiny model on 2 cores take minutes per minute of audio; time scales linearly).
Each length runs in its own subprocess so its peak RSS is its own; we report the peak minus the RSS after
loading the model, and that minus the input/output arrays (which must grow with the length) -- the part
that must stay flat.

GPU (`--config small|full|NAME`, CUDA present): random weights in bf16 autocast, 100 steps, the paper's CFG,
reporting seconds per 10 s of audio. The configs' pretrained T5-base is replaced by an offline random
encoder of the same shape (nothing is downloaded); `full` is the paper's config (SAO-sized DiT + VAE).

    python bench/bench_upsample.py                      # CPU tiny: RTF, memory, cost split
    python bench/bench_upsample.py --config full --device cuda --seconds 10
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

ALIASES = {"small": "saga_model_config_small", "full": "saga_sr_paper", "seeds_full": "saga_model_config"}
T5_BASE_SHAPE = {"vocab_size": 384, "d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12, "num_heads": 12}


def load_bench_config(name: str) -> dict:
    """A shipped config with any pretrained T5 replaced by a random offline one of T5-base's shape."""
    from saga_sr.config import load_config

    cfg = load_config(ALIASES.get(name, name))
    for entry in cfg["model"]["conditioning"]["configs"]:
        if entry["type"] == "t5" and "t5_config" not in entry["config"]:
            entry["config"] = {"max_length": entry["config"].get("max_length", 128), "t5_config": dict(T5_BASE_SHAPE)}
    return cfg


def test_signal(seconds: float, sr: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = [0.3 * np.sin(2 * np.pi * 220 * (c + 1) * t) + 0.02 * rng.standard_normal(len(t)) for c in range(channels)]
    return np.asarray(x, dtype=np.float32)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_one(args: argparse.Namespace) -> dict:
    """One upsample call in this process; returns timings and memory."""
    import torch

    from saga_sr.inference.pipeline import Upsampler
    from saga_sr.models.build import build_model

    model = build_model(load_bench_config(args.config), seed=0)
    up = Upsampler(model, args.device, args.precision)
    x = test_signal(args.one, args.input_sr, args.channels)
    up.upsample(test_signal(0.5, args.input_sr, args.channels), args.input_sr, steps=1)  # warm-up
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = rss_mib()
    t0 = time.perf_counter()
    y = up.upsample(x, args.input_sr, steps=args.steps, batch_size=args.batch_size, prompt="a test tone")
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    tm = up.timings
    arrays = (x.nbytes + y.nbytes + y.nbytes / y.shape[0] * model.audio_channels) / 2 ** 20  # in, out, resampled LR
    out = {"seconds": args.one, "wall_s": wall, "rtf": wall / args.one, "steps": args.steps,
           "peak_rss_mib": rss_mib(), "rss_growth_mib": rss_mib() - base, "arrays_mib": arrays,
           "split_s": {"prepare": tm.prepare, "encode": tm.encode, "conditioning_t5": tm.conditioning,
                       "sampling": tm.sampling, "decode": tm.decode, "lfr": tm.lfr}}
    if args.device.startswith("cuda"):
        out["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
        out["s_per_10s_audio"] = wall / args.one * 10
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny", help="tiny (default), small, full, seeds_full or a config name/path")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default=None, help="fp32 (CPU default) / bf16 (GPU default) / fp16")
    p.add_argument("--steps", type=int, default=None, help="Euler steps (default 8 on CPU, 100 on GPU)")
    p.add_argument("--seconds", type=float, nargs="+", default=None, help="input lengths (default 1 10 60; GPU: 10)")
    p.add_argument("--input-sr", type=int, default=16000)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--json", metavar="PATH", help="also write the results here")
    p.add_argument("--one", type=float, help=argparse.SUPPRESS)  # internal: run one length in this process
    args = p.parse_args()
    gpu = args.device.startswith("cuda")
    args.precision = args.precision or ("bf16" if gpu else "fp32")
    args.steps = args.steps or (100 if gpu else 8)
    if args.one is not None:
        print(json.dumps(run_one(args)))
        return 0
    results = []
    for seconds in args.seconds or ([10.0] if gpu else [1.0, 10.0, 60.0]):
        cmd = [sys.executable, __file__, "--one", str(seconds)] + [
            a for k, v in vars(args).items() if k not in ("one", "seconds", "json") and v is not None
            for a in (f"--{k.replace('_', '-')}", str(v))]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(res)
        split = ", ".join(f"{k} {v:.2f}" for k, v in res["split_s"].items())
        extra = f", {res['s_per_10s_audio']:.2f} s per 10 s audio, GPU peak {res['gpu_peak_mib']:.0f} MiB" if gpu else ""
        print(f"{args.config} {args.device} {args.precision} {res['steps']} steps, {seconds:g} s input: "
              f"wall {res['wall_s']:.2f} s, RTF {res['rtf']:.3f}{extra}; peak RSS {res['peak_rss_mib']:.0f} MiB, "
              f"growth during the call {res['rss_growth_mib']:.1f} MiB (in/out arrays {res['arrays_mib']:.1f} MiB); "
              f"split [s]: {split}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": args.config, "device": args.device, "precision": args.precision,
                       "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
