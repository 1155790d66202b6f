"""Finding the training audio: folders (recursive) or a manifest, sidecar texts, and the skipped-file report.

Every file is checked once when the set is indexed (header, then one streaming read for non-finite samples and
silence), so a broken or silent file is reported with its reason instead of crashing a run hours later.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from saga_sr.audio.io import SILENCE_PEAK, find_audio_files, sf_name
from saga_sr.errors import DataError

log = logging.getLogger(__name__)

MIN_SECONDS = 0.05
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".json")


@dataclass(frozen=True)
class AudioEntry:
    """One usable recording and the text that goes with it."""

    path: Path
    frames: int
    sample_rate: int
    channels: int
    caption: str = ""
    transcript: str = ""
    domain: str = ""
    bandwidth_hz: float = 0.0  # measured bandwidth from a manifest column (0: unknown); see SAGASRDataset

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


@dataclass
class IndexResult:
    entries: list[AudioEntry] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    cache: dict = field(default_factory=dict)  # the check results by size and mtime, for `write_index_cache`


def sidecar_path(audio_path: str | os.PathLike, kind: str = "caption") -> Path:
    """The one sidecar rule: NAME.caption.txt (caption) or NAME.txt (transcript) beside NAME.<ext>; read by
    the data index and `saga-sr upsample`, written by `saga-sr caption`."""
    p = Path(audio_path)
    return p.with_name(p.stem + (".caption.txt" if kind == "caption" else ".txt"))


def sidecar_text(path: str | os.PathLike) -> str:
    """The stripped text of a sidecar file (undecodable bytes replaced); absent -> ''."""
    side = Path(path)
    return side.read_text(encoding="utf-8", errors="replace").strip() if side.is_file() else ""


def read_sidecar(audio_path: str | os.PathLike, kind: str) -> str:
    """The stripped text of `sidecar_path(audio_path, kind)`; absent -> ''."""
    return sidecar_text(sidecar_path(audio_path, kind))


def check_audio(path: Path, block_seconds: float = 10.0) -> tuple[sf._SoundFileInfo | None, str]:
    """(info, '') for a usable file, else (None, reason). Streams the file to find NaN/inf and silence."""
    try:
        info = sf.info(sf_name(path))
    except Exception as exc:  # noqa: BLE001 -- any decoder failure is a reason to skip, not to crash
        return None, f"unreadable: {_short(exc)}"
    if info.frames <= 0 or info.samplerate <= 0:
        return None, "empty: no audio frames"
    if info.frames / info.samplerate < MIN_SECONDS:
        return None, f"too short: {info.frames / info.samplerate:.3f} s < {MIN_SECONDS} s"
    peak = 0.0
    try:
        block = max(1024, int(block_seconds * info.samplerate))
        for chunk in sf.blocks(sf_name(path), blocksize=block, dtype="float32", always_2d=True):
            if not np.isfinite(chunk).all():
                return None, "non-finite samples (NaN or inf)"
            if chunk.size:
                peak = max(peak, float(np.abs(chunk).max()))
    except Exception as exc:  # noqa: BLE001
        return None, f"unreadable: {_short(exc)}"
    if peak < SILENCE_PEAK:
        return None, f"silent: peak {peak:.2e} < {SILENCE_PEAK:.0e}"
    return info, ""


def _bandwidth(row: dict, path: Path) -> float:
    """The manifest's `bandwidth_hz` (Hz; 0 or absent: unknown); a malformed value is an error naming the file."""
    raw = str(row.get("bandwidth_hz", "") or "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise DataError(f"{path}: manifest bandwidth_hz {raw!r} is not a number") from None
    if not (value >= 0 and np.isfinite(value)):
        raise DataError(f"{path}: manifest bandwidth_hz {raw!r} must be a non-negative number of Hz")
    return value


def _short(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def read_manifest(path: Path) -> list[dict]:
    """Rows of a CSV (header with `path`) or JSONL/JSON manifest; relative paths are relative to the manifest."""
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if not reader.fieldnames or "path" not in reader.fieldnames:
                    raise DataError(
                        f"{path}: CSV manifest needs a header with a 'path' column (found {reader.fieldnames})"
                    )
                rows = [dict(r) for r in reader]
        elif suffix in (".jsonl", ".json"):
            text = path.read_text(encoding="utf-8")
            if suffix == ".json" and text.lstrip().startswith("["):
                rows = json.loads(text)
            else:
                rows = []
                for number, line in enumerate(text.splitlines(), 1):
                    if not line.strip():
                        continue
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(
                            f"{path}:{number}: malformed JSON line: {exc.msg} at column {exc.colno}"
                        ) from None
        else:
            raise DataError(f"{path}: manifest must be .csv, .jsonl or .json")
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed manifest: {exc.msg} at column {exc.colno}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: malformed manifest: {exc}") from exc
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("path"):
            raise DataError(f"{path}: row {i + 1} has no 'path'")
        p = Path(str(row["path"])).expanduser()
        row = {k: ("" if v is None else str(v)) for k, v in row.items()}
        row["path"] = p if p.is_absolute() else path.parent / p
        out.append(row)
    return out


def list_candidates(source: str | Path | list) -> list[dict]:
    """Normalise folders / files / manifests into rows {path, caption?, transcript?, domain?}."""
    sources = source if isinstance(source, (list, tuple)) else [source]
    rows: list[dict] = []
    for src in sources:
        p = Path(src).expanduser()
        if p.is_dir():
            rows.extend({"path": f} for f in find_audio_files([p], recursive=True))
        elif p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES:
            rows.extend(read_manifest(p))
        elif p.is_file():
            rows.append({"path": p})
        else:
            raise DataError(f"{p}: no such folder or manifest")
    return rows


def entry_from_row(row: dict, frames: int, sample_rate: int, channels: int) -> AudioEntry:
    """An AudioEntry for a checked candidate row (manifest text wins over sidecars)."""
    path = Path(row["path"])
    return AudioEntry(
        path=path,
        frames=int(frames),
        sample_rate=int(sample_rate),
        channels=int(channels),
        caption=row.get("caption") or read_sidecar(path, "caption"),
        transcript=row.get("transcript") or read_sidecar(path, "transcript"),
        domain=row.get("domain", ""),
        bandwidth_hz=_bandwidth(row, path),
    )


def checked_entry(row: dict, cache: dict | None = None) -> tuple[AudioEntry | None, str]:
    """(entry, '') for a usable candidate row, else (None, reason) -- the reasons of the skipped-files report."""
    path = Path(row["path"])
    info, reason = _checked(path, {} if cache is None else cache)
    if info is None:
        if reason.startswith("unreadable") and not path.exists():
            reason = "missing: listed but not found"
        return None, reason
    return entry_from_row(row, *info), ""


def _checked(path: Path, cache: dict) -> tuple[tuple[int, int, int] | None, str]:
    """((frames, sr, channels), '') or (None, reason), from `cache` when the file's size and mtime match."""
    try:
        st = path.stat()
    except OSError as exc:
        return None, f"unreadable: {_short(exc)}"
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if key in cache:
        hit = cache[key]
        return (tuple(hit["info"]) if hit["info"] else None), hit["reason"]
    info, reason = check_audio(path)
    result = (int(info.frames), int(info.samplerate), int(info.channels)) if info is not None else None
    cache[key] = {"info": list(result) if result else None, "reason": reason}
    return result, reason


def build_index(
    source: str | Path | list, *, cache_path: str | Path | None = None, update_cache: bool = True, workers: int = 4
) -> IndexResult:
    """Check every candidate file (in `workers` threads; results cached in `cache_path` by size and mtime,
    which is rewritten unless `update_cache` is False); usable ones become AudioEntry (manifest text wins over
    sidecars)."""
    cache: dict = {}
    if cache_path is not None and Path(cache_path).is_file():
        try:
            cache = json.loads(Path(cache_path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            cache = {}
    rows = list_candidates(source)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        checks = list(pool.map(lambda r: checked_entry(r, cache), rows))
    result = IndexResult(cache=cache)
    for row, (entry, reason) in zip(rows, checks):
        if entry is None:
            result.skipped.append((Path(row["path"]), reason))
        else:
            result.entries.append(entry)
    if cache_path is not None and update_cache:
        write_index_cache(cache_path, cache)
    if result.skipped and result.entries:  # with none usable, the caller's error names the skipped files
        log.warning(
            "skipped %d of %d audio files (see the skipped-files report)",
            len(result.skipped),
            len(result.skipped) + len(result.entries),
        )
    return result


def write_index_cache(path: str | Path, cache: dict) -> None:
    """Write the check results `build_index` read and added to (atomically: readers never see half a file)."""
    tmp = Path(path).with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(cache), encoding="utf-8")
    os.replace(tmp, path)


def first_reasons(skipped: list[tuple[Path, str]], count: int = 3) -> str:
    """': a: why; b: why; and N more' for the first skipped files, for a message with no report file to name."""
    if not skipped:
        return ""
    more = f"; and {len(skipped) - count} more" if len(skipped) > count else ""
    return ": " + "; ".join(f"{p}: {r}" for p, r in skipped[:count]) + more


def write_skipped_report(path: Path, skipped: list[tuple[Path, str]], *, title: str = "") -> None:
    """Append 'PATH<TAB>reason' lines (one header line per data set) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"# {title or 'data set'}: {len(skipped)} skipped\n")
        for p, reason in skipped:
            fh.write(f"{p}\t{reason}\n")
