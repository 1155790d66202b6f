"""One audio file -> one 44.1 kHz WAV with an Upsampler: the step `saga-sr upsample` and `saga-sr app` share,
so the command line and the web page run the same inference and report failures with the same line.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from saga_sr.data.index import sidecar_text
from saga_sr.inference.pipeline import UpsampleInfo, Upsampler

__all__ = ["FileResult", "resolve_prompt", "upsample_file", "failure_line"]


@dataclass(frozen=True)
class FileResult:
    src: Path
    dst: Path
    elapsed: float  # wall seconds: read + upsample + write
    info: UpsampleInfo  # rate, channels, duration, band edge, f_l, target and settings the run used

    @property
    def seconds(self) -> float:
        return self.info.input_seconds


def resolve_prompt(prompt: str | None, sidecar: str | os.PathLike | None) -> str:
    """The caption for one file: `prompt` when given (even empty), else the sidecar's text, else ''."""
    if prompt is not None:
        return prompt
    return sidecar_text(sidecar) if sidecar is not None else ""


def upsample_file(
    up: Upsampler, src: str | os.PathLike, dst: str | os.PathLike, *, prompt: str = "", downmix: bool = False, **options
) -> FileResult:
    """`up.upsample_file(src, dst, ...)`: streamed read (any libsndfile format, 4-48 kHz; more than 2 channels
    only with `downmix`, averaged to mono), upsample and atomic write at 44.1 kHz. Raises AudioError / ValueError
    with the reason; nothing is written then."""
    t0 = time.perf_counter()
    info = up.upsample_file(src, dst, prompt=prompt, downmix=downmix, **options)
    return FileResult(Path(src), Path(dst), time.perf_counter() - t0, info)


def failure_line(src: str | os.PathLike, exc: BaseException, *, shown: str | None = None) -> str:
    """'FILE: reason' for a file that failed, FILE named once (errors from audio.io already name it).
    `shown` replaces the path in the line (the web page names the user's file, not its upload copy)."""
    path, msg = str(src), str(exc) or type(exc).__name__
    line = msg if msg.startswith(path) else f"{path}: {msg}"
    return line.replace(path, shown) if shown is not None else line
