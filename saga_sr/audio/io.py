"""Audio file I/O: read any libsndfile format into `[C, L]` float32 at the model rate, write atomically.

Every user-caused problem (unreadable, empty, non-finite, silent, too many channels) raises
`AudioError` with the file name in the message, so a CLI can report it and go on with the next file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from saga_sr.audio.resample import resample
from saga_sr.errors import AudioError
from saga_sr.outputs import atomic_path

# Extensions searched for in folders. An explicitly named file is read whatever its extension.
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf", ".w64"}
)

# Peak below which audio counts as silent, for training data and for every command's input alike: -80 dBFS,
# at most 3 LSB of 16-bit audio, i.e. dither or noise with no band a roll-off could measure or a model restore.
SILENCE_PEAK = 1e-4

# Default subtype per container when `save_audio(subtype=None)`: lossless for our float32 arrays where
# the container allows float, 24-bit PCM for FLAC (no float FLAC), libsndfile's default otherwise.
_DEFAULT_SUBTYPES = {"WAV": "FLOAT", "W64": "FLOAT", "CAF": "FLOAT", "AIFF": "FLOAT", "FLAC": "PCM_24"}
_FORMAT_BY_EXT = {".aif": "AIFF", ".aifc": "AIFF", ".oga": "OGG", ".opus": "OGG"}


def sf_name(path: str | os.PathLike) -> str | bytes:
    """`path` as soundfile can open it: soundfile encodes a str strictly, so a file name that is not valid in the
    file system's encoding (a Latin-1 name on a UTF-8 system) goes as the raw bytes the OS listed."""
    name = os.fspath(path)
    try:
        name.encode(sys.getfilesystemencoding())
    except UnicodeEncodeError:
        return os.fsencode(name)
    return name


class ChannelCountError(AudioError):
    """More than two channels without `downmix`. The remedy in the message is the caller's to name: a command
    with a --downmix option says so (`with_remedy`); the default names none a caller may not have."""

    def __init__(self, path: str | os.PathLike, channels: int, remedy: str = "downmix them to mono or stereo first"):
        self.path, self.channels = path, channels
        super().__init__(f"{path}: {channels} channels; only mono or stereo is supported ({remedy})")

    def with_remedy(self, remedy: str) -> ChannelCountError:
        return ChannelCountError(self.path, self.channels, remedy)


def _fit_channels(data: np.ndarray, channels: int | None, downmix: bool, path: str | os.PathLike) -> np.ndarray:
    """Mono <-> stereo: duplicate mono when 2 are asked, average when 1 is asked; refuse > 2 unless downmix."""
    n = data.shape[0]
    if n > 2:
        if not downmix:
            raise ChannelCountError(path, n)
        data = data.mean(axis=0, keepdims=True)
        n = 1
    if channels is None or channels == n:
        return data
    if channels == 2:
        return np.repeat(data, 2, axis=0)
    if channels == 1:
        return data.mean(axis=0, keepdims=True)
    raise ValueError(f"channels must be None, 1 or 2, not {channels!r}")


