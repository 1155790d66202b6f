"""Data of saga-sr-mini: fetch the allowed Debian packages, decode, measure bandwidth, split, write manifests.

Sources (nothing else may be trained or tuned on): the Freesound CC0 clips of the project
(`--freesound DIR`) and the Debian packages in `PACKAGES`, fetched with `apt-get download` and unpacked with
`dpkg -x` (nothing installed). Every file is decoded, mixed to mono, resampled to 44.1 kHz and written as
FLAC under OUT/audio/<split>/<domain>/; long files are cut into `CHUNK_SECONDS` chunks. Each file's real
bandwidth (where its long-term spectrum ends; many files are Vorbis low-passed at 19.5-21 kHz, some are
22.05 kHz files resampled to 44.1 kHz) is measured before anything else and written to the manifests
(`bandwidth_hz`): training uses it as the target roll-off. Files stored below 32 kHz are real low-rate
recordings: they go to OUT/audio/lowrate/ (never trained on). The split is by source file and, for speech,
by language, so held-out clips are unseen speakers/pieces. Manifests: OUT/{train,val,test}.csv with path,
caption (the domain prompt), domain, bandwidth_hz; train rows are repeated so each domain gets about a third
of the draws, and a quarter of them have an empty prompt. OUT/prepare_report.json counts every file kept and
skipped with the reason.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 44100
CHUNK_SECONDS = 10.0
MIN_SECONDS = 0.3
PACKAGES = (
    "klettres-data",
    "ktuberling-data",
    "wesnoth-1.16-music",
    "sonic-pi-samples",
    "avldrums.lv2-soundfont",
    "alsa-utils",
)
AUDIO_SUFFIXES = (".ogg", ".wav", ".flac", ".opus")
# speech languages held out (val / test) -- klettres and ktuberling folder names
VAL_LANGS = ("nl", "lt")
TEST_LANGS = ("cs", "fr", "uk", "ca", "sl")
PROMPTS = {"speech": "speech", "music": "music", "effects": "sound effects"}
EMPTY_PROMPT_FRACTION = 0.25  # training rows with an empty prompt (what `saga-sr upsample` sends by default)
# sonic-pi / freesound sample name prefixes that are music (the rest are drums, percussion, noises = effects)
MUSIC_PREFIXES = ("ambi_", "bass_", "guit_", "loop_")


@dataclass(frozen=True)
class Source:
    path: Path
    domain: str
    group: str  # split unit: files of one group always land in the same split


def fetch(debs_dir: Path, root: Path) -> Path:
    """apt-get download + dpkg -x every package into `root` (skipped when already unpacked)."""
    marker = root / ".unpacked"
    if marker.is_file():
        return root
    debs_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs_dir, check=True)
    root.mkdir(parents=True, exist_ok=True)
    for deb in sorted(debs_dir.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    marker.write_text("\n".join(sorted(p.name for p in debs_dir.glob("*.deb"))) + "\n")
    return root


def split_of(group: str, val_frac: float = 0.08, test_frac: float = 0.12) -> str:
    """Deterministic split of a group name (hash, not Python's salted hash)."""
    lang = group.split(":")[1] if group.startswith(("klettres:", "ktuberling:")) else ""
    if lang:
        return "val" if lang in VAL_LANGS else "test" if lang in TEST_LANGS else "train"
    u = int(hashlib.sha1(group.encode()).hexdigest()[:8], 16) / 2**32
    return "val" if u < val_frac else "test" if u < val_frac + test_frac else "train"


def discover(root: Path, freesound: Path | None) -> list[Source]:
    """Every candidate audio file with its domain and split group."""
    out: list[Source] = []
    share = root / "usr" / "share"
    for p in sorted((share / "klettres").rglob("*")):
        if p.suffix.lower() in AUDIO_SUFFIXES:
            out.append(Source(p, "speech", f"klettres:{p.relative_to(share / 'klettres').parts[0]}:{p.stem}"))
    for p in sorted((share / "ktuberling" / "sounds").rglob("*")):
        if p.suffix.lower() in AUDIO_SUFFIXES:
            out.append(Source(p, "speech", f"ktuberling:{p.parent.name}:{p.stem}"))
    for p in sorted((share / "sounds" / "alsa").glob("*.wav")):
        out.append(Source(p, "speech", f"alsa:{p.stem}"))
    for p in sorted((share / "games" / "wesnoth").rglob("*.ogg")):
        out.append(Source(p, "music", f"wesnoth:{p.stem}"))
    seen: set[str] = set()
    sample_dirs = [d for d in (freesound, share / "sonic-pi" / "samples") if d is not None and d.is_dir()]
    for d in sample_dirs:
        for p in sorted(d.glob("*.flac")):
            if p.stem in seen:
                continue  # freesound_cc0 is a copy of sonic-pi-samples' clips
            seen.add(p.stem)
            domain = "music" if p.stem.startswith(MUSIC_PREFIXES) else "effects"
            out.append(Source(p, domain, f"samples:{p.stem}"))
    for p in sorted((share / "sounds" / "sf2").glob("*.sf2")):
        out.append(Source(p, "effects", f"sf2:{p.stem}"))
    return out


def measure_bandwidth(x: np.ndarray, sr: int, n_fft: int = 4096) -> float:
    """Where the long-term spectrum of mono `x` ends, in Hz (its content edge): the highest frequency whose
    200 Hz-smoothed level is 20 dB above the spectrum's floor (its quietest band above 500 Hz) and within
    100 dB of its peak; Nyquist when the spectrum never drops 20 dB below its peak (white-noise-like). A
    Vorbis file low-passed at 19.6 kHz gives about 19.6 kHz; a 22.05 kHz recording resampled to 44.1 kHz,
    11 kHz; a kick drum whose content fades into the floor, where it fades."""
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    hop = n_fft // 2
    n = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    psd = (np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)) ** 2).mean(axis=0)
    width = max(1, int(round(200 * n_fft / sr)))
    db = 10 * np.log10(np.convolve(psd, np.ones(width) / width, mode="same") + 1e-30)
    lo = int(round(500 * n_fft / sr))  # ignore DC / rumble
    floor, peak = db[lo:].min(), db[lo:].max()
    if peak - floor < 20.0:
        return sr / 2
    above = np.nonzero(db[lo:] > max(floor + 20.0, peak - 100.0))[0]
    return float((lo + above[-1]) * sr / n_fft)


