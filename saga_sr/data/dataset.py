"""SAGASRDataset: HR segments, their simulated LR versions and the metadata the conditioners read.

Item: ``(hr [C, L] float tensor, metadata)`` with metadata keys ``lr_audio`` ([C, L] tensor), ``padding_mask``
([L] bool, True = real audio), ``audio_path``, ``lr_cutoff_hz``, ``seconds_start``, ``seconds_total``, ``prompt``,
``caption``, ``transcript``, ``domain`` and, with ``compute_rolloff``, ``rolloff_low`` / ``rolloff_high`` (Hz,
input / target) and ``input_rolloff`` / ``target_rolloff`` (normalised bin / 1025).

HR roll-off: the HR segment's 98.5 % roll-off (the paper's), unless the manifest gives the file's measured
bandwidth (``bandwidth_hz``, where its spectrum ends): then that bandwidth is the HR roll-off, both as the
target roll-off (so the knob means "content up to this frequency" and inference's default 0.9, 19.9 kHz, asks
for a full-band file) and as the cap of the simulated LR cutoff (so speech is also seen cut at 8-16 kHz,
where its energy roll-off would have capped the cutoff at a few kHz).

Target low-pass (``target_lowpass_prob``, training only): that share of items gets its HR low-passed at a band
drawn above the LR cutoff, and that band becomes the HR roll-off (see `target_lowpass`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from saga_sr.audio.filters import lowpass_sos, zero_phase_lowpass
from saga_sr.audio.lr_sim import simulate_lr
from saga_sr.audio.spectral import hz_to_normalized, rolloff
from saga_sr.data.index import AudioEntry, IndexResult, build_index
from saga_sr.data.segment import Segment, read_segment
from saga_sr.errors import DataError, SagaError
from saga_sr.seeding import Stream, numpy_rng

log = logging.getLogger(__name__)

# how many other items to try when a file fails to read at training time
_RETRIES = 5


def compose_prompt(caption: str, transcript: str, use_caption: bool) -> str:
    """Caption then transcript; the transcript alone when captions are disabled."""
    parts = [caption.strip()] if use_caption and caption.strip() else []
    if transcript.strip():
        parts.append(transcript.strip())
    return " ".join(parts)


def _rolloff(wav: np.ndarray, sr: int):
    """(normalised, Hz) spectral roll-off of `wav`; (0, 0) for an all-zero segment."""
    if not np.any(wav):
        return 0.0, 0.0
    r = rolloff(wav, sr)
    norm, hz = float(r.normalized), float(r.hz)
    if not (np.isfinite(norm) and np.isfinite(hz)):
        return 0.0, 0.0
    return norm, hz


TARGET_LOWPASS_ORDER = 10  # the steepest of the LR simulation's filters: a clear band edge
TARGET_LOWPASS_MARGIN = 1.25  # the HR band is kept at least this far above the LR cutoff


def target_lowpass(
    hr: np.ndarray, sr: int, lr_cutoff_hz: float, hr_band_hz: float, rng: np.random.Generator
) -> tuple[float, np.ndarray] | None:
    """(band, HR low-passed at `band`) with `band` uniform between 1.25 x the LR cutoff and the HR's own band,
    or None when that range is empty.

    Why: in real data nearly every target has the same band (~20 kHz), so a model never learns what the target
    roll-off asks for; training some items on a narrower target, with that band as their target roll-off,
    teaches the knob "content up to this frequency" (`target_lowpass_prob` in the training block)."""
    lo, hi = TARGET_LOWPASS_MARGIN * lr_cutoff_hz, 0.97 * min(hr_band_hz, sr / 2)
    if hi <= lo:
        return None
    band = float(rng.uniform(lo, hi))
    sos = lowpass_sos("cheby1", TARGET_LOWPASS_ORDER, band, sr)
    return band, zero_phase_lowpass(hr, sos).astype(np.float32)


class SAGASRDataset(Dataset):
    """HR/LR training pairs from folders or a manifest (see the module docstring for the item layout).

    ``deterministic=True`` (validation) fixes each item's crop and LR filter by ``(seed, index)``. A key
    ``(index, epoch)`` (from `EpochSampler`, the training loader) draws them from ``(seed, index, epoch)``, the
    same after a resume. A plain index otherwise gets a new draw every time (per call and per worker).
    """

    def __init__(
        self,
        paths_or_manifest: str | Path | list,
        sample_size: int,
        sample_rate: int,
        audio_channels: int,
        *,
        compute_rolloff: bool = False,
        use_caption: bool = True,
        deterministic: bool = False,
        seed: int = 0,
        cutoff_range: tuple[float, float] = (2000.0, 16000.0),
        target_lowpass_prob: float = 0.0,
        index: IndexResult | None = None,
    ):
        self.index = index if index is not None else build_index(paths_or_manifest)
        self.entries: list[AudioEntry] = list(self.index.entries)
        if not self.entries:
            n = len(self.index.skipped)
            raise DataError(
                f"{paths_or_manifest}: no usable audio files"
                + (f" ({n} skipped: {self.index.skipped[0][1]} ...)" if n else "")
            )
        self.sample_size = int(sample_size)
        self.sample_rate = int(sample_rate)
        self.audio_channels = int(audio_channels)
        self.compute_rolloff = compute_rolloff
        self.use_caption = use_caption
        self.deterministic = deterministic
        self.seed = int(seed)
        self.cutoff_range = tuple(float(c) for c in cutoff_range)
        self.target_lowpass_prob = float(target_lowpass_prob)
        self._draws = 0

    @property
    def skipped(self) -> list[tuple[Path, str]]:
        return self.index.skipped

    def __len__(self) -> int:
        return len(self.entries)

    def _rng(self, index: int, epoch: int | None) -> np.random.Generator:
        if self.deterministic:
            return numpy_rng(self.seed, Stream.CROP, index)
        if epoch is not None:
            return numpy_rng(self.seed, Stream.CROP, index, epoch)
        self._draws += 1
        # torch.initial_seed differs per DataLoader worker and per epoch; the counter covers num_workers=0
        return numpy_rng(self.seed, Stream.CROP, index, torch.initial_seed(), self._draws)

    def __getitem__(self, key: int | tuple[int, int]):
        index, epoch = key if isinstance(key, tuple) else (key, None)
        last: Exception | None = None
        for attempt in range(_RETRIES + 1):
            i = (index + attempt) % len(self.entries)
            try:
                return self._item(i, self._rng(i, epoch))
            except (SagaError, OSError, RuntimeError, ValueError) as exc:
                last = exc
                log.warning("skipping %s at load time: %s", self.entries[i].path, exc)
        raise DataError(f"{_RETRIES + 1} consecutive files failed to load; last error: {last}")

    def _item(self, i: int, rng: np.random.Generator):
        entry = self.entries[i]
        seg: Segment = read_segment(entry, self.sample_size, self.sample_rate, self.audio_channels, rng)
        hr = seg.audio[:, : seg.valid]
        if entry.bandwidth_hz > 0:
            hr_hz = min(entry.bandwidth_hz, self.sample_rate / 2)
            hr_norm = hz_to_normalized(hr_hz, self.sample_rate)
        else:
            hr_norm, hr_hz = _rolloff(hr, self.sample_rate)
        lr_res = simulate_lr(
            hr, self.sample_rate, rng=rng, cutoff_range=self.cutoff_range, hr_rolloff_hz=hr_hz if hr_hz > 0 else None
        )
        audio = seg.audio
        if self.target_lowpass_prob > 0 and rng.random() < self.target_lowpass_prob:
            band = target_lowpass(hr, self.sample_rate, lr_res.cutoff_hz, hr_hz, rng)
            if band is not None:
                hr_hz, hr = band
                hr_norm = hz_to_normalized(hr_hz, self.sample_rate)
                audio = np.zeros_like(seg.audio)
                audio[:, : seg.valid] = hr
        lr = np.zeros_like(seg.audio)
        lr[:, : seg.valid] = np.asarray(lr_res.audio, dtype=np.float32)[:, : seg.valid]
        mask = torch.zeros(self.sample_size, dtype=torch.bool)
        mask[: seg.valid] = True
        metadata = {
            "lr_audio": torch.from_numpy(lr),
            "padding_mask": mask,
            "audio_path": str(entry.path),
            "lr_cutoff_hz": float(lr_res.cutoff_hz),
            "seconds_start": float(seg.seconds_start),
            "seconds_total": float(seg.seconds_total),
            "prompt": compose_prompt(entry.caption, entry.transcript, self.use_caption),
            "caption": entry.caption,
            "transcript": entry.transcript,
            "domain": entry.domain,
        }
        if self.compute_rolloff:
            lr_norm, lr_hz = _rolloff(lr[:, : seg.valid], self.sample_rate)
            metadata.update(rolloff_low=lr_hz, rolloff_high=hr_hz, input_rolloff=lr_norm, target_rolloff=hr_norm)
        return torch.from_numpy(audio), metadata


def collate(batch: list) -> tuple[torch.Tensor, list[dict]]:
    """Stack HR audio to [B, C, L]; metadata stays a list of dicts (the conditioners' input)."""
    audio = torch.stack([item[0] for item in batch])
    return audio, [item[1] for item in batch]
