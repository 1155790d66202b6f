"""GPU training-step benchmark on pre-encoded latents: step time, samples/s, peak memory, model FLOPs utilisation.

For each config (A0 and B1 of the capacity ladder, the full model) with the SAO-shaped VAE (never run: the
batch is latents, as with `--train_latents`) and an offline random T5 of T5-base's shape: AdamW (fused on CUDA),
bf16 autocast, SDPA (flash kernels where the GPU supports them), optional torch.compile and activation
checkpointing. FLOPs per step are counted once with torch's FlopCounterMode (matmuls, convolutions and
attention, forward + backward); MFU = FLOPs per step / step time / peak FLOP/s (`--peak_tflops`, default: the
dense bf16 peak of the GPU model when known).

    python bench/bench_train_gpu.py                                   # GPU: A0, B1, full; bf16; batch 8
    python bench/bench_train_gpu.py --compile --activation_checkpointing --batch 16
    python bench/bench_train_gpu.py --device cpu --configs A0 --batch 1 --steps 2 --sample_size 65536   # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import time

from bench_upsample import load_bench_config

# dense bf16 tensor-core peaks (TFLOP/s) by GPU name fragment
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "4090": 165.0}


def bench_config(name: str, sample_size: int) -> dict:
    """A0 / B1 (ladder rungs of the small model) or full (the full model), with SAO's VAE shape."""
    from saga_sr.config import load_config
    from saga_sr.config.rungs import derive_rung

    if name in ("A0", "A1", "B1"):
        cfg = derive_rung(load_bench_config("saga_model_config_small"), name)
    elif name == "full":
        cfg = load_bench_config("saga_model_config")
    else:
        cfg = load_bench_config(name)
    cfg["model"]["pretransform"] = load_config("stable_audio_open_1.0")["model"]["pretransform"]
    cfg["sample_size"] = int(sample_size)
    return cfg


def latent_batch(model, batch: int, device, seed: int = 0):
    """A random LatentPair [B, Z, T] and the metadata every shipped config's conditioners read."""
    import torch

    from saga_sr.data.latents import LatentPair

    g = torch.Generator().manual_seed(seed)
    frames = model.sample_size // model.downsampling_ratio
    shape = (batch, model.latent_channels, frames)
    pair = LatentPair(
        *(
            torch.randn(shape, generator=g).to(device)
            if i % 2 == 0
            else (0.1 * torch.rand(shape, generator=g)).to(device)
            for i in range(4)
        )
    )
    md = [
        {
            "prompt": f"a recording of a drum loop with reverb, number {i}",
            "seconds_start": 0.0,
            "seconds_total": 30.0,
            "input_rolloff": 0.2,
            "target_rolloff": 0.9,
            "rolloff_low": 4000.0,
            "rolloff_high": 19000.0,
            "latent_mask": torch.ones(frames, dtype=torch.bool, device=device),
        }
        for i in range(batch)
    ]
    return pair, md


def _autocast(device, precision: str):
    import torch

    if precision == "bf16-mixed":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _sdpa(choice: str):
    if choice == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(
        {
            "flash": [SDPBackend.FLASH_ATTENTION],
            "efficient": [SDPBackend.EFFICIENT_ATTENTION],
            "math": [SDPBackend.MATH],
        }[choice]
    )


def run_config(name: str, a: argparse.Namespace) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from saga_sr.models.build import build_model
    from saga_sr.training.module import SAGASRTrainer
    from saga_sr.training.optim import build_optimizer

    device = torch.device(a.device)
    cfg = bench_config(name, a.sample_size)
    model = build_model(cfg, seed=0)
    if a.activation_checkpointing:
        model.dit.transformer.use_checkpointing = True
    module = SAGASRTrainer(model, use_ema=False).to(device)
    module.train()
    if a.compile:
        model.dit.compile()
    params = [p for p in module.parameters() if p.requires_grad]
    opt, _ = build_optimizer(params, cfg.get("training", {}) or {}, 1e-4)
    pair, md = latent_batch(model, a.batch, device)

    def step(i: int):
        gen = torch.Generator(device=device).manual_seed(i)
        with _autocast(device, a.precision), _sdpa(a.sdpa):
            loss = module.flow_step(pair, md, gen)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for i in range(a.warmup):
        step(i)
    sync()
    counter = FlopCounterMode(display=False)
    with counter:
        step(10**6)
    flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync()
    times = []
    for i in range(a.steps):
        t0 = time.perf_counter()
        step(a.warmup + i)
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    peak_mem = (
        torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    peak = a.peak_tflops
    if peak is None and device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in gpu), None)
    n_params = sum(p.numel() for p in model.dit.parameters())
    out = {
        "config": name,
        "device": str(device),
        "precision": a.precision,
        "batch": a.batch,
        "sample_size": a.sample_size,
        "latent_frames": model.sample_size // model.downsampling_ratio,
        "dit_params_M": round(n_params / 1e6, 1),
        "compile": a.compile,
        "activation_checkpointing": a.activation_checkpointing,
        "step_s_median": median,
        "samples_per_s": a.batch / median,
        "peak_memory_GiB": peak_mem / 2**30,
        "tflop_per_step": flops / 1e12,
        "achieved_tflops": flops / median / 1e12,
        "mfu": (flops / median / 1e12 / peak) if peak else None,
        "peak_tflops": peak,
    }
    del module, opt, model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="A0,B1,full", help="comma list: A0, A1, B1, full, or a config name")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a smoke run")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    p.add_argument("--sample_size", type=int, default=262144, help="segment in samples (paper: 262144)")
    p.add_argument(
        "--precision",
        choices=("bf16-mixed", "32-true"),
        default=None,
        help="default bf16-mixed on CUDA, 32-true on CPU",
    )
    p.add_argument(
        "--sdpa",
        choices=("auto", "flash", "efficient", "math"),
        default="auto",
        help="restrict attention to one SDPA backend (flash fails loudly where it cannot run)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the DiT")
    p.add_argument("--activation_checkpointing", action="store_true")
    p.add_argument("--peak_tflops", type=float, default=None, help="peak FLOP/s for MFU (default: known GPUs)")
    a = p.parse_args()
    if a.precision is None:
        a.precision = "bf16-mixed" if a.device.startswith("cuda") else "32-true"
    rows = []
    for name in a.configs.split(","):
        row = run_config(name.strip(), a)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(
        f"\n{'config':8} {'params M':>9} {'batch':>5} {'step s':>8} {'samples/s':>9} {'peak GiB':>8} "
        f"{'TFLOP/step':>10} {'TFLOP/s':>8} {'MFU':>6}"
    )
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        print(
            f"{r['config']:8} {r['dit_params_M']:9.1f} {r['batch']:5d} {r['step_s_median']:8.3f} "
            f"{r['samples_per_s']:9.2f} {r['peak_memory_GiB']:8.2f} {r['tflop_per_step']:10.3f} "
            f"{r['achieved_tflops']:8.2f} {mfu:>6}"
        )


if __name__ == "__main__":
    main()
