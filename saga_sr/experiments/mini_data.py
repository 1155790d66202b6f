"""Data of saga-sr-mini: fetch the allowed Debian packages, decode, measure bandwidth, split, write manifests.

Sources (nothing else may be trained or tuned on): the Freesound CC0 clips of the project (`--freesound DIR`) and
the Debian packages of a named set in `PACKAGE_SETS`, fetched with `apt-get download` and unpacked with `dpkg -x`
(nothing installed). "v1" (the default; the shipped model's recipe): klettres-data, ktuberling-data, alsa-utils
(speech), wesnoth-1.16-music, sonic-pi-samples, avldrums.lv2-soundfont (SF2 drum kits, one group per instrument).
"v2" adds fluid-soundfont-gm (SF2) and musescore-general-soundfont-small (SF3: Vorbis samples) read through their GM
presets (drum kits and GM programs 112-127 are effects, the rest music; grouped by GM program / drum key so the two
fonts' copies of one instrument share a split; at most 200 samples per domain and font, spread over the groups),
lmms-common's samples (split by file) and gcompris-qt-data's sounds, read out of its Qt .rcc resources. A set never
sees another set's files, even unpacked in the same root. Every file is decoded, mixed to mono, resampled to 44.1
kHz and written as FLAC under OUT/audio/<split>/<domain>/; long files are cut into `CHUNK_SECONDS` chunks. Each
file's real bandwidth (where its long-term spectrum ends; many files are Vorbis low-passed at 19.5-21 kHz, some are
22.05 kHz files resampled to 44.1 kHz) is measured before anything else and written to the manifests
(`bandwidth_hz`): training uses it as the target roll-off. Files stored below 32 kHz are real low-rate recordings:
they go to OUT/audio/lowrate/ (never trained on). The split is by source file and, for speech, by language, so
held-out clips are unseen speakers/pieces. Manifests: OUT/{train,val,test}.csv with path, caption (the domain
prompt), domain, bandwidth_hz; train rows are repeated so each domain gets about a third of the draws, and a quarter
of them have an empty prompt. OUT/prepare_report.json counts every file kept and skipped with the reason.
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
PACKAGE_SETS = {
    # v1: the shipped saga-sr-mini's recipe; v2 adds lossless GM instruments and drum kits, lmms' samples and
    # gcompris' sounds (issue 20: more distinct effects and bright material)
    "v1": (
        "klettres-data",
        "ktuberling-data",
        "wesnoth-1.16-music",
        "sonic-pi-samples",
        "avldrums.lv2-soundfont",
        "alsa-utils",
    ),
}
PACKAGE_SETS["v2"] = PACKAGE_SETS["v1"] + (
    "fluid-soundfont-gm",
    "musescore-general-soundfont-small",
    "lmms-common",
    "gcompris-qt-data",
)
DEFAULT_PACKAGE_SET = "v1"
PACKAGES = PACKAGE_SETS[DEFAULT_PACKAGE_SET]
# GM soundfonts of v2, read by their preset structure (avldrums' kits keep the v1 reading: one group per kit sample)
GM_SOUNDFONTS = ("sf2/FluidR3_GM.sf2", "sf3/MuseScore_General_Lite.sf3")
GM_EFFECT_PROGRAMS = range(112, 128)  # GM's "percussive" and "sound effects" families (0-based programs)
GM_SAMPLES_PER_DOMAIN = 200  # per GM soundfont and domain: FluidR3 has 933 usable samples (794 music), many near-copies
LMMS_MUSIC_DIRS = ("basses", "bassloops", "instruments", "shapes")  # the other sample folders are drums / effects
GCOMPRIS_MUSIC_RCC = ("explore_world_music", "instruments", "melody")  # the other resources' sounds are effects
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
    member: str = ""  # a sound inside a Qt resource file (gcompris)
    samples: tuple[int, ...] = ()  # sample indices of a GM soundfont, all in `group`


def _package_set(name: str) -> tuple[str, ...]:
    if name not in PACKAGE_SETS:
        raise ValueError(f"package set {name!r}: expected one of {sorted(PACKAGE_SETS)}")
    return PACKAGE_SETS[name]


def fetch(debs_dir: Path, root: Path, package_set: str = DEFAULT_PACKAGE_SET) -> Path:
    """apt-get download + dpkg -x every package of the set into `root` (skipped when all are already unpacked)."""
    packages = _package_set(package_set)
    marker = root / ".unpacked"
    if marker.is_file():
        unpacked = marker.read_text().split()
        if all(any(d.startswith(f"{pkg}_") for d in unpacked) for pkg in packages):
            return root
    debs_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *packages], cwd=debs_dir, check=True)
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


def discover(root: Path, freesound: Path | None, package_set: str = DEFAULT_PACKAGE_SET) -> list[Source]:
    """Every candidate audio file of the package set with its domain and split group (files of packages outside
    the set are ignored even when unpacked in `root`)."""
    v2 = "lmms-common" in _package_set(package_set)
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
    gm = {share / "sounds" / f for f in GM_SOUNDFONTS}
    for p in sorted((share / "sounds" / "sf2").glob("*.sf2")):
        if p not in gm:
            out.append(Source(p, "effects", f"sf2:{p.stem}"))
    if v2:
        for p in sorted(f for f in gm if f.is_file()):
            out.extend(gm_sources(p))
        for p in sorted((share / "lmms" / "samples").rglob("*")):
            if p.suffix.lower() in AUDIO_SUFFIXES:  # the .ds files are drumsynth presets, not audio
                sub = p.relative_to(share / "lmms" / "samples").parts[0]
                domain = "music" if sub in LMMS_MUSIC_DIRS else "effects"
                out.append(Source(p, domain, f"lmms:{sub}/{p.stem}"))
        seen_sounds: set[str] = set()
        for p in sorted((share / "gcompris-qt" / "rcc").glob("*.rcc")):
            for member, blob in sorted(rcc_files(p.read_bytes()).items()):
                digest = hashlib.sha1(blob or b"").hexdigest()
                if Path(member).suffix.lower() not in AUDIO_SUFFIXES or digest in seen_sounds:
                    continue  # one click.wav is copied into several activities: keep one, in one split
                seen_sounds.add(digest)
                domain = "music" if p.stem in GCOMPRIS_MUSIC_RCC else "effects"
                out.append(Source(p, domain, f"gcompris:{p.stem}/{Path(member).stem}", member=member))
    return out


def rcc_files(data: bytes) -> dict[str, bytes | None]:
    """{path: bytes} of a Qt resource (.rcc) file: its tree of 14- (v1) or 22-byte (v2+) nodes; zlib entries
    are inflated, zstd ones (none in gcompris-qt-data) are None."""
    import struct
    import zlib

    if data[:4] != b"qres":
        raise ValueError("not a Qt resource file (no 'qres' magic)")
    version, tree, blobs, names = struct.unpack(">IIII", data[4:20])
    node = 22 if version >= 2 else 14
    out: dict[str, bytes | None] = {}

    def name(off: int) -> str:
        n = struct.unpack(">H", data[names + off : names + off + 2])[0]
        return data[names + off + 6 : names + off + 6 + 2 * n].decode("utf-16-be")

    def walk(i: int, prefix: str) -> None:
        pos = tree + i * node
        name_off, flags = struct.unpack(">IH", data[pos : pos + 6])
        here = prefix + name(name_off) if i else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", data[pos + 6 : pos + 14])
            for c in range(count):
                walk(first + c, here + "/" if i else "")
            return
        off = blobs + struct.unpack(">I", data[pos + 10 : pos + 14])[0]
        blob = data[off + 4 : off + 4 + struct.unpack(">I", data[off : off + 4])[0]]
        out[here] = zlib.decompress(blob[4:]) if flags & 1 else None if flags & 4 else blob

    walk(0, "")
    return out


def _riff_chunks(data: bytes) -> dict[bytes, bytes]:
    """The sub-chunks of a SoundFont's LIST chunks (ifil, smpl, phdr, pbag, pgen, inst, ibag, igen, shdr, ...)."""
    import struct

    chunks: dict[bytes, bytes] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"LIST":
            sub, end = pos + 12, pos + 8 + size
            while sub + 8 <= end:
                sid, ssize = data[sub : sub + 4], struct.unpack("<I", data[sub + 4 : sub + 8])[0]
                chunks[sid] = data[sub + 8 : sub + 8 + ssize]
                sub = _after(data, sub, ssize)
        pos = _after(data, pos, size)
    return chunks


