"""Is there a faster way to train saga-sr-mini on this CPU? (issue 20: more steps per CPU hour is more model)

Training steps of configs/mini.json (encode, conditioning, DiT forward + backward, AdamW; the trainer's own
flow_step) on synthetic audio, for each setting side by side in one process, interleaved round by round so
that other load on the machine hits every setting alike. Settings: float32 (the recipe's), bf16 autocast
(AVX512-BF16 where the CPU has it), batch 8 instead of 4, and float32 with the DiT under torch.compile
(inductor; its compile time is spent in the warm-up step and reported apart). Reported: median seconds per
step and items per second, and the ratio to float32 at batch 4.

    python bench/bench_train_mini.py --threads 2 --rounds 5 --steps 4
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5, help="rounds; each times --steps steps of every setting")
    p.add_argument("--steps", type=int, default=4)
    args = p.parse_args(argv)

    import torch

    from saga_sr.models.build import build_model
    from saga_sr.training.module import SAGASRTrainer

    torch.set_num_threads(args.threads)
    settings = {
        "fp32, batch 4": (4, False, False),
        "bf16 autocast, batch 4": (4, True, False),
        "fp32, batch 8": (8, False, False),
        "fp32 + torch.compile (DiT), batch 4": (4, False, True),
    }
    runs = {}
    for name, (batch, _bf16, compiled) in settings.items():
        model = build_model("mini", seed=0)
        if compiled:
            model.model = torch.compile(model.model)
        trainer = SAGASRTrainer(model, use_ema=False)
        opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
        g = torch.Generator().manual_seed(0)
        n = model.sample_size
        audio = 0.1 * torch.randn(batch, 1, n, generator=g)
        meta = [
            {
                "prompt": "music",
                "lr_audio": 0.1 * torch.randn(1, n, generator=g),
                "lr_cutoff_hz": 4000.0,
                "seconds_start": 0.0,
                "seconds_total": n / model.sample_rate,
                "input_rolloff": 0.2,
                "target_rolloff": 0.9,
            }
            for _ in range(batch)
        ]
        runs[name] = (trainer, opt, audio, meta)

    def step(name: str) -> None:
        trainer, opt, audio, meta = runs[name]
        bf16 = settings[name][1]
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        with ctx:
            loss = trainer.flow_step(audio, meta, torch.Generator().manual_seed(1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    warmup = {}
    for name in settings:  # warm-up (and, for the compiled setting, compilation)
        t0 = time.perf_counter()
        step(name)
        warmup[name] = time.perf_counter() - t0
    times: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name in settings:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(name)
            times[name].append((time.perf_counter() - t0) / args.steps)
    base = statistics.median(times["fp32, batch 4"]) / 4
    print(f"mini.json training steps, {args.threads} threads, median of {args.rounds} rounds x {args.steps} steps")
    print("| setting | s/step | items/s | items/s vs fp32 batch 4 |")
    print("|---|---|---|---|")
    for name, (batch, *_) in settings.items():
        s = statistics.median(times[name])
        print(f"| {name} | {s:.3f} | {batch / s:.1f} | {(batch / s) * base:.2f}x |")
    print("first (warm-up) step, s: " + ", ".join(f"{name} {t:.1f}" for name, t in warmup.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
