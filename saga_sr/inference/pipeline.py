"""Waveform -> waveform super-resolution with a SagaSRModel: any rate and length in, 44.1 kHz out, streamed.

Steps: one pass over the input measures, at the model rate, the paper's 98.5 % roll-off f_l (the model's
input conditioning, exactly as in training) and the band edge (inference.bands / audio.bandedge: where the
input's content ends; `input_cutoff_hz` overrides it). A second pass streams the input, resampled with
soxr's stream API, through the model: model items (a mono model runs each channel as a batch item; a stereo
model gets a mono input duplicated and its output averaged back); overlapping windows of the model's
`sample_size` over the latent timeline; per batch of windows: encode the LR window, compute the
conditioning ONCE (T5, roll-off / seconds numbers, the DiT's projected conditioning, cross-attention
keys/values), sample with Euler + two-scale CFG (inference.sampling) from noise derived from (seed, window
index); crossfade the
windows' latents linearly in latent frames (weights sum to 1); decode overlapping latent chunks (with extra
context margins that are thrown away), put the input band below the edge back (low-frequency replacement)
per chunk, crossfade linearly in the waveform, and hand out each output block as soon as no later chunk
touches it. Only a window's worth of input, latents and output is ever held: memory is flat in the length.

`upsample_file` reads and writes files block by block (the input is read twice: analysis, then
processing); `upsample` does the same on arrays and is the non-streamed reference (one soxr call). The
Upsampler keeps no state between calls: what a call measured and used (`UpsampleInfo`, with its timings) is
returned by it.

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

from saga_sr.audio.io import SILENCE_PEAK, read_audio_blocks, save_audio_blocks, sf_name
from saga_sr.audio.resample import resample, resample_blocks
from saga_sr.audio.spectral import hz_to_normalized
from saga_sr.errors import AudioError, SagaError
from saga_sr.inference.bands import InputBands, band_limit_hz, measure_bands, resolve_target_rolloff
from saga_sr.inference.chunks import ChunkDecoder, Window
from saga_sr.inference.sampling import sample_latents
from saga_sr.inference.schedules import make_schedule
from saga_sr.inference.stream import ForwardBuffer, OverlapAdd
from saga_sr.inference.windows import WindowPlan, plan_windows, window_weights
from saga_sr.seeding import Stream, derive_seed, torch_generator

__all__ = ["Upsampler", "UpsampleInfo", "PRECISIONS", "MIN_INPUT_SR", "MAX_INPUT_SR", "window_seed"]

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MIN_INPUT_SR, MAX_INPUT_SR = 4000, 48000
BLOCK_SECONDS = 10.0  # file blocks read at a time
ProgressFn = Callable[[int, int], None]
_PER_WINDOW = frozenset({"seconds_start"})  # metadata fields that differ between windows of one file


def window_seed(seed: int, window: int) -> int:
    """The noise seed of one window: a hash of (seed, window index), independent of batching and device."""
    return derive_seed(seed, Stream.NOISE, window)


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
    """Seconds spent per stage in one call (the benchmark's cost split)."""

    prepare: float = 0.0  # analysis pass: reading, resampling, roll-off and band edge
    encode: float = 0.0  # pretransform encode of the LR windows
    conditioning: float = 0.0  # T5 + number / roll-off conditioners + DiT projections
    sampling: float = 0.0  # DiT steps
    decode: float = 0.0  # pretransform decode
    lfr: float = 0.0  # low-frequency replacement


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
    envelope_follow: float = 0.0  # strength of the top-octave envelope following before LFR (0: off; the model's)
    timings: Timings = field(default_factory=Timings)
    wall_s: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


class Upsampler:
    """Super-resolution with a loaded SagaSRModel (any weights). Build once, call `upsample` (arrays) or
    `upsample_file` (files, streamed) per input; calls share nothing but the model.

    overlap: fraction of a window shared with its neighbour (crossfaded linearly in latent frames);
    decode_margin: extra latent context (fraction of a window) decoded on each side of a chunk and dropped.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        *,
        overlap: float = 0.25,
        decode_margin: float = 0.125,
        window_frames: int | None = None,
    ) -> None:
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

    # ---- public -------------------------------------------------------------------------------------------
    def upsample(self, wav: np.ndarray, sr: int, **options) -> np.ndarray:
        """wav [C, L] (or [L]) at `sr` (4-48 kHz) -> float32 [C, L'] at 44.1 kHz with L' = round(L * 44100 / sr).

        The whole input is resampled at once (the non-streamed reference of `upsample_file`); options as
        `upsample_file`."""
        return self.upsample_with_info(wav, sr, **options)[0]

    def upsample_with_info(self, wav: np.ndarray, sr: int, **options) -> tuple[np.ndarray, UpsampleInfo]:
        """`upsample`, with what the call measured and used."""
        t0 = time.perf_counter()
        x = _as_audio(wav)
        _check_rate(sr)
        lr = self._resample(x, int(sr))
        bands = measure_bands([lr.mean(axis=0)], self.sr, int(sr))
        info, blocks = self._stream(iter([lr]), lr.shape[1], x.shape[0], int(sr), bands, t0, **options)
        out = np.zeros((x.shape[0], lr.shape[1]), dtype=np.float32)
        pos = 0
        for block in blocks:
            out[:, pos : pos + block.shape[1]] = block
            pos += block.shape[1]
        return out, info

    def upsample_file(
        self,
        src: str | os.PathLike,
        dst: str | os.PathLike,
        *,
        downmix: bool = False,
        block_seconds: float = BLOCK_SECONDS,
        **options,
    ) -> UpsampleInfo:
        """Super-resolve the audio file `src` into `dst` (written atomically, 32-bit float WAV for .wav), reading,
        resampling and writing in blocks: memory does not grow with the length. Returns what was measured and
        used.

        input_cutoff_hz: the input band edge for low-frequency replacement; default the detected edge. It
            never changes f_l, the input roll-off the model is conditioned on (always measured, as in training).
        target_rolloff: normalised (0-1) or Hz (1000 to 22050; bands.resolve_target_rolloff); None (not given):
            conditioned on 0.9 normalised (about 19.9 kHz) and nothing removed.
        prompt: caption text (None = empty caption). cfg_audio / cfg_text: s_a / s_t of the paper's CFG.
        lfr: low-frequency replacement on (default). steps, schedule, batch_size, progress, seed: sampling.
        steps, cfg_audio, cfg_text: None = the model's own (ModelSettings.sampling).
        Deterministic for a seed: window i's noise comes from `window_seed(seed, i)`.
        """
        t0 = time.perf_counter()
        resolve_target_rolloff(options.get("target_rolloff"), self.sr)  # a bad target fails before any reading
        try:
            meta = sf.info(sf_name(src))
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
        info, out = self._stream(blocks, length, channels, sr, bands, t0, **options)
        save_audio_blocks(dst, out, self.sr, channels)
        return info

    # ---- the streamed core ----------------------------------------------------------------------------------
    def _stream(
        self,
        blocks: Iterator[np.ndarray],
        length: int,
        channels: int,
        input_sr: int,
        bands: InputBands,
        t0: float,
        *,
        input_cutoff_hz: float | None = None,
        target_rolloff: float | None = None,
        prompt: str | None = None,
        steps: int | None = None,
        cfg_audio: float | None = None,
        cfg_text: float | None = None,
        seed: int = 0,
        lfr: bool = True,
        batch_size: int = 4,
        progress: bool | ProgressFn = False,
        schedule: str = "linear_quadratic",
        on_windows: ProgressFn | None = None,
        limit_band: bool | None = None,
    ) -> tuple[UpsampleInfo, Iterator[np.ndarray]]:
        """The resampled input as blocks [C, n] (`length` samples at the model rate) -> (what the call uses,
        the output blocks [C, n]); the info's timings and wall time are complete once the blocks are consumed.
        on_windows: `on_windows(done, total)` in sampling windows (x model items), at the start and per batch.
        limit_band: remove the output's content above the target roll-off, never below the band edge
        (bands.band_limit_hz; None: when a target roll-off is given and the model config's `target_band_limit`
        says its target means "content up to", as saga-sr-mini's; no target given limits nothing)."""
        sampling = self.model.settings.sampling(steps, cfg_audio, cfg_text, target_rolloff)
        if sampling.steps < 1 or batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {sampling.steps}, {batch_size}")
        if bands.rolloff_hz <= 0:
            raise AudioError("no input band found (silent input?)")
        nyquist = min(input_sr, self.sr) / 2  # nothing of the input exists above its Nyquist
        if input_cutoff_hz is not None and not (np.isfinite(input_cutoff_hz) and input_cutoff_hz > 0):
            raise ValueError(f"input_cutoff_hz must be a positive number of Hz, got {input_cutoff_hz}")
        edge_hz = min(float(input_cutoff_hz), nyquist) if input_cutoff_hz is not None else bands.edge.hz
        f_l = bands.rolloff_hz
        target_norm, target_hz = resolve_target_rolloff(sampling.target_rolloff, self.sr)
        if limit_band is None:  # the model's rule, for a target the caller gave (the default asks for no limit)
            limit_band = self.model.settings.target_band_limit and target_rolloff is not None
        limit_hz = band_limit_hz(target_hz if limit_band else None, edge_hz, self.sr)
        info = UpsampleInfo(
            input_sr=input_sr,
            channels=channels,
            input_seconds=length / self.sr,
            band_edge_hz=edge_hz,
            band_edge_source="detected" if input_cutoff_hz is None else "input_cutoff",
            detected_edge_hz=bands.edge.hz,
            edge_cliff=bands.edge.cliff,
            rolloff_hz=f_l,
            rolloff_normalized=hz_to_normalized(f_l, self.sr),
            target_rolloff_normalized=target_norm,
            target_rolloff_hz=target_hz,
            lfr=lfr,
            steps=sampling.steps,
            schedule=schedule,
            cfg_audio=sampling.cfg_audio,
            cfg_text=sampling.cfg_text,
            seed=seed,
            target_band_limit=limit_hz is not None,
            band_limit_hz=limit_hz,
            envelope_follow=self.model.settings.envelope_follow,
        )
        info.timings.prepare = time.perf_counter() - t0
        return info, self._blocks(
            blocks,
            length,
            channels,
            info,
            t0,
            prompt=prompt,
            batch_size=batch_size,
            progress=progress,
            on_windows=on_windows,
        )

    def _blocks(
        self,
        blocks: Iterator[np.ndarray],
        length: int,
        channels: int,
        info: UpsampleInfo,
        t0: float,
        *,
        prompt: str | None,
        batch_size: int,
        progress: bool | ProgressFn,
        on_windows: ProgressFn | None,
    ) -> Iterator[np.ndarray]:
        """The output blocks [C, n] of one call set up by `_stream`; fills in the info's timings."""
        lr = ForwardBuffer(blocks, channels, length)
        n_items, m = self._n_items(channels)
        plan = plan_windows(-(-length // self.ratio), self.window_frames, int(self.window_frames * self.overlap))
        meta = {
            "prompt": prompt or "",
            "input_rolloff": info.rolloff_normalized,
            "target_rolloff": info.target_rolloff_normalized,
            "rolloff_low": info.rolloff_hz,
            "rolloff_high": info.target_rolloff_hz,
            "seconds_total": length / self.sr,
            "lr_cutoff_hz": info.band_edge_hz,
        }
        ts = make_schedule(info.schedule, info.steps)
        decoder = ChunkDecoder(
            plan,
            lr,
            OverlapAdd((n_items, m), length),
            decode=self._decode,
            item=self._item,
            sample_rate=self.sr,
            ratio=self.ratio,
            margin=int(round(plan.length * self.decode_margin)),
            cutoff_hz=info.band_edge_hz if info.lfr else None,
            target_hz=info.band_limit_hz,
            envelope=(info.envelope_follow, info.band_edge_hz),
        )
        jobs = [(w, i) for w in range(len(plan)) for i in range(n_items)]
        batches = [jobs[k : k + batch_size] for k in range(0, len(jobs), batch_size)]
        tick, close = _progress(progress, len(batches) * info.steps + len(decoder.plan))
        pending: dict[int, list[torch.Tensor | None]] = {}
        cache: dict = {}
        windows_done = on_windows or (lambda done, total: None)
        windows_done(0, len(jobs))
        for b, batch in enumerate(batches):
            z = self._sample_batch(batch, plan, lr, meta, ts, info, cache, tick)
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
        info.timings.decode, info.timings.lfr = decoder.decode_s, decoder.lfr_s
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
            return audio[i : i + 1]
        return audio if audio.shape[0] == 2 else np.broadcast_to(audio, (2, audio.shape[1]))

    @torch.no_grad()
    def _decode(self, z: torch.Tensor) -> np.ndarray:
        """Latents [I, K, T] -> audio [I, m, T * ratio] on the CPU."""
        return self.model.decode(z.to(self.device)).float().cpu().numpy()

    def _autocast(self):
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    @torch.no_grad()
    def _sample_batch(
        self,
        batch,
        plan: WindowPlan,
        lr: ForwardBuffer,
        meta: dict,
        ts: torch.Tensor,
        info: UpsampleInfo,
        cache: dict,
        tick,
    ) -> torch.Tensor:
        """Latents [B, K, W] of a batch of (window, item) jobs; the prefill, posterior and noise of each window
        come from its own seeds, whatever the batching."""
        model, dev, clock, seed = self.model, self.device, time.perf_counter, info.seed
        t0 = clock()
        audio = np.stack(
            [self._item(lr.get(plan.starts[w] * self.ratio, plan.span(w)[1] * self.ratio), i) for w, i in batch]
        )
        audio = model.lr_input(
            torch.from_numpy(audio),
            [meta["lr_cutoff_hz"]] * len(batch),
            [derive_seed(seed, Stream.PREFILL, w) for w, _ in batch],
        ).numpy()
        z_lr = []
        for (w, _), one in zip(batch, audio):  # one by one: a sampling VAE bottleneck gets a per-window seed
            generator = torch_generator(seed, Stream.POSTERIOR, w, device=dev)
            z_lr.append(model.encode(torch.from_numpy(one[None]).to(dev), generator=generator).float())
        z_lr = torch.cat(z_lr)
        t1 = clock()
        metadata = [dict(meta, seconds_start=plan.starts[w] * self.ratio / self.sr) for w, _ in batch]
        cond = window_conditioning(model, metadata, cache, dev)
        t2 = clock()
        noise = torch.stack(
            [torch.randn(z_lr.shape[1:], generator=torch_generator(seed, Stream.NOISE, w)) for w, _ in batch]
        )
        z = sample_latents(
            model,
            z_lr,
            cond,
            noise,
            ts,
            cfg_audio=info.cfg_audio,
            cfg_text=info.cfg_text,
            rolloff=self._rolloff(metadata),
            autocast=self._autocast,
            callback=lambda *_: tick(1),
        )
        info.timings.encode += t1 - t0
        info.timings.conditioning += t2 - t1
        info.timings.sampling += clock() - t2
        return z.float().cpu()

    def _rolloff(self, metadata: list[dict]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Normalised (input, target) roll-offs [B] for a roll-off conditioner, or None without one."""
        if getattr(self.model, "rolloff_conditioner", None) is None:
            return None
        return (
            torch.tensor([m["input_rolloff"] for m in metadata], device=self.device),
            torch.tensor([m["target_rolloff"] for m in metadata], device=self.device),
        )


def window_conditioning(model: torch.nn.Module, metadata: list[dict], cache: dict, device: str | torch.device) -> dict:
    """model.conditioning(metadata), with everything but the per-window fields (seconds_start) computed
    once per call (kept in `cache`): the T5 text encoding runs once per upsample call, not once per batch."""
    key = {k: v for k, v in metadata[0].items() if k not in _PER_WINDOW}
    if cache.get("key") != key:
        cache.update(key=key, cond=model.conditioning(metadata[:1], device))
    base, b = cache["cond"], len(metadata)
    conditioners = getattr(model.conditioner, "conditioners", {})
    default_keys = getattr(model.conditioner, "default_keys", {})
    cond = {}
    for cid, (emb, mask) in base.items():
        field = cid if cid in metadata[0] else default_keys.get(cid, cid)
        if field in _PER_WINDOW and cid in conditioners:
            cond[cid] = tuple(conditioners[cid]([m[field] for m in metadata], device))
        else:
            cond[cid] = (emb.expand(b, *emb.shape[1:]), mask.expand(b, *mask.shape[1:]))
    return cond


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