def _after(data: bytes, pos: int, size: int) -> int:
    """The next chunk's offset: RIFF pads odd sizes with a zero byte, which MuseScore's SF3 writer omits (a chunk
    id never starts with a zero byte)."""
    end = pos + 8 + size
    return end + 1 if size & 1 and data[end : end + 1] == b"\0" else end


def gm_sample_groups(chunks: dict[bytes, bytes]) -> dict[int, tuple[str, str]]:
    """{sample index: (domain, group)} of a General MIDI soundfont, from its presets: samples of a bank-128
    preset (a drum kit) are effects grouped by the key they sound on ("gm:drumkey36"), the others music grouped
    by GM program ("gm:program0"), except programs 112-127 (percussive, sound effects) which are effects. The
    groups are the GM instrument, not the file, so FluidR3's and MuseScore's piano land in the same split.
    Drum kits come first: a sample a kit shares with a melodic preset is an effect. Right channels of stereo
    pairs (near-copies of the left) and ROM samples are left out."""
    import struct

    def recs(cid: bytes, size: int) -> list[bytes]:
        raw = chunks[cid]
        return [raw[i : i + size] for i in range(0, len(raw) - size + 1, size)]

    phdr, pbag, pgen = recs(b"phdr", 38), recs(b"pbag", 4), recs(b"pgen", 4)
    inst, ibag, igen, shdr = recs(b"inst", 22), recs(b"ibag", 4), recs(b"igen", 4), recs(b"shdr", 46)
    gen = [struct.unpack("<HH", g) for g in pgen]
    igens = [struct.unpack("<HH", g) for g in igen]

    def zone_gens(bags: list[bytes], gens: list, first: int, last: int):
        for b in range(first, last):
            g0 = struct.unpack("<H", bags[b][:2])[0]
            g1 = struct.unpack("<H", bags[b + 1][:2])[0] if b + 1 < len(bags) else len(gens)
            yield gens[g0:g1]

    def inst_samples(i: int) -> list[tuple[int, int]]:
        """(sample index, lowest key of its zone) of instrument i."""
        first, last = struct.unpack("<H", inst[i][20:22])[0], struct.unpack("<H", inst[i + 1][20:22])[0]
        out = []
        for zone in zone_gens(ibag, igens, first, last):
            key = next((amount & 0xFF for op, amount in zone if op == 43), None)  # keyRange: lo byte
            for op, amount in zone:
                if op == 53:  # sampleID
                    out.append((amount, key if key is not None else shdr[amount][40]))
        return out

    presets = []
    for k in range(len(phdr) - 1):  # the last record is the terminal 'EOP'
        program, bank, bag = struct.unpack("<HHH", phdr[k][20:26])
        nxt = struct.unpack("<H", phdr[k + 1][24:26])[0]
        insts = [amount for zone in zone_gens(pbag, gen, bag, nxt) for op, amount in zone if op == 41]
        presets.append((bank != 128, bank, program, insts))
    groups: dict[int, tuple[str, str]] = {}
    for melodic, _bank, program, insts in sorted(presets):
        for i in insts:
            for s, key in inst_samples(i):
                stype = struct.unpack("<H", shdr[s][44:46])[0]
                if s in groups or stype & 0x8000 or stype & 2:
                    continue
                if not melodic:
                    groups[s] = ("effects", f"gm:drumkey{key}")
                else:
                    groups[s] = ("effects" if program in GM_EFFECT_PROGRAMS else "music", f"gm:program{program}")
    return groups


