"""Benchmark `Upsampler.upsample_file` (streamed): seconds per audio minute and peak memory against length.

CPU (default): the tiny config (random weights), 16 kHz mono inputs of 1, 10 and 60 *minutes* (`--minutes`),
`--steps` Euler steps (default 2: the point is how cost and memory scale with length; time per step scales
linearly; `--cfg-audio 1 --cfg-text 1` makes a step one DiT pass instead of a batch of three). Each input is
written to a file block by block first; each length then runs in its own fresh
subprocess that loads the model, warms up on 1 s, and upsamples the file to a file, so its peak RSS
(ru_maxrss) is its own. Targets: the 60-minute peak RSS within 1.3x the 1-minute one, and seconds
per audio minute within 1.2x between 1 and 60 minutes. Run it on an otherwise idle machine with
OMP_NUM_THREADS=1 for stable timings; on a shared machine read the CPU seconds (process user + system
time), which other processes' load disturbs far less than wall time.

GPU (`--config small|full|NAME`, CUDA present): random weights in bf16 autocast, 100 steps, the paper's CFG,
reporting seconds per 10 s of audio. The configs' pretrained T5-base is replaced by an offline random
encoder of the same shape (nothing is downloaded); `full` is the paper's config (SAO-sized DiT + VAE).

    OMP_NUM_THREADS=1 python bench/bench_upsample.py              # CPU tiny: 1 / 10 / 60 min
    OMP_NUM_THREADS=1 python bench/bench_upsample.py --steps 1 --cfg-audio 1 --cfg-text 1   # quicker
    python bench/bench_upsample.py --config full --device cuda --minutes 0.1667
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

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


def test_signal(seconds: float, sr: int, channels: int, seed: int = 0, start: int = 0) -> np.ndarray:
    """Tones plus a little noise, samples [start, start + seconds * sr) of an endless signal."""
    rng = np.random.default_rng([seed, start])
    t = (start + np.arange(int(seconds * sr))) / sr
    x = [0.3 * np.sin(2 * np.pi * 220 * (c + 1) * t) + 0.02 * rng.standard_normal(len(t)) for c in range(channels)]
    return np.asarray(x, dtype=np.float32)


def write_input(path: str, seconds: float, sr: int, channels: int, block_s: float = 60.0) -> None:
    """The test signal written block by block (never held whole)."""
    import soundfile as sf

    total, block = int(seconds * sr), int(block_s * sr)
    with sf.SoundFile(path, "w", sr, channels, subtype="FLOAT") as f:
        for start in range(0, total, block):
            f.write(test_signal(min(block, total - start) / sr, sr, channels, start=start).T)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB (the peak so far)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class RssSampler(threading.Thread):
    """The highest current RSS seen during a call (ru_maxrss also counts model loading before it)."""

    def __init__(self, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.every_s, self.peak, self.stop = every_s, 0.0, threading.Event()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self.stop.wait(self.every_s):
            with open("/proc/self/statm") as f:
                self.peak = max(self.peak, int(f.read().split()[1]) * page / 2**20)


def run_one(args: argparse.Namespace) -> dict:
    """One streamed upsample of `args.input` in this process; returns timings and memory."""
    import soundfile as sf
    import torch

    from saga_sr.inference.pipeline import Upsampler
    from saga_sr.models.build import build_model

    model = build_model(load_bench_config(args.config), seed=0)
    up = Upsampler(model, args.device, args.precision)
    work = Path(args.input).parent
    write_input(str(work / "warmup.wav"), 1.0, args.input_sr, args.channels)
    up.upsample_file(work / "warmup.wav", work / "warmup_out.wav", steps=1)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = rss_mib()
    sampler = RssSampler()
    sampler.start()
    t0, c0 = time.perf_counter(), cpu_s()
    info = up.upsample_file(
        args.input,
        work / "out.wav",
        steps=args.steps,
        batch_size=args.batch_size,
        prompt="a test tone",
        cfg_audio=args.cfg_audio,
        cfg_text=args.cfg_text,
    )
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    sampler.stop.set()
    sampler.join()
    minutes = sf.info(args.input).duration / 60
    tm = info.timings
    out = {
        "minutes": minutes,
        "wall_s": wall,
        "s_per_audio_min": wall / minutes,
        "cpu_s_per_audio_min": cpu / minutes,
        "call_peak_rss_mib": sampler.peak,
        "steps": args.steps,
        "cfg": [args.cfg_audio, args.cfg_text],
        "peak_rss_mib": rss_mib(),
        "rss_before_mib": base,
        "split_s": {
            "prepare": tm.prepare,
            "encode": tm.encode,
            "conditioning_t5": tm.conditioning,
            "sampling": tm.sampling,
            "decode": tm.decode,
            "lfr": tm.lfr,
        },
    }
    if args.device.startswith("cuda"):
        out["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["s_per_10s_audio"] = wall / minutes / 6
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny", help="tiny (default), small, full, seeds_full or a config name/path")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default=None, help="fp32 (CPU default) / bf16 (GPU default) / fp16")
    p.add_argument("--steps", type=int, default=None, help="Euler steps (default 2 on CPU, 100 on GPU)")
    p.add_argument(
        "--minutes", type=float, nargs="+", default=None, help="input lengths in minutes (default 1 10 60; GPU: 1/6)"
    )
    p.add_argument("--input-sr", type=int, default=16000)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--cfg-audio", type=float, default=1.4, help="s_a (1.0 with --cfg-text 1.0: one DiT pass per step)")
    p.add_argument("--cfg-text", type=float, default=1.2)
    p.add_argument("--workdir", default=None, help="folder for the input/output files (default: a temp folder)")
    p.add_argument("--json", metavar="PATH", help="also write the results here")
    p.add_argument("--input", help=argparse.SUPPRESS)  # internal: run one file in this process
    args = p.parse_args()
    gpu = args.device.startswith("cuda")
    args.precision = args.precision or ("bf16" if gpu else "fp32")
    args.steps = args.steps or (100 if gpu else 2)
    if args.input is not None:
        print(json.dumps(run_one(args)))
        return 0
    results = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for minutes in args.minutes or ([1 / 6] if gpu else [1.0, 10.0, 60.0]):
            work = Path(tmp) / f"{minutes:g}min"
            work.mkdir()
            write_input(str(work / "in.wav"), minutes * 60, args.input_sr, args.channels)
            cmd = [sys.executable, __file__, "--input", str(work / "in.wav")] + [
                a
                for k, v in vars(args).items()
                if k not in ("input", "minutes", "json", "workdir") and v is not None
                for a in (f"--{k.replace('_', '-')}", str(v))
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            shutil.rmtree(work)
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(res)
            split = ", ".join(f"{k} {v:.1f}" for k, v in res["split_s"].items())
            extra = (
                f", {res['s_per_10s_audio']:.2f} s per 10 s audio, GPU peak {res['gpu_peak_mib']:.0f} MiB"
                if gpu
                else ""
            )
            print(
                f"{args.config} {args.device} {args.precision} {res['steps']} steps, cfg {res['cfg']}, "
                f"{minutes:g} min input: "
                f"wall {res['wall_s']:.1f} s, {res['s_per_audio_min']:.2f} s (CPU {res['cpu_s_per_audio_min']:.2f} s) "
                f"per audio minute{extra}; peak RSS {res['peak_rss_mib']:.0f} MiB (before the call "
                f"{res['rss_before_mib']:.0f}, highest during it {res['call_peak_rss_mib']:.0f}); "
                f"split [s]: {split}",
                flush=True,
            )
    first, last = results[0], results[-1]
    if len(results) > 1:
        ratio = {
            k: last[k] / first[k]
            for k in ("peak_rss_mib", "call_peak_rss_mib", "s_per_audio_min", "cpu_s_per_audio_min")
        }
        print(
            f"{last['minutes']:g} min vs {first['minutes']:g} min: peak RSS x{ratio['peak_rss_mib']:.3f} (during the "
            f"call x{ratio['call_peak_rss_mib']:.3f}; target <= 1.3), s per audio minute "
            f"x{ratio['s_per_audio_min']:.3f} (CPU x{ratio['cpu_s_per_audio_min']:.3f}; target <= 1.2)",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"config": args.config, "device": args.device, "precision": args.precision, "results": results},
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