def sf2_samples(path: Path) -> list[tuple[str, np.ndarray, int]]:
    """(name, int16 mono PCM as float, rate) of every sample in a SoundFont 2 file (RIFF sdta/smpl + pdta/shdr)."""
    import struct

    data = path.read_bytes()
    smpl, shdr = None, None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"LIST":
            sub = pos + 12
            end = pos + 8 + size
            while sub + 8 <= end:
                sid, ssize = data[sub : sub + 4], struct.unpack("<I", data[sub + 4 : sub + 8])[0]
                if sid == b"smpl":
                    smpl = np.frombuffer(data[sub + 8 : sub + 8 + ssize], dtype="<i2")
                elif sid == b"shdr":
                    shdr = data[sub + 8 : sub + 8 + ssize]
                sub += 8 + ssize + (ssize & 1)
        pos += 8 + size + (size & 1)
    if smpl is None or shdr is None:
        raise ValueError(f"{path}: no smpl/shdr chunk")
    out = []
    for i in range(len(shdr) // 46 - 1):  # last record is the terminal 'EOS'
        rec = shdr[i * 46 : (i + 1) * 46]
        name = rec[:20].split(b"\0")[0].decode("latin-1").strip()
        start, end, _ls, _le, rate = struct.unpack("<5I", rec[20:40])
        sample_type = struct.unpack("<H", rec[44:46])[0]
        if sample_type & 0x8000 or end <= start or rate <= 0:
            continue  # ROM samples / empty
        out.append((name, smpl[start:end].astype(np.float32) / 32768.0, int(rate)))
    return out


def _decode(src: Source) -> list[tuple[str, np.ndarray, int]]:
    """(name, mono float32, rate) items of one source file (SF2: one per contained sample)."""
    if src.path.suffix.lower() == ".sf2":
        return sf2_samples(src.path)
    import soundfile as sf

    x, sr = sf.read(str(src.path), dtype="float32", always_2d=True)
    return [(src.path.stem, x.mean(axis=1), int(sr))]


def instrument_of(sample_name: str) -> str:
    """An SF2 sample's instrument: its name without the velocity-layer suffix ("42-HatCl-3" -> "42-HatCl"), so
    the layers of one instrument (near-copies) never straddle splits."""
    import re

    return re.sub(r"[-_ ]*\d+$", "", sample_name) or sample_name


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:80]