def load_audio(
    path: str | os.PathLike,
    *,
    target_sr: int | None = 44100,
    channels: int | None = None,
    downmix: bool = False,
    allow_silent: bool = False,
) -> tuple[np.ndarray, int]:
    """Read `path` as float32 `[C, L]`, resampled (soxr HQ) to `target_sr` (None keeps the file's rate).

    `channels`: None keeps mono/stereo as stored, 2 duplicates mono, 1 averages stereo. More than two
    channels are refused unless `downmix=True` (then averaged to mono first). Silence is refused unless
    `allow_silent=True`, because a silent training or test clip is almost always a broken file.
    """
    if not Path(path).exists():
        raise AudioError(f"{path}: no such file")
    try:
        data, sr = sf.read(sf_name(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: cannot read audio ({exc})") from exc
    if data.size == 0 or data.shape[0] == 0:
        raise AudioError(f"{path}: audio has zero length")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    if not allow_silent and float(np.max(np.abs(data))) < SILENCE_PEAK:
        raise AudioError(f"{path}: audio is silent (peak below {SILENCE_PEAK:g})")
    wav = _fit_channels(np.ascontiguousarray(data.T), channels, downmix, path)
    if target_sr is not None and target_sr != sr:
        wav = resample(wav, int(sr), int(target_sr)).astype(np.float32, copy=False)
        sr = int(target_sr)
    return wav.astype(np.float32, copy=False), int(sr)


def audio_rate(path: str | os.PathLike) -> int:
    """The sample rate in the file's header (AudioError naming the file when it is missing or unreadable)."""
    if not Path(path).exists():
        raise AudioError(f"{path}: no such file")
    try:
        return int(sf.info(sf_name(path)).samplerate)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: cannot read audio ({exc})") from exc


def read_audio_blocks(path: str | os.PathLike, block_frames: int, *, downmix: bool = False) -> Iterator[np.ndarray]:
    """Read `path` in blocks of float32 `[C, n]` at the file's rate (`sf.info(path)` gives rate and length), so a
    file of any length is never held whole. Checked as `load_audio` checks (readable, mono or stereo unless
    `downmix`, finite samples); the silence and zero-length checks need the whole file and are the caller's."""
    try:
        with sf.SoundFile(sf_name(path)) as f:
            for block in f.blocks(blocksize=int(block_frames), dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    raise AudioError(f"{path}: audio contains NaN or infinite samples")
                yield _fit_channels(np.ascontiguousarray(block.T), None, downmix, path)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: cannot read audio ({exc})") from exc


def _container(path: Path) -> str:
    ext = path.suffix.lower()
    fmt = _FORMAT_BY_EXT.get(ext, ext.lstrip(".").upper())
    if fmt not in sf.available_formats():
        raise AudioError(f"{path}: cannot write files with extension {ext!r}")
    return fmt


def output_subtype(path: str | os.PathLike, subtype: str | None = None) -> str | None:
    """The soundfile subtype `save_audio` writes `path` with (`subtype`, else the container's default)."""
    return subtype or _DEFAULT_SUBTYPES.get(_container(Path(path)))


def is_integer_subtype(subtype: str | None) -> bool:
    """Whether samples are stored as integers (full scale +-1; anything beyond would clip)."""
    return subtype is not None and subtype.upper().startswith(("PCM", "ULAW", "ALAW", "DPCM"))


def fit_gain(wav: np.ndarray, path: str | os.PathLike, subtype: str | None = None) -> float:
    """The gain (<= 1) that makes `wav` fit an integer format's full scale; 1.0 when it fits or the format is float."""
    peak = float(np.max(np.abs(wav))) if np.size(wav) else 0.0
    return 1.0 / peak if peak > 1.0 and is_integer_subtype(output_subtype(path, subtype)) else 1.0


def _check_writable_samples(path: Path, data: np.ndarray, subtype: str | None) -> None:
    """AudioError for samples `save_audio` / `save_audio_blocks` must not write: NaN or infinity, or a peak
    above full scale in an integer format (it would clip silently)."""
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: refusing to write NaN or infinite samples")
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if is_integer_subtype(subtype) and peak > 1.0:
        raise AudioError(
            f"{path}: peak {peak:.3f} is above full scale and {subtype} would clip it; "
            "write a float format (.wav) or scale it down"
        )


def save_audio(path: str | os.PathLike, wav: np.ndarray, sr: int, *, subtype: str | None = None) -> Path:
    """Write `wav` (`[C, L]` or `[L]`) to `path` atomically (saga_sr.outputs: a temp file in the same folder,
    ordinary permissions, then os.replace). The folder is created.

    Never clips silently: a peak above full scale (1.0) in an integer format (PCM, FLAC) is an AudioError
    naming the peak; write a float format, or scale by `fit_gain` first. A failure leaves neither a partial
    file nor the temp file behind.
    """
    path = Path(path)
    data = np.asarray(wav, dtype=np.float32)
    if data.ndim == 1:
        data = data[None]
    if data.ndim != 2 or data.shape[1] == 0:
        raise AudioError(f"{path}: cannot write audio of shape {tuple(np.shape(wav))}; expected [C, L] with L > 0")
    fmt = _container(path)
    subtype = output_subtype(path, subtype)
    _check_writable_samples(path, data, subtype)
    try:
        with atomic_path(path) as tmp:
            sf.write(sf_name(tmp), data.T, int(sr), subtype=subtype, format=fmt)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        raise AudioError(f"{path}: cannot write audio ({exc})") from exc
    return path


def save_audio_blocks(
    path: str | os.PathLike, blocks: Iterable[np.ndarray], sr: int, channels: int, *, subtype: str | None = None
) -> Path:
    """`save_audio` for audio arriving as `[channels, n]` blocks, written as they come (never held whole).
    Any error while the blocks are produced or written (a block above full scale for an integer format
    included) removes the temporary and leaves `path` untouched."""
    path = Path(path)
    fmt = _container(path)
    subtype = output_subtype(path, subtype)
    try:
        with (
            atomic_path(path) as tmp,
            sf.SoundFile(sf_name(tmp), "w", int(sr), int(channels), subtype=subtype, format=fmt) as f,
        ):
            written = 0
            for block in blocks:
                data = np.asarray(block, dtype=np.float32)
                if data.ndim != 2 or data.shape[0] != channels:
                    raise AudioError(f"{path}: cannot write a block of shape {data.shape}; expected [{channels}, n]")
                _check_writable_samples(path, data, subtype)
                f.write(data.T)
                written += data.shape[1]
            if written == 0:
                raise AudioError(f"{path}: cannot write audio of zero length")
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        raise AudioError(f"{path}: cannot write audio ({exc})") from exc
    return path


def find_audio_files_relative(paths: Iterable[str | os.PathLike], recursive: bool = True) -> list[tuple[Path, Path]]:
    """(file, name relative to the argument it came from) for files and folders; a named file keeps its name.

    Folders are searched for AUDIO_EXTENSIONS (hidden files skipped: they include our own temp files),
    sorted for reproducibility. A path that does not exist is an error.
    """
    found: list[tuple[Path, Path]] = []
    for raw in paths:
        root = Path(raw)
        if root.is_file():
            found.append((root, Path(root.name)))
        elif root.is_dir():
            pattern = root.rglob("*") if recursive else root.glob("*")
            files = [
                p
                for p in pattern
                if p.is_file()
                and p.suffix.lower() in AUDIO_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(root).parts)
            ]
            found.extend((p, p.relative_to(root)) for p in sorted(files))
        else:
            raise AudioError(f"{root}: no such file or folder")
    return found


def find_audio_files(paths: Iterable[str | os.PathLike] | str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Audio files named by `paths` (files kept as given, folders searched for AUDIO_EXTENSIONS)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [f for f, _ in find_audio_files_relative(paths, recursive)]