def spread(groups: dict[str, list[int]], budget: int) -> dict[str, list[int]]:
    """At most `budget` items over the groups, round robin (each group gets a share before any gets more), each
    group's share spread evenly over its sorted items (low, middle and high notes rather than the lowest)."""
    quota = dict.fromkeys(groups, 0)
    left = budget
    while left > 0 and any(quota[g] < len(v) for g, v in groups.items()):
        for g, v in groups.items():
            if left > 0 and quota[g] < len(v):
                quota[g] += 1
                left -= 1
    out = {}
    for g, v in groups.items():
        if quota[g]:
            items = sorted(v)
            out[g] = sorted({items[int(round(j))] for j in np.linspace(0, len(items) - 1, quota[g])})
    return out


def gm_sources(path: Path, per_domain: int = GM_SAMPLES_PER_DOMAIN) -> list[Source]:
    """One Source per GM group of a v2 soundfont, at most `per_domain` samples per domain spread over the
    groups (see `spread`) rather than the file's first ones (avldrums' `max_sf2_per_file`)."""
    groups = gm_sample_groups(_riff_chunks(path.read_bytes()))
    out = []
    for domain in PROMPTS:
        by: dict[str, list[int]] = {}
        for s, (d, g) in sorted(groups.items()):
            if d == domain:
                by.setdefault(g, []).append(s)
        for g, picked in spread(by, per_domain).items():
            out.append(Source(path, domain, g, samples=tuple(picked)))
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
    chunks = _riff_chunks(path.read_bytes())
    if b"smpl" not in chunks or b"shdr" not in chunks:
        raise ValueError(f"{path}: no smpl/shdr chunk")
    smpl = np.frombuffer(chunks[b"smpl"][: len(chunks[b"smpl"]) // 2 * 2], dtype="<i2")
    shdr = chunks[b"shdr"]
    out = []
    for i in range(len(shdr) // 46 - 1):  # last record is the terminal 'EOS'
        name, start, end, rate, sample_type = _sample_header(shdr, i)
        if sample_type & 0x8000 or end <= start or rate <= 0:
            continue  # ROM samples / empty
        out.append((name, smpl[start:end].astype(np.float32) / 32768.0, int(rate)))
    return out


def _sample_header(shdr: bytes, i: int) -> tuple[str, int, int, int, int]:
    """(name, start, end, rate, sample type) of record i of a soundfont's shdr chunk (46 bytes a record)."""
    import struct

    rec = shdr[i * 46 : (i + 1) * 46]
    start, end, _loop_start, _loop_end, rate = struct.unpack("<5I", rec[20:40])
    return rec[:20].split(b"\0")[0].decode("latin-1").strip(), start, end, rate, struct.unpack("<H", rec[44:46])[0]


def soundfont_samples(path: Path, indices: tuple[int, ...]) -> list[tuple[str, np.ndarray, int]]:
    """(name, mono float32, rate) of the chosen samples of an SF2 (16-bit PCM) or SF3 file. In SF3 (MuseScore's
    SF2 variant) every sample is an Ogg Vorbis stream and the header's start/end are byte offsets into smpl."""
    import io
    import struct

    import soundfile as sf

    chunks = _parsed(path, _riff_chunks)
    smpl, shdr = chunks[b"smpl"], chunks[b"shdr"]
    sf3 = struct.unpack("<H", chunks[b"ifil"][:2])[0] >= 3 if b"ifil" in chunks else path.suffix.lower() == ".sf3"
    out = []
    for i in indices:
        name, start, end, rate, _type = _sample_header(shdr, i)
        if sf3:
            x, rate = sf.read(io.BytesIO(smpl[start:end]), dtype="float32", always_2d=True)
            x = x.mean(axis=1)
        else:
            x = np.frombuffer(smpl[2 * start : 2 * end], dtype="<i2").astype(np.float32) / 32768.0
        out.append((f"{path.stem}_{i}_{name}", x, int(rate)))
    return out


_PARSED: dict[tuple, dict] = {}


def _parsed(path: Path, parse) -> dict:
    """`parse(bytes of path)` of the last file parsed: prepare decodes a soundfont one GM group at a time, and a
    Qt resource file one member at a time, so each big file is read and parsed once, not once per item."""
    key = (path, parse)
    if key not in _PARSED:
        _PARSED.clear()
        _PARSED[key] = parse(path.read_bytes())
    return _PARSED[key]


def _decode(src: Source) -> list[tuple[str, np.ndarray, int]]:
    """(name, mono float32, rate) items of one source (SF2: one per contained sample)."""
    if src.samples:
        return soundfont_samples(src.path, src.samples)
    if src.path.suffix.lower() == ".sf2":
        return sf2_samples(src.path)
    import io

    import soundfile as sf

    if src.member:
        blob = _parsed(src.path, rcc_files)[src.member]
        x, sr = sf.read(io.BytesIO(blob), dtype="float32", always_2d=True)
        return [(f"{src.path.stem}_{Path(src.member).stem}", x.mean(axis=1), int(sr))]
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
    root: Path,
    out: Path,
    *,
    freesound: Path | None,
    exclude_names: set[str] = frozenset(),
    max_sf2_per_file: int = 200,
    package_set: str = DEFAULT_PACKAGE_SET,
) -> dict:
    """Decode, measure, split and write every source (see the module docstring); returns the report."""
    import soundfile as sf
    import soxr

    sources = discover(root, freesound, package_set)
    rows: dict[str, list[dict]] = {"train": [], "val": [], "test": [], "lowrate": []}
    skipped: list[dict] = []
    bases: set[str] = set()  # file names already written: a later source with the same name gets a suffix
    for src in sources:
        if src.path.stem in exclude_names or (src.member and Path(src.member).stem in exclude_names):
            skipped.append({"path": str(src.path), "reason": "held out for the demo (saga_sr/assets/demo/test)"})
            continue
        try:
            items = _decode(src)
        except Exception as exc:  # noqa: BLE001 -- a broken file is reported, not fatal
            skipped.append({"path": str(src.path), "reason": f"unreadable: {str(exc)[:120]}"})
            continue
        for k, (name, x, sr) in enumerate(items[:max_sf2_per_file]):
            # avldrums' SF2 kits: per instrument; GM soundfonts: their Source is already one group
            group = src.group + (f":{instrument_of(name)}" if len(items) > 1 and not src.samples else "")
            split = split_of(group)
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
            base = unique_name(base, bases)
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
        "package_set": package_set,
        "kept": {k: len(v) for k, v in rows.items()},
        "kept_per_domain": {k: {d: sum(r["domain"] == d for r in v) for d in PROMPTS} for k, v in rows.items()},
        "skipped": len(skipped),
        "skipped_files": skipped,
    }
    (out / "prepare_report.json").write_text(json.dumps(report, indent=1))
    return report


def unique_name(base: str, used: set[str]) -> str:
    """`base`, or `base`_2, _3, ... when a source written before had the same name (klettres' letters repeat in
    every language folder, avldrums' two kits share sample names): no file overwrites another. Adds it to `used`."""
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    used.add(name)
    return name


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


__all__ = [
    "PACKAGES",
    "PACKAGE_SETS",
    "blank_prompts",
    "discover",
    "fetch",
    "measure_bandwidth",
    "prepare",
    "sf2_samples",
]
