"""Benchmark the audio chain on one core: LR-simulation clips/s of a 5.94 s stereo clip, and the per-clip
cost of roll-off, low-frequency replacement, LSD (both variants) and the DSP baseline.

Run: `python bench/bench_audio.py [--repeats N]`. Thread counts are pinned to 1 before numpy loads, so the
numbers say what one data-loader worker can do.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

SR = 44100
CLIP = 262144  # 5.94 s, the model's segment


def _time(fn: Callable[[int], object], repeats: int) -> float:
    """Median seconds per call over `repeats` calls (after one warm-up)."""
    fn(0)
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i + 1)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    from saga_sr.audio.bwe import dsp_bandwidth_extension
    from saga_sr.audio.lfr import low_frequency_replace
    from saga_sr.audio.lr_sim import simulate_lr
    from saga_sr.audio.metrics import lsd, lsd_ssr
    from saga_sr.audio.spectral import rolloff

    rng = np.random.default_rng(0)
    hr = (0.1 * rng.standard_normal((2, CLIP))).astype(np.float32)
    lr = simulate_lr(hr, SR, cutoff=4000.0, filter_type="cheby1", order=8).audio
    rows = [
        (
            "simulate_lr (random draw, roll-off cap measured)",
            _time(lambda s: simulate_lr(hr, SR, seed=s), args.repeats),
        ),
        (
            "simulate_lr (HR roll-off given)",
            _time(lambda s: simulate_lr(hr, SR, seed=s, hr_rolloff_hz=20000.0), args.repeats),
        ),
        ("rolloff", _time(lambda s: rolloff(hr, SR), args.repeats)),
        ("low_frequency_replace", _time(lambda s: low_frequency_replace(hr, lr, SR), args.repeats)),
        ("lsd (NU-Wave 2048/512)", _time(lambda s: lsd(hr, lr, SR), args.repeats)),
        ("lsd_ssr (2048/441)", _time(lambda s: lsd_ssr(hr, lr, SR), args.repeats)),
        ("dsp_bandwidth_extension", _time(lambda s: dsp_bandwidth_extension(lr, SR, 4000.0, s), args.repeats)),
    ]
    print(
        f"audio chain on one core ({platform.processor() or platform.machine()}), "
        f"stereo clip of {CLIP} samples ({CLIP / SR:.2f} s) at {SR} Hz, median of {args.repeats}"
    )
    print(f"{'operation':52s} {'ms/clip':>9s} {'clips/s':>9s}")
    for name, sec in rows:
        print(f"{name:52s} {sec * 1e3:9.1f} {1.0 / sec:9.1f}")


if __name__ == "__main__":
    main()
