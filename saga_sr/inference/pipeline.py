"""Waveform -> waveform super-resolution with a SagaSRModel: any rate and length in, 44.1 kHz out, streamed.

Steps: one pass over the input measures, at the model rate, the paper's 98.5 % roll-off f_l (the model's
input conditioning, exactly as in training) and the band edge (inference.bands / audio.bandedge: where the
input's content ends; `input_cutoff_hz` overrides it). A second pass streams the input, resampled with
soxr's stream API, through the model: model items (a mono model runs each channel as a batch item; a stereo
model gets a mono input duplicated and its output averaged back); overlapping windows of the model's
`sample_size` over the latent timeline; per batch of windows: encode the LR window, compute the
conditioning ONCE (T5, roll-off / seconds numbers, the DiT's projected conditioning, cross-attention
keys/values), sample with Euler + two-scale CFG from noise derived from (seed, window index); crossfade the
windows' latents linearly in latent frames (weights sum to 1); decode overlapping latent chunks (with extra
context margins that are thrown away), put the input band below the edge back (low-frequency replacement)
per chunk, crossfade linearly in the waveform, and hand out each output block as soon as no later chunk
touches it. Only a window's worth of input, latents and output is ever held: memory is flat in the length.

`upsample_file` reads and writes files block by block (the input is read twice: analysis, then
processing); `upsample` does the same on arrays and is the non-streamed reference (one soxr call).

Shape legend: C channels, L samples, I model items, m model audio channels, K latent channels, T frames.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import soundfile as sf
import torch

from saga_sr.audio.io import SILENCE_PEAK, read_audio_blocks, save_audio_blocks
from saga_sr.audio.resample import resample, resample_blocks
from saga_sr.audio.spectral import hz_to_normalized
from saga_sr.config.typed import DEFAULT_CFG_AUDIO, DEFAULT_CFG_TEXT
from saga_sr.errors import AudioError, SagaError
from saga_sr.inference.chunks import ChunkDecoder, Window
from saga_sr.inference.bands import InputBands, band_limit_hz, measure_bands, resolve_target_rolloff
from saga_sr.inference.guidance import guided_velocity
from saga_sr.inference.samplers import euler
from saga_sr.inference.schedules import make_schedule
from saga_sr.inference.stream import ForwardBuffer, OverlapAdd
from saga_sr.inference.windows import WindowPlan, plan_windows, window_weights
from saga_sr.seeding import derive_seed, torch_generator

__all__ = ["Upsampler", "UpsampleInfo", "PRECISIONS", "MIN_INPUT_SR", "MAX_INPUT_SR", "window_seed"]

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MIN_INPUT_SR, MAX_INPUT_SR = 4000, 48000
BLOCK_SECONDS = 10.0  # file blocks read at a time
ProgressFn = Callable[[int, int], None]
_PER_WINDOW = frozenset({"seconds_start"})  # metadata fields that differ between windows of one file


def window_seed(seed: int, window: int) -> int:
    """The noise seed of one window: a hash of (seed, window index), independent of batching and device."""
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
class Timings:
    """Seconds spent per stage in the last call (the benchmark's cost split)."""
    prepare: float = 0.0       # analysis pass: reading, resampling, roll-off and band edge
    encode: float = 0.0        # pretransform encode of the LR windows
    conditioning: float = 0.0  # T5 + number / roll-off conditioners + DiT projections
    sampling: float = 0.0      # DiT steps
    decode: float = 0.0        # pretransform decode
    lfr: float = 0.0           # low-frequency replacement


@dataclass
class UpsampleInfo:
    """What one upsample call measured and used (printed by the CLI, written by `--report`).

    band_edge_hz: the edge low-frequency replacement keeps the input below (detected, or `input_cutoff_hz`);
    detected_edge_hz / edge_cliff: the detector's answer (edge_cliff False: no cliff, the edge is the Nyquist);
    rolloff_hz: f_l, the input's measured 98.5 % roll-off the model is conditioned on (never the edge)."""
    input_sr: int
    channels: int
    input_seconds: float
    band_edge_hz: float
    band_edge_source: str  # "detected" or "input_cutoff"
    detected_edge_hz: float
    edge_cliff: bool
    rolloff_hz: float
    rolloff_normalized: float
    target_rolloff_normalized: float
    target_rolloff_hz: float
    lfr: bool
    steps: int
    schedule: str
    cfg_audio: float
    cfg_text: float
    seed: int
    target_band_limit: bool = False  # content above band_limit_hz removed after decoding
    band_limit_hz: float | None = None  # the given target, raised to the band edge if below it (bands.band_limit_hz)
    timings: Timings = field(default_factory=Timings)
    wall_s: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


class Upsampler:
    """Super-resolution with a loaded SagaSRModel (any weights). Build once, call `upsample` (arrays) or
    `upsample_file` (files, streamed) per input; `info` describes the last call.

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
        self.info: UpsampleInfo | None = None
        self._cond_cache: tuple[dict, dict] | None = None

    # ---- public -------------------------------------------------------------------------------------------
    def upsample(self, wav: np.ndarray, sr: int, **options) -> np.ndarray:
        """wav [C, L] (or [L]) at `sr` (4-48 kHz) -> float32 [C, L'] at 44.1 kHz with L' = round(L * 44100 / sr).

        The whole input is resampled at once (the non-streamed reference of `upsample_file`); options as
        `upsample_file`."""
        t0 = time.perf_counter()
        x = _as_audio(wav)
        _check_rate(sr)
        lr = self._resample(x, int(sr))
        bands = measure_bands([lr.mean(axis=0)], self.sr, int(sr))
        out = np.zeros((x.shape[0], lr.shape[1]), dtype=np.float32)
        pos = 0
        for block in self._stream(iter([lr]), lr.shape[1], x.shape[0], int(sr), bands, t0, **options):
            out[:, pos: pos + block.shape[1]] = block
            pos += block.shape[1]
        return out

    def upsample_file(self, src: str | os.PathLike, dst: str | os.PathLike, *, downmix: bool = False,
                      block_seconds: float = BLOCK_SECONDS, **options) -> UpsampleInfo:
        """Super-resolve the audio file `src` into `dst` (written atomically, 32-bit float WAV for .wav), reading,
        resampling and writing in blocks: memory does not grow with the length. Returns (and keeps as `info`)
        what was measured and used.

        input_cutoff_hz: the input band edge for low-frequency replacement; default the detected edge. It
            never changes f_l, the input roll-off the model is conditioned on (always measured, as in training).
        target_rolloff: normalised (0-1) or Hz (1000 to 22050; bands.resolve_target_rolloff); None (not given):
            conditioned on 0.9 normalised (about 19.9 kHz) and nothing removed.
        prompt: caption text (None = empty caption). cfg_audio / cfg_text: s_a / s_t of the paper's CFG.
        lfr: low-frequency replacement on (default). steps, schedule, batch_size, progress, seed: sampling.
        Deterministic for a seed: window i's noise comes from `window_seed(seed, i)`.
        """
        t0 = time.perf_counter()
        resolve_target_rolloff(options.get("target_rolloff"), self.sr)  # a bad target fails before any reading
        try:
            meta = sf.info(str(src))
        except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as exc:
            raise AudioError(f"{src}: cannot read audio ({exc})") from exc
        sr, frames = int(meta.samplerate), int(meta.frames)
        if frames <= 0:
            raise AudioError(f"{src}: audio has zero length")
        _check_rate(sr, src)
        block = max(1, int(block_seconds * sr))
        peak = [0.0]

        def mono_blocks():
            for b in read_audio_blocks(src, block, downmix=downmix):
                peak[0] = max(peak[0], float(np.abs(b).max()))
                yield b.mean(axis=0, keepdims=True)

        bands = measure_bands((b[0] for b in resample_blocks(mono_blocks(), sr, self.sr, 1)), self.sr, sr)
        if peak[0] < SILENCE_PEAK:
            raise AudioError(f"{src}: audio is silent (peak below {SILENCE_PEAK:g})")
        channels = 1 if meta.channels > 2 else int(meta.channels)  # more than 2: refused above unless downmix
        length = round(frames * self.sr / sr)
        blocks = resample_blocks(read_audio_blocks(src, block, downmix=downmix), sr, self.sr, channels)
        save_audio_blocks(dst, self._stream(blocks, length, channels, sr, bands, t0, **options), self.sr, channels)
        return self.info

    # ---- the streamed core ----------------------------------------------------------------------------------
    def _stream(self, blocks: Iterator[np.ndarray], length: int, channels: int, input_sr: int, bands: InputBands,
                t0: float, *, input_cutoff_hz: float | None = None, target_rolloff: float | None = None,
                prompt: str | None = None, steps: int | None = None, cfg_audio: float = DEFAULT_CFG_AUDIO,
                cfg_text: float = DEFAULT_CFG_TEXT, seed: int = 0, lfr: bool = True, batch_size: int = 4,
                progress: bool | ProgressFn = False, schedule: str = "linear_quadratic",
                on_windows: ProgressFn | None = None, limit_band: bool | None = None) -> Iterator[np.ndarray]:
        """The resampled input as blocks [C, n] (`length` samples at the model rate) -> output blocks [C, n].
        on_windows: `on_windows(done, total)` in sampling windows (x model items), at the start and per batch.
        limit_band: remove the output's content above the target roll-off, never below the band edge
        (bands.band_limit_hz; None: when a target roll-off is given and the model config's `target_band_limit`
        says its target means "content up to", as saga-sr-mini's; no target given limits nothing)."""
        self.timings = Timings()
        self._cond_cache = None
        steps = steps or getattr(self.model, "default_steps", None) or 100  # the model's own default first
        if steps < 1 or batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
        if bands.rolloff_hz <= 0:
            raise AudioError("no input band found (silent input?)")
        nyquist = min(input_sr, self.sr) / 2  # nothing of the input exists above its Nyquist
        if input_cutoff_hz is not None and not (np.isfinite(input_cutoff_hz) and input_cutoff_hz > 0):
            raise ValueError(f"input_cutoff_hz must be a positive number of Hz, got {input_cutoff_hz}")
        edge_hz = min(float(input_cutoff_hz), nyquist) if input_cutoff_hz is not None else bands.edge.hz
        f_l = bands.rolloff_hz
        target_norm, target_hz = resolve_target_rolloff(target_rolloff, self.sr)
        self.info = info = UpsampleInfo(
            input_sr=input_sr, channels=channels, input_seconds=length / self.sr, band_edge_hz=edge_hz,
            band_edge_source="detected" if input_cutoff_hz is None else "input_cutoff",
            detected_edge_hz=bands.edge.hz, edge_cliff=bands.edge.cliff, rolloff_hz=f_l,
            rolloff_normalized=hz_to_normalized(f_l, self.sr), target_rolloff_normalized=target_norm,
            target_rolloff_hz=target_hz, lfr=lfr, steps=steps, schedule=schedule, cfg_audio=cfg_audio,
            cfg_text=cfg_text, seed=seed, timings=self.timings)
        self.timings.prepare = time.perf_counter() - t0

        lr = ForwardBuffer(blocks, channels, length)
        n_items, m = self._n_items(channels)
        plan = plan_windows(-(-length // self.ratio), self.window_frames, int(self.window_frames * self.overlap))
        meta = {"prompt": prompt or "", "input_rolloff": info.rolloff_normalized, "target_rolloff": target_norm,
                "rolloff_low": f_l, "rolloff_high": target_hz, "seconds_total": length / self.sr,
                "lr_cutoff_hz": edge_hz}
        ts = make_schedule(schedule, steps)
        if limit_band is None:  # the model's rule, for a target the caller gave (none given: no limit)
            limit_band = self.model.settings.target_band_limit and target_rolloff is not None
        limit_hz = band_limit_hz(target_hz if limit_band else None, edge_hz, self.sr)
        decoder = ChunkDecoder(self, plan, lr, OverlapAdd((n_items, m), length), edge_hz if lfr else None, limit_hz)
        info.target_band_limit, info.band_limit_hz = limit_hz is not None, limit_hz
        jobs = [(w, i) for w in range(len(plan)) for i in range(n_items)]
        batches = [jobs[k:k + batch_size] for k in range(0, len(jobs), batch_size)]
        tick, close = _progress(progress, len(batches) * steps + len(decoder.plan))
        pending: dict[int, list[torch.Tensor | None]] = {}
        windows_done = on_windows or (lambda done, total: None)
        windows_done(0, len(jobs))
        for b, batch in enumerate(batches):
            z = self._sample_batch(batch, plan, lr, meta, ts, cfg_audio, cfg_text, seed, tick)
            windows_done(min((b + 1) * batch_size, len(jobs)), len(jobs))
            for (w, i), z_item in zip(batch, z):
                pending.setdefault(w, [None] * n_items)[i] = z_item
                if all(v is not None for v in pending[w]):
                    s, e = plan.span(w)
                    weights = torch.from_numpy(window_weights(plan, w))
                    decoder.add(Window(s, e, torch.stack(pending.pop(w)) * weights))
            for out in decoder.flush(tick):
                yield _merge(out, channels)
            next_window = plan.starts[batches[b + 1][0][0]] if b + 1 < len(batches) else plan.total
            lr.release(min(next_window, decoder.needed_from()) * self.ratio)
        for out in decoder.flush(tick, final=True):
            yield _merge(out, channels)
        close()
        info.wall_s = time.perf_counter() - t0

    def detect_input_cutoff(self, wav: np.ndarray, sr: int) -> float:
        """The input band edge in Hz that `upsample` uses when `input_cutoff_hz` is None (shown before a run)."""
        lr = self._resample(_as_audio(wav), int(sr))
        return measure_bands([lr.mean(axis=0)], self.sr, int(sr)).edge.hz

    # ---- helpers ------------------------------------------------------------------------------------------

    def _resample(self, x: np.ndarray, sr: int) -> np.ndarray:
        if sr == self.sr:
            return x
        return resample(x, sr, self.sr).astype(np.float32, copy=False)

    def _n_items(self, channels: int) -> tuple[int, int]:
        """(model items, audio channels per item): a mono model takes each channel, a stereo model stereo."""
        m = int(self.model.audio_channels)
        if m not in (1, 2):
            raise SagaError(f"model has {m} audio channels; only mono or stereo models are supported")
        return (channels, 1) if m == 1 else (1, 2)

    def _item(self, audio: np.ndarray, i: int) -> np.ndarray:
        """Model item i [m, n] of input audio [C, n] (a stereo model gets a mono input duplicated)."""
        if int(self.model.audio_channels) == 1:
            return audio[i:i + 1]
        return audio if audio.shape[0] == 2 else np.broadcast_to(audio, (2, audio.shape[1]))

    def _autocast(self):
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    @torch.no_grad()
    def _sample_batch(self, batch, plan: WindowPlan, lr: ForwardBuffer, meta, ts, cfg_audio, cfg_text, seed, tick):
        model, dev, clock = self.model, self.device, time.perf_counter
        t0 = clock()
        audio = np.stack([self._item(lr.get(plan.starts[w] * self.ratio, plan.span(w)[1] * self.ratio), i)
                          for w, i in batch])
        audio = model.lr_input(torch.from_numpy(audio), [meta["lr_cutoff_hz"]] * len(batch),
                               [seed + 2 + w for w, _ in batch]).numpy()
        z_lr = []
        for (w, _), one in zip(batch, audio):  # one by one: a sampling VAE bottleneck gets a per-window seed
            generator = torch_generator(seed + 1, w, device=dev)
            z_lr.append(model.encode(torch.from_numpy(one[None]).to(dev), generator=generator).float())
        z_lr = torch.cat(z_lr)
        gain = model.lr_gain(z_lr)
        if gain is not None:  # the flow runs relative to the input's level (SagaSRModel.lr_gain)
            z_lr = z_lr / gain
        t1 = clock()
        metadata = [dict(meta, seconds_start=plan.starts[w] * self.ratio / self.sr) for w, _ in batch]
        cfg, dit = self._guided_velocity(metadata, z_lr, cfg_audio, cfg_text)
        t2 = clock()
        noise = torch.stack([torch.randn(z_lr.shape[1:], generator=torch_generator(seed, w))
                             for w, _ in batch]).to(dev)
        z = euler(cfg, noise, ts, callback=lambda *_: tick(1))
        if gain is not None:
            z = z * gain
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


def _check_rate(sr: int, src: str | os.PathLike | None = None) -> None:
    if not MIN_INPUT_SR <= int(sr) <= MAX_INPUT_SR:
        where = f"{src}: " if src is not None else ""
        raise AudioError(f"{where}input sample rate {sr} Hz is outside {MIN_INPUT_SR}-{MAX_INPUT_SR} Hz")


def _merge(out: np.ndarray, channels: int) -> np.ndarray:
    """Model output [I, m, n] -> [C, n]: a stereo model's output for a mono input is averaged back."""
    merged = out.mean(axis=1) if channels == 1 and out.shape[1] > 1 else out.reshape(-1, out.shape[-1])
    return np.ascontiguousarray(merged, dtype=np.float32)
