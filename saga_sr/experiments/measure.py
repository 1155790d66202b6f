"""What the ladder measures per rung besides loss and metrics: parameters, step time and peak memory.

`count_parameters` builds on the meta device (no memory); `benchmark_step` times the training computation
on synthetic audio, free of data loading, validation and checkpointing; `PeakMemory` reads the process's
peak resident memory (reset at entry through /proc/self/clear_refs) or the CUDA allocator's peak.
"""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path

import torch

from saga_sr.models.build import build_model
from saga_sr.seeding import Stream, torch_generator
from saga_sr.training.module import SAGASRTrainer


def count_parameters(cfg: dict) -> dict[str, int]:
    """Total and DiT parameter counts of a config, built on the meta device (no memory, no weights)."""
    model = build_model(cfg, device="meta")
    total = sum(p.numel() for p in model.parameters())
    dit = sum(p.numel() for p in model.model.parameters())
    return {"params_total": int(total), "params_dit": int(dit)}


def benchmark_step(cfg: dict, batch_size: int, device: str, *, steps: int = 3, seed: int = 0) -> float:
    """Median seconds of one training step (pretransform encode, conditioning, DiT forward + backward, AdamW)
    on synthetic audio, after one warm-up step: the rung's compute cost without data loading or validation."""
    model = build_model(cfg, seed=seed).to(device).train()
    module = SAGASRTrainer(model, use_ema=False, seed=seed)
    gen = torch_generator(seed, Stream.BENCH)
    channels, length, sr = model.audio_channels, model.sample_size, model.sample_rate
    audio = 0.1 * torch.randn(batch_size, channels, length, generator=gen)
    metadata = [
        {
            "lr_audio": audio[i].clone(),
            "prompt": "",
            "seconds_start": 0.0,
            "seconds_total": length / sr,
            "input_rolloff": 0.3,
            "target_rolloff": 0.9,
            "lr_cutoff_hz": 4000.0,  # read by lr_prefill (mini.json); ignored by configs without it
        }
        for i in range(batch_size)
    ]
    audio = audio.to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    times = []
    for _ in range(steps + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = module.flow_step(audio, metadata, gen)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(statistics.median(times[1:]))


class PeakMemory:
    """Peak resident memory (CPU, /proc VmHWM reset via clear_refs) or CUDA allocator peak while in the block."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_mb: float | None = None
        self.kind = "cuda max_memory_allocated" if device.startswith("cuda") else "process peak RSS (VmHWM)"

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        else:
            try:  # "5" resets the peak RSS counter (Linux >= 4.0); without it the peak covers the whole process
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                self.kind += ", not reset: whole process"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
            return
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_mb = int(line.split()[1]) / 1024.0
        except OSError:
            self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
