"""Build the held-out clips of the ViSQOL diagnosis (docs/model_card_mini/visqol_diagnosis.md) from the fetched
Debian data of `saga-sr recipe mini` (its fetch step only).

Every source is drawn from saga-sr-mini's **test split** as `saga_sr.experiments.mini_data` assigns it (the same
`discover` and `split_of`; SF2 samples per instrument), and the script refuses any source outside it, so no clip
was trained on. Clips are 6 s of mono 44.1 kHz FLAC under OUT/{speech,music,effects}/:
- speech: consecutive utterances of one held-out language and package, joined to 6 s (single utterances are
  about 2 s, too short for ViSQOL's 20 ms x 30-frame patches to see much);
- music: 6 s of a test track from 60 s on (the start of its 7th 10-s chunk), or a test loop / sample;
- effects: the hits of one test instrument (all velocity layers, or a few test samples) in sequence, repeated
  to at least 4 s like a pattern.

    python bench/heldout_split.py --extracted /work/data_mini/extracted --freesound /work/shared/data/freesound_cc0 \
        --out /work/data_mini/heldout
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from saga_sr.experiments.mini_data import SR, _decode, discover, instrument_of, sf2_samples, split_of

SECONDS = 6.0
MIN_EFFECT_SECONDS = 4.0
SPEECH = (
    ("klettres", "cs"),
    ("klettres", "fr"),
    ("klettres", "uk"),
    ("ktuberling", "uk"),
    ("ktuberling", "fr"),
    ("ktuberling", "sl"),
    ("ktuberling", "ca"),
    ("alsa", ""),
)
MUSIC = (
    "wesnoth:battle",
    "wesnoth:legends_of_the_north",
    "wesnoth:love_theme",
    "wesnoth:nunc_dimittis",
    "wesnoth:return_to_wesnoth",
    "wesnoth:silvan_sanctuary",
    "samples:guit_harmonics",
    "samples:loop_perc2",
)
EFFECTS_SF2 = (
    ("Black_Pearl_4_LV2", ("56-Cowbell",)),
    ("Black_Pearl_4_LV2", ("60-Paiste2002-22",)),
    ("Red_Zeppelin_4_LV2", ("41-Ludwig16FloorTo",)),
    ("Red_Zeppelin_4_LV2", ("54-Tambourine",)),
    ("Black_Pearl_4_LV2", ("44-SabianRockHatPeda", "46-SabianRockHatSemi", "52-SabianAAX20RideCh")),
)
EFFECTS_SAMPLES = (
    ("tabla", ("tabla_tun1", "tabla_tas1", "tabla_te2", "tabla_ke1")),
    ("kit", ("drum_cymbal_open", "elec_lo_snare", "bd_gas")),
    ("electronic", ("mehackit_phone2", "mehackit_robot7", "elec_bell")),
)


def _mono44(x: np.ndarray, sr: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x if sr == SR else soxr.resample(x, sr, SR, quality="VHQ").astype(np.float32)


def _join(parts: list[np.ndarray], seconds: float, repeat_to: float = 0.0) -> np.ndarray:
    """Parts in order (repeated while shorter than `repeat_to`), cut at `seconds`."""
    x = np.concatenate(parts)
    while len(x) < repeat_to * SR:
        x = np.concatenate([x, *parts])
    return x[: int(seconds * SR)]


def _write(out: Path, domain: str, name: str, x: np.ndarray, sources: list[str], rows: list[dict]) -> None:
    peak = float(np.abs(x).max())
    x = x * (0.99 / peak) if peak > 0.99 else x
    dest = out / domain / f"{name}.flac"
    dest.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(dest), x, SR, subtype="PCM_24")
    rows.append({"clip": f"{domain}/{name}.flac", "seconds": round(len(x) / SR, 2), "sources": " + ".join(sources)})


def build(extracted: Path, freesound: Path | None, out: Path) -> list[dict]:
    sources = discover(extracted, freesound)
    test = [s for s in sources if s.path.suffix != ".sf2" and split_of(s.group) == "test"]
    rows: list[dict] = []
    for pkg, lang in SPEECH:
        group = [
            s
            for s in test
            if s.domain == "speech" and s.group.startswith(f"{pkg}:{lang}") and sf.info(str(s.path)).samplerate >= 32000
        ]  # the split's low-rate files are no reference
        spread = group[:: max(1, len(group) // 6)]  # spread over the language's list, then the rest
        group = spread + [s for s in group if s not in spread]
        parts, names = [], []
        for s in group:
            ((_, x, sr),) = _decode(s)
            parts.append(_mono44(x, sr))
            names.append(s.group)
            if sum(map(len, parts)) >= SECONDS * SR:
                break
        _write(out, "speech", f"{pkg}_{lang or 'test'}", _join(parts, SECONDS), names, rows)
    for group in MUSIC:
        (s,) = [s for s in test if s.group == group]
        ((_, x, sr),) = _decode(s)
        x = _mono44(x, sr)
        start = int(60 * SR) if len(x) > 70 * SR else 0
        _write(out, "music", group.split(":")[1], _join([x[start:]], SECONDS, MIN_EFFECT_SECONDS), [group], rows)
    sf2 = {s.path.stem: s for s in sources if s.path.suffix == ".sf2"}
    for kit, instruments in EFFECTS_SF2:
        src = sf2[kit]
        hits = [(n, _mono44(x, sr)) for n, x, sr in sf2_samples(src.path)[:200] if instrument_of(n) in instruments]
        assert all(split_of(f"{src.group}:{instrument_of(n)}") == "test" for n, _ in hits), kit
        _write(
            out,
            "effects",
            f"{kit}_{instruments[0]}",
            _join([x for _, x in hits], SECONDS, MIN_EFFECT_SECONDS),
            [f"{kit}:{n}" for n, _ in hits],
            rows,
        )
    for name, stems in EFFECTS_SAMPLES:
        picked = [next(s for s in test if s.group == f"samples:{stem}") for stem in stems]
        parts = [_mono44(x, sr) for s in picked for _, x, sr in _decode(s)]
        _write(
            out,
            "effects",
            f"samples_{name}",
            _join(parts, SECONDS, MIN_EFFECT_SECONDS),
            [s.group for s in picked],
            rows,
        )
    with open(out / "clips.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["clip", "seconds", "sources"])
        w.writeheader()
        w.writerows(rows)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extracted", type=Path, required=True)
    ap.add_argument("--freesound", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    for r in build(a.extracted, a.freesound, a.out):
        print(r["clip"], r["seconds"], r["sources"][:100])


if __name__ == "__main__":
    main()
