"""Spectrogram figures (validation, evaluation, demo): a grid of clips x systems.

Uses matplotlib's object API with the Agg canvas only (no pyplot), so nothing global changes and it
works without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from saga_sr.audio.spectral import stft

_FLOOR_DB = -100.0


def log_spectrogram(
    wav: np.ndarray, sr: int, n_fft: int = 2048, hop: int = 512
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times s, freqs Hz, dB magnitude [freqs, frames]) of the channel mean, centred Hann STFT.
    Any hop works (a hop above n_fft skips audio between frames: an overview of a long file)."""
    x = np.asarray(wav, dtype=np.float32)
    x = x.mean(axis=0) if x.ndim == 2 else x
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    spec = stft(x, n_fft, hop) / (n_fft / 4)  # a full-scale sine on a bin reads 0 dB
    db = 20.0 * np.log10(np.maximum(np.abs(spec), 1e-12))
    times = np.arange(spec.shape[-1]) * hop / sr
    return times, np.fft.rfftfreq(n_fft, 1.0 / sr), np.maximum(db, _FLOOR_DB)


def save_figure(fig, path: Path) -> Path:
    """Render `fig` on the Agg canvas to `path` (PNG), atomically (a temp file renamed in place)."""
    # lazy: matplotlib is slow to import and only drawing needs it
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)
    return path


def spectrogram_grid(
    rows: Sequence[tuple[str, Mapping[str, np.ndarray]]],
    sr: int,
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    title: str = "",
    cutoffs: Sequence[float] | None = None,
    max_frames: int | None = None,
) -> Path:
    """One row per clip, one column per system (e.g. input / ours / DSP / reference); writes a PNG.

    `rows` is [(row label, {column name: wav [C, L] or [L]})]; a missing column leaves its cell blank.
    `cutoffs` (one per row, Hz) draws the LR band edge as a dashed line so the filled band is visible.
    `max_frames` caps the STFT frames per cell (a longer hop for long audio keeps plotting fast and small).
    """
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import and only drawing needs it

    if not rows:
        raise ValueError("spectrogram_grid: no rows to plot")
    columns = list(columns or rows[0][1].keys())
    fig = Figure(figsize=(3.2 * len(columns), 2.4 * len(rows) + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), len(columns), squeeze=False))
    image = None
    for r, (label, wavs) in enumerate(rows):
        for c, name in enumerate(columns):
            ax = axes[r, c]
            if name not in wavs:
                ax.set_axis_off()
                continue
            length = np.shape(wavs[name])[-1]
            hop = max(512, -(-length // max_frames)) if max_frames else 512
            t, f, db = log_spectrogram(wavs[name], sr, hop=hop)
            image = ax.pcolormesh(
                t, f / 1000.0, db - float(db.max()), shading="auto", cmap="magma", vmin=-90.0, vmax=0.0
            )
            if cutoffs is not None and cutoffs[r]:
                ax.axhline(cutoffs[r] / 1000.0, color="cyan", lw=0.8, ls="--")
            if r == 0:
                ax.set_title(name)
            if c == 0:
                ax.set_ylabel(f"{label}\nkHz", fontsize=8)
            if r == len(rows) - 1:
                ax.set_xlabel("s")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="dB re each cell's peak")
    if title:
        fig.suptitle(title)
    return save_figure(fig, Path(path))
