"""Benchmark `saga-sr upsample --processes N`: wall time of one batch with 2 processes against 1 on the same files.

Writes `--files` noise clips (`--seconds` each, 16 kHz mono) once, then runs the whole command line
(`python -m saga_sr upsample IN -o OUT --processes N`, start-up and model loading included, as a user pays them)
alternately with 1 and 2 processes, `--rounds` times each into fresh output folders, so that both see the same
machine load; prints each run's wall time, the median per setting and the ratio 1-process / 2-process. The
outputs of the two settings are compared too (they must be identical). Default model: the shipped
saga-sr-mini; `--tiny` uses a random tiny.json model instead. On CPU the single process uses all cores
through torch's threads and each of N processes gets 1/N of them (Lightning sets the threads), so the ratio
measures process-level against thread-level parallelism for this model. The largest sample difference between
the two settings' outputs is printed: 0 when both run the same threads per process; on CPU a different thread
count rounds matrix products differently (about 1e-6 on the mini model).

    python bench/bench_batch_upsample.py                       # mini model, 12 x 4 s, 2 rounds
    python bench/bench_batch_upsample.py --tiny --files 24 --seconds 1
    python bench/bench_batch_upsample.py --device cuda --processes 2   # on a machine with 2 GPUs
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def write_inputs(folder: Path, files: int, seconds: float, sr: int = 16000) -> None:
    """`files` noise clips with a 6 kHz low-pass (a band edge to detect), seeded."""
    from scipy.signal import butter, sosfilt

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sos = butter(8, 6000, fs=sr, output="sos")
    for i in range(files):
        x = sosfilt(sos, rng.standard_normal(int(sr * seconds))) * 0.2
        sf.write(folder / f"clip{i:03d}.wav", x.astype(np.float32), sr)


def tiny_model(folder: Path) -> Path:
    from saga_sr.config import load_config
    from saga_sr.models.build import build_model
    from saga_sr.models.checkpoint import export_model

    cfg = load_config("tiny")
    cfg["sample_size"] = 8192
    export_model(build_model(cfg, seed=0), folder / "model")
    return folder / "model"


def run_once(inputs: Path, out: Path, processes: int, args: argparse.Namespace, model: Path | None) -> float:
    cmd = [
        sys.executable,
        "-m",
        "saga_sr",
        "upsample",
        str(inputs),
        "-o",
        str(out),
        "-q",
        "--device",
        args.device,
        "--processes",
        str(processes),
    ]
    cmd += ["--model", str(model)] if model else []
    cmd += ["--steps", str(args.steps)] if args.steps else []
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall


def max_difference(a: Path, b: Path) -> float:
    """The largest sample difference between two output folders (0.0: bit-identical)."""
    names = sorted(p.name for p in a.glob("*.wav"))
    assert names == sorted(p.name for p in b.glob("*.wav")), "the runs wrote different files"
    return max(float(np.abs(sf.read(a / n)[0] - sf.read(b / n)[0]).max()) for n in names)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=12)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=2, help="runs per setting, interleaved (default 2)")
    p.add_argument("--processes", type=int, default=2, help="the setting compared with 1 process (default 2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=None, help="Euler steps (default: the model's)")
    p.add_argument("--tiny", action="store_true", help="a random tiny.json model instead of the shipped one")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        root = Path(tmp)
        write_inputs(root / "in", args.files, args.seconds)
        model = tiny_model(root) if args.tiny else None
        walls: dict[int, list[float]] = {1: [], args.processes: []}
        for r in range(args.rounds):
            for n in (1, args.processes):
                walls[n].append(run_once(root / "in", root / f"out{n}_{r}", n, args, model))
                print(f"round {r}: {n} process(es): {walls[n][-1]:.1f} s", flush=True)
        one, many = statistics.median(walls[1]), statistics.median(walls[args.processes])
        audio = args.files * args.seconds
        print(
            f"{args.files} files x {args.seconds:g} s ({audio:g} s of audio), device {args.device}, "
            f"model {'tiny (random)' if args.tiny else 'saga-sr-mini'}"
        )
        diff = max_difference(root / "out1_0", root / f"out{args.processes}_0")
        print(
            f"1 process: {one:.1f} s; {args.processes} processes: {many:.1f} s; ratio {one / many:.2f}x "
            f"(medians of {args.rounds}); largest output difference {diff:.2g}"
        )


if __name__ == "__main__":
    main()
