"""What the web page does with the uploads, without Gradio: detect each input's band edge, upsample every
file with `saga_sr.inference.files.upsample_file` (the CLI's own step), draw input and output spectrograms.

Failures stay per file and are reported with the CLI's line (`failure_line`), naming the user's file rather
than its upload copy. Progress goes to `report(fraction, text)` in sampling windows done / total.

Stopping: a job checks its `JobGate` at every sampling step and decoded chunk and ends with `Cancelled` once the
page is stopping, so the process never exits while a worker thread is inside torch (torch's native threads
abort the process then: "terminate called without an active exception").
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from saga_sr.config.typed import ModelSettings
from saga_sr.inference.files import FileResult, failure_line, resolve_prompt, upsample_file
from saga_sr.inference.pipeline import Upsampler

__all__ = [
    "Settings",
    "Upload",
    "Outcome",
    "Cancelled",
    "JobGate",
    "split_uploads",
    "detect_edges",
    "run_uploads",
    "summary_line",
    "spectrogram",
]

CAPTION_SUFFIX = ".caption.txt"
MAX_PLOT_FRAMES = 1500  # STFT frames per spectrogram panel (long files get a longer hop)

Report = Callable[[float, str], None]


@dataclass(frozen=True)
class Settings:
    """The page's controls; None input_cutoff_hz = detect per file, None prompt = sidecar or empty, None
    target_rolloff = not given (upsample's default: conditioned on 0.9, nothing removed); None steps and CFG
    scales = the model's own (`resolved` fills them in for the page to show)."""

    target_rolloff: float | None = None
    prompt: str | None = None
    steps: int | None = None
    cfg_audio: float | None = None
    cfg_text: float | None = None
    seed: int = 0
    lfr: bool = True
    input_cutoff_hz: float | None = None
    batch_size: int = 4

    def resolved(self, model: ModelSettings) -> Settings:
        """These settings with the steps and CFG scales not given taken from the model (ModelSettings.sampling).
        The target roll-off stays as given: None means "not given", which limits nothing."""
        s = model.sampling(self.steps, self.cfg_audio, self.cfg_text, self.target_rolloff)
        return replace(self, steps=s.steps, cfg_audio=s.cfg_audio, cfg_text=s.cfg_text)


@dataclass(frozen=True)
class Upload:
    path: Path  # where the upload lives (a temporary copy)
    name: str  # the user's file name, used in every message
    sidecar: Path | None = None  # an uploaded NAME.caption.txt


@dataclass
class Outcome:
    upload: Upload
    result: FileResult | None = None
    error: str | None = None  # the CLI's one-line failure message
    spectrogram: Path | None = None
    log: list[str] = field(default_factory=list)


class Cancelled(Exception):
    """The page is stopping: the running job ends at its next sampling step or decoded chunk."""


class JobGate:
    """The page's running jobs and its stop signal: `stop_and_wait` (at shutdown) asks running jobs to end
    and waits until none runs, so no worker thread is inside the model when the process exits."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._running = 0

    @contextmanager
    def running(self):
        """Around one job; refuses to start one once stopping."""
        self.check()
        with self._idle:
            self._running += 1
        try:
            yield self
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def check(self, *_) -> None:
        """Raise Cancelled once stopping (any arguments ignored: usable as a progress callback)."""
        if self._stop.is_set():
            raise Cancelled("the page is stopping")

    def stop_and_wait(self, timeout: float) -> bool:
        """Ask running jobs to stop; True when none runs within `timeout` seconds."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._running and time.monotonic() < deadline:
                self._idle.wait(min(0.2, max(deadline - time.monotonic(), 0.0)))
            return self._running == 0


def split_uploads(paths: Sequence[str | Path]) -> list[Upload]:
    """Audio uploads with their NAME.caption.txt sidecars (uploaded beside them) attached; any other file is
    kept as an input, so that it fails with the CLI's 'cannot read audio' line instead of vanishing."""
    paths = [Path(p) for p in paths]
    captions = {p.name[: -len(CAPTION_SUFFIX)]: p for p in paths if p.name.endswith(CAPTION_SUFFIX)}
    return [Upload(p, p.name, captions.get(p.stem)) for p in paths if not p.name.endswith(CAPTION_SUFFIX)]


def detect_edges(up: Upsampler, uploads: Sequence[Upload]) -> list[tuple[str, float | None, str]]:
    """(name, detected input band edge in Hz or None, note) per upload, before any run."""
    from saga_sr.audio.io import load_audio

    rows = []
    for u in uploads:
        try:
            wav, sr = load_audio(u.path, target_sr=None)
            rows.append(
                (u.name, up.detect_input_cutoff(wav, sr), f"{sr} Hz, {wav.shape[0]} ch, {wav.shape[1] / sr:.1f} s")
            )
        except Exception as exc:  # noqa: BLE001 -- shown, and the run will report it the CLI's way
            rows.append((u.name, None, failure_line(u.path, exc, shown=u.name)))
    return rows


def _output_name(name: str, taken: set[str]) -> str:
    stem, n = Path(name).stem, 1
    out = f"{stem}.wav"
    while out in taken:
        n += 1
        out = f"{stem}-{n}.wav"
    taken.add(out)
    return out


def run_uploads(
    up: Upsampler,
    uploads: Sequence[Upload],
    out_dir: Path,
    settings: Settings,
    report: Report | None = None,
    gate: JobGate | None = None,
) -> list[Outcome]:
    """Upsample each upload into out_dir/NAME.wav (+ NAME.spectrogram.png); one failure does not stop the rest.
    Raises Cancelled when `gate` stops (nothing of the file in progress is written)."""
    report = report or (lambda fraction, text: None)
    check = gate.check if gate is not None else (lambda *_: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes, taken, n = [], set(), len(uploads)
    for k, u in enumerate(uploads):
        o = Outcome(u)
        outcomes.append(o)
        tag = f"[{k + 1}/{n}]"
        dst = out_dir / _output_name(u.name, taken)

        def on_windows(done: int, total: int, k=k, tag=tag, u=u) -> None:
            report((k + done / max(total, 1)) / n, f"{tag} {u.name}: windows {done}/{total}")

        try:
            check()
            report(k / n, f"{tag} {u.name}: reading")
            res = upsample_file(
                up,
                u.path,
                dst,
                prompt=resolve_prompt(settings.prompt, u.sidecar),
                input_cutoff_hz=settings.input_cutoff_hz,
                target_rolloff=settings.target_rolloff,
                steps=settings.steps,
                cfg_audio=settings.cfg_audio,
                cfg_text=settings.cfg_text,
                seed=settings.seed,
                lfr=settings.lfr,
                batch_size=settings.batch_size,
                on_windows=on_windows,
                progress=check,
            )
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 -- one bad file must not stop the others (as the CLI)
            o.error = failure_line(u.path, exc, shown=u.name)
            o.log.append(f"{tag} FAILED {o.error}")
            continue
        o.result = res
        o.log.append(f"{tag} {u.name} -> {dst.name} ({res.seconds:.1f} s audio in {res.elapsed:.1f} s)")
        report((k + 1) / n, f"{tag} {u.name}: spectrogram")
        o.spectrogram = spectrogram(res, dst.with_suffix(".spectrogram.png"), name=u.name)
    return outcomes


def summary_line(outcomes: Sequence[Outcome]) -> str:
    """The CLI's closing line: 'upsample: N ok, M failed (names)'."""
    failed = [o.upload.name for o in outcomes if o.error is not None]
    ok = len(outcomes) - len(failed)
    return f"upsample: {ok} ok, {len(failed)} failed" + (f" ({', '.join(failed)})" if failed else "")


def spectrogram(res: FileResult, path: Path, *, name: str) -> Path:
    """Input (resampled to 44.1 kHz, as the model sees it) and output side by side on the same axes, with the
    input band edge the run used drawn as a dashed line."""
    from saga_sr.audio.io import load_audio
    from saga_sr.audio.plots import spectrogram_grid

    sr = 44100
    lr, _ = load_audio(res.src, target_sr=sr)
    out, _ = load_audio(res.dst, target_sr=None, allow_silent=True)
    b = res.info
    title = (
        f"input band edge {b.band_edge_hz / 1000:.2f} kHz (dashed), "
        f"target roll-off {b.target_rolloff_hz / 1000:.2f} kHz"
    )
    spectrogram_grid(
        [(name, {"input (44.1 kHz resampled)": lr, "output": out})],
        sr,
        path,
        cutoffs=[b.band_edge_hz],
        title=title,
        max_frames=MAX_PLOT_FRAMES,
    )
    return path
