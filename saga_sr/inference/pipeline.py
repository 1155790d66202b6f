"""Waveform -> waveform super-resolution with a SagaSRModel: any rate and length in, 44.1 kHz out.

Steps: resample to the model rate (soxr HQ); measure the input band (the paper's roll-off) unless given;
split channels into model items (a mono model runs each channel as a batch item; a stereo model gets a mono
input duplicated and its output averaged back); cover the latent timeline with overlapping windows of the
model's `sample_size`; for each batch of windows: encode the LR window, compute the conditioning ONCE
(T5, roll-off / seconds numbers, the DiT's projected conditioning, cross-attention keys/values), sample with
Euler + two-scale CFG from noise derived from (seed, window index); crossfade the windows' latents linearly
in latent frames (weights sum to 1); decode overlapping latent chunks (with extra context margins that are
thrown away), apply low-frequency replacement per chunk with the detected cutoff, crossfade linearly in the
waveform. Windows and chunks are streamed: a window's latent is dropped once every chunk that needs it is
decoded, so apart from the input and output arrays memory does not grow with the length.

Shape legend: C channels, L samples, I model items, m model audio channels, K latent channels, T frames.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from saga_sr.audio.lfr import low_frequency_replace
from saga_sr.audio.resample import resample
from saga_sr.audio.spectral import hz_to_normalized
from saga_sr.config.typed import DEFAULT_CFG_AUDIO, DEFAULT_CFG_TEXT
from saga_sr.errors import AudioError, SagaError
from saga_sr.inference.bands import resolve_target_rolloff, streaming_rolloff_hz
from saga_sr.inference.guidance import guided_velocity
from saga_sr.inference.samplers import euler
from saga_sr.inference.schedules import make_schedule
from saga_sr.inference.windows import WindowPlan, plan_windows, window_weights
from saga_sr.seeding import derive_seed, torch_generator

__all__ = ["Upsampler", "PRECISIONS", "MIN_INPUT_SR", "MAX_INPUT_SR", "window_seed"]

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MIN_INPUT_SR, MAX_INPUT_SR = 4000, 48000
ProgressFn = Callable[[int, int], None]
_PER_WINDOW = frozenset({"seconds_start"})  # metadata fields that differ between windows of one file


def window_seed(seed: int, window: int) -> int:
    """The noise seed of one window: derived from (seed, window index), independent of batching and device."""
    return derive_seed(seed, window)


def _as_audio(wav: np.ndarray) -> np.ndarray:
    x = np.asarray(wav, dtype=np.float32)
    x = x[None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[1] == 0:
        raise AudioError(f"expected audio [channels, samples] with samples > 0, got shape {np.shape(wav)}")
    if x.shape[0] not in (1, 2):
        raise AudioError(f"{x.shape[0]} channels; only mono or stereo is supported")
    if not np.isfinite(x).all():
        raise AudioError("audio contains NaN or infinite samples")
    return x


@dataclass
class _Window:
    """A finished sampling window: weighted latents of every item [I, K, W] and its span in frames."""
    start: int
    end: int
    z: torch.Tensor


@dataclass
class Timings:
    """Seconds spent per stage in the last call (the benchmark's cost split)."""
    prepare: float = 0.0       # resampling + roll-off detection
    encode: float = 0.0        # pretransform encode of the LR windows
    conditioning: float = 0.0  # T5 + number / roll-off conditioners + DiT projections
    sampling: float = 0.0      # DiT steps
    decode: float = 0.0        # pretransform decode
    lfr: float = 0.0           # low-frequency replacement


class Upsampler:
    """Super-resolution with a loaded SagaSRModel (any weights). Build once, call `upsample` per file.

    overlap: fraction of a window shared with its neighbour (crossfaded linearly in latent frames);
    decode_margin: extra latent context (fraction of a window) decoded on each side of a chunk and dropped.
    """

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", precision: str = "fp32", *,
                 overlap: float = 0.25, decode_margin: float = 0.125, window_frames: int | None = None) -> None:
        if precision not in PRECISIONS:
            raise SagaError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.overlap, self.decode_margin = overlap, decode_margin
        self.sr = int(model.sample_rate)
        self.ratio = int(model.downsampling_ratio)
        # latent frames per window: the model's training length unless overridden (shorter = less memory)
        self.window_frames = int(window_frames or max(1, int(model.sample_size) // self.ratio))
        self.timings = Timings()
        self._cond_cache: tuple[dict, dict] | None = None

    # ---- public -------------------------------------------------------------------------------------------
    def upsample(self, wav: np.ndarray, sr: int, *, input_cutoff_hz: float | None = None,
                 target_rolloff: float | None = None, prompt: str | None = None, steps: int = 100,
                 cfg_audio: float = DEFAULT_CFG_AUDIO, cfg_text: float = DEFAULT_CFG_TEXT, seed: int = 0,
                 lfr: bool = True, batch_size: int = 4, progress: bool | ProgressFn = False,
                 schedule: str = "linear_quadratic") -> np.ndarray:
        """wav [C, L] (or [L]) at `sr` (4-48 kHz) -> float32 [C, L'] at 44.1 kHz with L' = round(L * 44100 / sr).

        input_cutoff_hz: the input band edge; default the paper's 98.5 % roll-off of the input.
        target_rolloff: normalised (<= 1) or Hz (> 1); default 0.9 normalised (about 19.9 kHz).
        prompt: caption text (None = empty caption). cfg_audio / cfg_text: s_a / s_t of the paper's CFG.
        Deterministic for a seed: window i's noise comes from `window_seed(seed, i)`.
        """
        self.timings = Timings()
        self._cond_cache = None
        t0 = time.perf_counter()
        x = _as_audio(wav)
        if not MIN_INPUT_SR <= int(sr) <= MAX_INPUT_SR:
            raise AudioError(f"input sample rate {sr} Hz is outside {MIN_INPUT_SR}-{MAX_INPUT_SR} Hz")
        if steps < 1 or batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
        lr = self._resample(x, int(sr))
        cutoff_hz = float(input_cutoff_hz) if input_cutoff_hz is not None else streaming_rolloff_hz(lr, self.sr)
        if cutoff_hz <= 0:
            raise AudioError("no input band found (silent input?); pass input_cutoff_hz")
        cutoff_hz = min(cutoff_hz, int(sr) / 2, self.sr / 2)  # nothing of the input exists above its Nyquist
        target_norm, target_hz = resolve_target_rolloff(target_rolloff, self.sr)
        self.timings.prepare = time.perf_counter() - t0

        items = self._items(lr)
        length = lr.shape[1]
        total_frames = -(-length // self.ratio)
        plan = plan_windows(total_frames, self.window_frames, int(self.window_frames * self.overlap))
        meta = {"prompt": prompt or "", "input_rolloff": hz_to_normalized(cutoff_hz, self.sr),
                "target_rolloff": target_norm, "rolloff_low": cutoff_hz, "rolloff_high": target_hz,
                "seconds_total": length / self.sr}
        ts = make_schedule(schedule, steps)
        out = np.zeros((len(items), items[0].shape[0], length), dtype=np.float32)
        decoder = _ChunkDecoder(self, plan, items, out, cutoff_hz if lfr else None)
        jobs = [(w, i) for w in range(len(plan)) for i in range(len(items))]
        batches = [jobs[k:k + batch_size] for k in range(0, len(jobs), batch_size)]
        tick, close = _progress(progress, len(batches) * steps + len(decoder.plan))
        pending: dict[int, list[torch.Tensor | None]] = {}
        for batch in batches:
            z = self._sample_batch(batch, plan, items, meta, ts, cfg_audio, cfg_text, seed, tick)
            for (w, i), z_item in zip(batch, z):
                pending.setdefault(w, [None] * len(items))[i] = z_item
                if all(v is not None for v in pending[w]):
                    s, e = plan.span(w)
                    weights = torch.from_numpy(window_weights(plan, w))
                    decoder.add(_Window(s, e, torch.stack(pending.pop(w)) * weights))
            decoder.flush(tick)
        decoder.flush(tick, final=True)
        close()
        merged = out.mean(axis=1) if x.shape[0] == 1 and out.shape[1] > 1 else out.reshape(-1, length)
        return np.ascontiguousarray(merged, dtype=np.float32)

    # ---- helpers ------------------------------------------------------------------------------------------
    def _resample(self, x: np.ndarray, sr: int) -> np.ndarray:
        return resample(x, sr, self.sr).astype(np.float32, copy=False)

    def _items(self, lr: np.ndarray) -> list[np.ndarray]:
        """Model items [m, L]: a mono model takes each channel; a stereo model takes stereo (mono duplicated)."""
        m = int(self.model.audio_channels)
        if m == 1:
            return [lr[c:c + 1] for c in range(lr.shape[0])]
        if m == 2:
            return [lr if lr.shape[0] == 2 else np.broadcast_to(lr, (2, lr.shape[1]))]
        raise SagaError(f"model has {m} audio channels; only mono or stereo models are supported")

    def _autocast(self):
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def window_audio(self, item: np.ndarray, start: int, end: int) -> np.ndarray:
        """Samples [start, end) of an item, zero-padded outside [0, L)."""
        length = item.shape[1]
        seg = np.zeros((item.shape[0], end - start), dtype=np.float32)
        a, b = max(start, 0), min(end, length)
        if b > a:
            seg[:, a - start: b - start] = item[:, a:b]
        return seg

    @torch.no_grad()
    def _sample_batch(self, batch, plan: WindowPlan, items, meta, ts, cfg_audio, cfg_text, seed, tick):
        model, dev, clock = self.model, self.device, time.perf_counter
        t0 = clock()
        audio = np.stack([self.window_audio(items[i], plan.starts[w] * self.ratio, plan.span(w)[1] * self.ratio)
                          for w, i in batch])
        z_lr = []
        for (w, _), one in zip(batch, audio):  # one by one: a sampling VAE bottleneck gets a per-window seed
            generator = torch_generator(seed + 1, w, device=dev)
            z_lr.append(model.encode(torch.from_numpy(one[None]).to(dev), generator=generator).float())
        z_lr = torch.cat(z_lr)
        t1 = clock()
        metadata = [dict(meta, seconds_start=plan.starts[w] * self.ratio / self.sr) for w, _ in batch]
        cfg, dit = self._guided_velocity(metadata, z_lr, cfg_audio, cfg_text)
        t2 = clock()
        noise = torch.stack([torch.randn(z_lr.shape[1:], generator=torch_generator(seed, w))
                             for w, _ in batch]).to(dev)
        z = euler(cfg, noise, ts, callback=lambda *_: tick(1))
        self.timings.encode += t1 - t0
        self.timings.conditioning += t2 - t1
        self.timings.sampling += clock() - t2
        return z.float().cpu()

    def _conditioning(self, metadata: list[dict]) -> dict:
        """model.conditioning(metadata), with everything but the per-window fields (seconds_start) computed
        once per file: the T5 text encoding runs once per upsample call, not once per window batch."""
        model, dev = self.model, self.device
        key = {k: v for k, v in metadata[0].items() if k not in _PER_WINDOW}
        if self._cond_cache is None or self._cond_cache[0] != key:
            self._cond_cache = (key, model.conditioning(metadata[:1], dev))
        base, b = self._cond_cache[1], len(metadata)
        conditioners = getattr(model.conditioner, "conditioners", {})
        default_keys = getattr(model.conditioner, "default_keys", {})
        cond = {}
        for cid, (emb, mask) in base.items():
            field = cid if cid in metadata[0] else default_keys.get(cid, cid)
            if field in _PER_WINDOW and cid in conditioners:
                cond[cid] = tuple(conditioners[cid]([m[field] for m in metadata], dev))
            else:
                cond[cid] = (emb.expand(b, *emb.shape[1:]), mask.expand(b, *mask.shape[1:]))
        return cond

    def _guided_velocity(self, metadata: list[dict], z_lr: torch.Tensor, cfg_audio: float, cfg_text: float):
        """Conditioning computed once for the batch -> (TwoScaleCFG velocity, the DiT)."""
        model, dev = self.model, self.device
        rolloff = None
        if getattr(model, "rolloff_conditioner", None) is not None:
            rolloff = (torch.tensor([m["input_rolloff"] for m in metadata], device=dev),
                       torch.tensor([m["target_rolloff"] for m in metadata], device=dev))
        cfg = guided_velocity(model, self._conditioning(metadata), z_lr, scale_audio=cfg_audio, scale_text=cfg_text,
                              rolloff=rolloff, autocast=self._autocast)
        return cfg, model.dit


def _progress(progress: bool | ProgressFn, total: int) -> tuple[Callable[[int], None], Callable[[], None]]:
    """(tick(n), close()) for a callback `progress(done, total)`, a tqdm bar (True) or nothing."""
    if callable(progress):
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            progress(done[0], total)
        return tick, lambda: None
    if progress:
        from tqdm import tqdm  # lazy: only when a progress bar is asked for
        bar = tqdm(total=total, unit="step", leave=False)
        return bar.update, bar.close
    return (lambda n: None), (lambda: None)


class _ChunkDecoder:
    """Decodes overlapping latent chunks as soon as the sampling windows they need are finished."""

    def __init__(self, up: Upsampler, plan: WindowPlan, items: list[np.ndarray], out: np.ndarray,
                 cutoff_hz: float | None) -> None:
        self.up, self.items, self.out, self.cutoff_hz = up, items, out, cutoff_hz
        self.plan = plan
        self.margin = int(round(plan.length * up.decode_margin))
        self.sample_plan = plan.scaled(up.ratio, total=out.shape[2])
        self.windows: OrderedDict[int, _Window] = OrderedDict()
        self.next_chunk = 0
        self.done_until = 0  # frames [0, done_until) are covered by finished windows

    def add(self, window: _Window) -> None:
        self.windows[window.start] = window

    def _extended(self, j: int) -> tuple[int, int]:
        s, e = self.plan.span(j)
        return max(0, s - self.margin), min(self.plan.total, e + self.margin)

    def flush(self, tick: Callable[[int], None], final: bool = False) -> None:
        finished_until = self.plan.total if final else self._finished_until()
        while self.next_chunk < len(self.plan):
            a, b = self._extended(self.next_chunk)
            if b > finished_until:
                break
            self._decode(self.next_chunk, a, b)
            self.next_chunk += 1
            tick(1)
            keep_from = self._extended(self.next_chunk)[0] if self.next_chunk < len(self.plan) else self.plan.total
            for start in [s for s, w in self.windows.items() if w.end <= keep_from]:
                del self.windows[start]

    def _finished_until(self) -> int:
        """Frames before the first not-yet-finished window are final (windows finish in order)."""
        if not self.windows:
            return 0
        last = max(self.windows)
        idx = self.plan.starts.index(last)
        return self.plan.starts[idx + 1] if idx + 1 < len(self.plan) else self.plan.total

    def _latent(self, a: int, b: int) -> torch.Tensor:
        first = next(iter(self.windows.values())).z
        z = torch.zeros(first.shape[0], first.shape[1], b - a)
        for w in self.windows.values():
            lo, hi = max(a, w.start), min(b, w.end)
            if hi > lo:
                z[:, :, lo - a: hi - a] += w.z[:, :, lo - w.start: hi - w.start]
        return z

    @torch.no_grad()
    def _decode(self, j: int, a: int, b: int) -> None:
        up, ratio, clock = self.up, self.up.ratio, time.perf_counter
        t0 = clock()
        wav = up.model.decode(self._latent(a, b).to(up.device)).float().cpu().numpy()
        t1 = clock()
        if self.cutoff_hz is not None:
            wav = np.stack([low_frequency_replace(wav[i], up.window_audio(item, a * ratio, b * ratio), up.sr,
                                                  cutoff_hz=self.cutoff_hz) for i, item in enumerate(self.items)])
        t2 = clock()
        s, e = self.sample_plan.span(j)
        e = min(e, self.out.shape[2])
        weights = window_weights(self.sample_plan, j)[: e - s]
        self.out[:, :, s:e] += wav[:, :, s - a * ratio: e - a * ratio] * weights
        up.timings.decode += t1 - t0
        up.timings.lfr += t2 - t1