def prepare(
    root: Path, out: Path, *, freesound: Path | None, exclude_names: set[str] = frozenset(), max_sf2_per_file: int = 200
) -> dict:
    """Decode, measure, split and write every source (see the module docstring); returns the report."""
    import soundfile as sf
    import soxr

    sources = discover(root, freesound)
    rows: dict[str, list[dict]] = {"train": [], "val": [], "test": [], "lowrate": []}
    skipped: list[dict] = []
    for src in sources:
        if src.path.stem in exclude_names:
            skipped.append({"path": str(src.path), "reason": "held out for the demo (saga_sr/assets/demo/test)"})
            continue
        try:
            items = _decode(src)
        except Exception as exc:  # noqa: BLE001 -- a broken file is reported, not fatal
            skipped.append({"path": str(src.path), "reason": f"unreadable: {str(exc)[:120]}"})
            continue
        for k, (name, x, sr) in enumerate(items[:max_sf2_per_file]):
            split = split_of(src.group + (f":{instrument_of(name)}" if len(items) > 1 else ""))  # SF2: per instrument
            if sr > 96000 or sr < 4000:
                skipped.append({"path": f"{src.path}:{name}", "reason": f"sample rate {sr} Hz out of range"})
                continue
            if len(x) < MIN_SECONDS * sr or np.abs(x).max() < 1e-4:
                skipped.append({"path": f"{src.path}:{name}", "reason": "shorter than 0.3 s or silent"})
                continue
            kind = "lowrate" if sr < 32000 else split
            if sr != SR and kind != "lowrate":
                x = soxr.resample(x, sr, SR, quality="VHQ").astype(np.float32)
            rate = sr if kind == "lowrate" else SR
            bw = measure_bandwidth(x, rate)
            peak = float(np.abs(x).max())
            if peak > 0.99:
                x = x * (0.99 / peak)
            step = int(CHUNK_SECONDS * rate)
            base = _safe(
                f"{src.group.split(':')[0]}_{src.path.parent.name}_{name}" + (f"_{k}" if len(items) > 1 else "")
            )
            for c, start in enumerate(range(0, len(x), step)):
                chunk = x[start : start + step]
                if len(chunk) < MIN_SECONDS * rate:
                    continue
                dest = out / "audio" / kind / src.domain / f"{base}_{c:03d}.flac"
                dest.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(dest), chunk, rate, subtype="PCM_24")
                rows[kind].append(
                    {
                        "path": str(dest.relative_to(out)),
                        "caption": PROMPTS[src.domain],
                        "domain": src.domain,
                        "bandwidth_hz": f"{bw:.0f}",
                        "source": str(src.path),
                    }
                )
    for split in ("train", "val", "test"):
        split_rows = rows[split]
        if split == "train":
            split_rows = blank_prompts(_balanced(split_rows))
        _write_csv(out / f"{split}.csv", split_rows)
    report = {
        "kept": {k: len(v) for k, v in rows.items()},
        "kept_per_domain": {k: {d: sum(r["domain"] == d for r in v) for d in PROMPTS} for k, v in rows.items()},
        "skipped": len(skipped),
        "skipped_files": skipped,
    }
    (out / "prepare_report.json").write_text(json.dumps(report, indent=1))
    return report


def blank_prompts(rows: list[dict], fraction: float = EMPTY_PROMPT_FRACTION) -> list[dict]:
    """The same rows with the caption emptied on a deterministic `fraction` of them: users mostly upsample with
    no prompt, and an empty prompt (T5 of "") is not the dropped conditioning the model sees in CFG dropout."""
    out = []
    for i, r in enumerate(rows):
        u = int(hashlib.sha1(f"{r['path']}|{i}".encode()).hexdigest()[:8], 16) / 2**32
        out.append({**r, "caption": ""} if u < fraction else dict(r))
    return out


def _balanced(rows: list[dict]) -> list[dict]:
    """Repeat each domain's rows so that every domain is drawn about as often as the largest one."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["domain"], []).append(r)
    biggest = max(len(v) for v in by.values())
    out = []
    for v in by.values():
        reps = max(1, int(round(biggest / len(v))))
        out.extend(v * reps)
    return out


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "caption", "domain", "bandwidth_hz", "source"])
        w.writeheader()
        w.writerows(rows)
    shutil.move(tmp, path)


__all__ = ["PACKAGES", "blank_prompts", "discover", "fetch", "measure_bandwidth", "prepare", "sf2_samples"]
