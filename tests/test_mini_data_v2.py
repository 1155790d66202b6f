"""mini_data's v2 package set: GM soundfonts (SF2 and Vorbis SF3) read by preset, lmms samples, gcompris' Qt
resources; the v1 set (the shipped recipe's) must see exactly what it saw before."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

from saga_sr.experiments.mini_data import discover, gm_sample_groups, gm_sources, rcc_files, soundfont_samples, spread

SR = 44100


def _tone(seconds: float, hz: float, rate: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _chunk(cid: bytes, body: bytes, pad: bool = True) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + (b"\0" if pad and len(body) % 2 else b"")


def _sf3(path: Path, piano: np.ndarray, kick: np.ndarray) -> None:
    """A minimal SF3 as MuseScore writes it: Vorbis samples at byte offsets, odd chunk sizes unpadded; preset
    "Piano" (bank 0 program 0) and a drum kit (bank 128) whose only zone is key 36."""
    blobs = []
    for x in (piano, kick):
        buf = io.BytesIO()
        sf.write(buf, x, SR, format="OGG", subtype="VORBIS")
        blobs.append(buf.getvalue())
    smpl = b"".join(blobs) + b"x"  # an odd size, left unpadded
    shdr, pos = b"", 0
    for name, b in zip((b"Piano C4", b"Kick"), blobs):
        shdr += struct.pack("<20s5IbbHH", name, pos, pos + len(b), 0, 0, SR, 60, 0, 0, 1)
        pos += len(b)
    shdr += struct.pack("<20s5IbbHH", b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0)
    # presets -> one zone each with generator 41 (instrument); instruments -> one zone with 43 (keyRange), 53
    phdr = b"".join(
        struct.pack("<20sHHHIII", n, p, b, i, 0, 0, 0)
        for n, p, b, i in ((b"Piano", 0, 0, 0), (b"Standard", 0, 128, 1), (b"EOP", 0, 0, 2))
    )
    pbag = b"".join(struct.pack("<HH", g, 0) for g in (0, 1, 2))
    pgen = struct.pack("<HH", 41, 0) + struct.pack("<HH", 41, 1) + struct.pack("<HH", 0, 0)
    inst = b"".join(struct.pack("<20sH", n, b) for n, b in ((b"Piano", 0), (b"Kit", 1), (b"EOI", 2)))
    ibag = b"".join(struct.pack("<HH", g, 0) for g in (0, 1, 3))
    igen = struct.pack("<HH", 53, 0) + struct.pack("<HBB", 43, 36, 36) + struct.pack("<HH", 53, 1)
    igen += struct.pack("<HH", 0, 0)
    pdta = b"".join(
        _chunk(c, b)
        for c, b in (
            (b"phdr", phdr),
            (b"pbag", pbag),
            (b"pgen", pgen),
            (b"inst", inst),
            (b"ibag", ibag),
            (b"igen", igen),
            (b"shdr", shdr),
        )
    )
    body = b"sfbk" + _chunk(b"LIST", b"INFO" + _chunk(b"ifil", struct.pack("<HH", 3, 1)))
    body += _chunk(b"LIST", b"sdta" + _chunk(b"smpl", smpl, pad=False), pad=False) + _chunk(b"LIST", b"pdta" + pdta)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_sf3_vorbis_samples_are_decoded_and_split_by_gm_structure(tmp_path):
    piano, kick = _tone(0.6, 440.0), _tone(0.4, 60.0)
    path = tmp_path / "sounds" / "sf3" / "MuseScore_General_Lite.sf3"
    path.parent.mkdir(parents=True)
    _sf3(path, piano, kick)
    got = soundfont_samples(path, (0, 1))
    assert [(n, r) for n, _, r in got] == [
        ("MuseScore_General_Lite_0_Piano C4", SR),
        ("MuseScore_General_Lite_1_Kick", SR),
    ]
    for (_, x, _), ref in zip(got, (piano, kick)):
        assert len(x) == len(ref) and np.corrcoef(x, ref)[0, 1] > 0.99  # Vorbis is lossy, not different
    from saga_sr.experiments.mini_data import _riff_chunks

    assert gm_sample_groups(_riff_chunks(path.read_bytes())) == {
        0: ("music", "gm:program0"),
        1: ("effects", "gm:drumkey36"),
    }
    assert [(s.domain, s.group, s.samples) for s in gm_sources(path)] == [
        ("music", "gm:program0", (0,)),
        ("effects", "gm:drumkey36", (1,)),
    ]


def test_spread_shares_the_budget_over_groups_and_notes():
    got = spread({"piano": list(range(10)), "kick": [20]}, budget=4)
    assert got == {"piano": [0, 4, 9], "kick": [20]}  # round robin, then low / middle / high notes
    assert spread({"a": [1, 2]}, budget=10) == {"a": [1, 2]}


def _rcc(path: Path, files: dict[str, bytes], compress: set[str]) -> None:
    """A minimal Qt resource file (format version 1): a root directory whose children are the files."""
    names, data, nodes = b"", b"", []
    for name, blob in files.items():
        name_off = len(names)
        names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
        body = struct.pack(">I", len(blob)) + zlib.compress(blob) if name in compress else blob
        nodes.append(struct.pack(">IHHHI", name_off, 1 if name in compress else 0, 0, 0, len(data)))
        data += struct.pack(">I", len(body)) + body
    tree = struct.pack(">IHII", 0, 2, len(files), 1) + b"".join(nodes)
    head = 20
    path.write_bytes(
        b"qres" + struct.pack(">IIII", 1, head, head + len(tree), head + len(tree) + len(data)) + tree + data + names
    )


def _wav(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_rcc_members_are_read_plain_and_zlib_compressed(tmp_path):
    a, b = _wav(_tone(0.5, 300.0)), _wav(_tone(0.5, 900.0))
    _rcc(tmp_path / "core.rcc", {"a.wav": a, "b.wav": b, "c.qml": b"x"}, compress={"b.wav"})
    assert rcc_files((tmp_path / "core.rcc").read_bytes()) == {"a.wav": a, "b.wav": b, "c.qml": b"x"}


def _old_and_new_packages(root: Path) -> None:
    """The six v1 packages' layout (one file each) plus the four v2 packages', unpacked in one root."""
    share = root / "usr" / "share"
    x = _tone(0.5, 500.0)
    for rel in (
        "klettres/fr/a.ogg",
        "ktuberling/sounds/de/hat.ogg",
        "sounds/alsa/Front_Left.wav",
        "games/wesnoth/1.16/music/battle.ogg",
        "sonic-pi/samples/bass_x.flac",
        "sonic-pi/samples/bd_y.flac",
        "lmms/samples/basses/b1.ogg",
        "lmms/samples/beats/b1.ogg",
        "lmms/samples/shapes/sine.wav",
        "lmms/samples/latin/conga.flac",
    ):
        (share / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(share / rel, x, SR)
    (share / "lmms/samples/drumsynth/kick.ds").parent.mkdir(parents=True)
    (share / "lmms/samples/drumsynth/kick.ds").write_text("[General]\n")  # a preset, not audio
    (share / "sounds" / "sf2").mkdir(parents=True)
    (share / "sounds" / "sf2" / "Black_Pearl_4_LV2.sf2").write_bytes(b"RIFF")
    _sf3(share / "sounds" / "sf2" / "FluidR3_GM.sf2", x, x)  # its structure is all discover reads
    (share / "gcompris-qt" / "rcc").mkdir(parents=True)
    click = _wav(_tone(0.4, 2000.0))
    _rcc(share / "gcompris-qt/rcc/instruments.rcc", {"violin.wav": _wav(x)}, set())
    _rcc(share / "gcompris-qt/rcc/core.rcc", {"click.wav": click, "a.qml": b"x"}, set())
    _rcc(share / "gcompris-qt/rcc/tic_tac_toe.rcc", {"click.wav": click}, set())  # a copy: kept once


# the groups (and so the splits) of the v1 sources: bench/heldout_split.py and the shipped recipe depend on them
V1_SOURCES = [
    ("klettres/fr/a.ogg", "speech", "klettres:fr:a"),
    ("ktuberling/sounds/de/hat.ogg", "speech", "ktuberling:de:hat"),
    ("sounds/alsa/Front_Left.wav", "speech", "alsa:Front_Left"),
    ("games/wesnoth/1.16/music/battle.ogg", "music", "wesnoth:battle"),
    ("sonic-pi/samples/bass_x.flac", "music", "samples:bass_x"),
    ("sonic-pi/samples/bd_y.flac", "effects", "samples:bd_y"),
    ("sounds/sf2/Black_Pearl_4_LV2.sf2", "effects", "sf2:Black_Pearl_4_LV2"),
]


def test_v1_sees_only_its_packages_with_unchanged_groups(tmp_path):
    _old_and_new_packages(tmp_path)
    share = tmp_path / "usr" / "share"
    got = [(str(s.path.relative_to(share)), s.domain, s.group) for s in discover(tmp_path, None, "v1")]
    assert got == V1_SOURCES


def test_v2_adds_the_new_packages_with_their_domains(tmp_path):
    _old_and_new_packages(tmp_path)
    v1, v2 = discover(tmp_path, None, "v1"), discover(tmp_path, None, "v2")
    assert v2[: len(v1)] == v1  # old sources first, identical
    new = {(s.group, s.domain) for s in v2[len(v1) :]}
    assert new == {
        ("gm:program0", "music"),
        ("gm:drumkey36", "effects"),
        ("lmms:basses/b1", "music"),
        ("lmms:shapes/sine", "music"),
        ("lmms:beats/b1", "effects"),
        ("lmms:latin/conga", "effects"),
        ("gcompris:instruments/violin", "music"),
        ("gcompris:core/click", "effects"),  # the drumsynth preset and the second click.wav are left out
    }


def test_fetch_downloads_again_only_for_packages_not_yet_unpacked(tmp_path, monkeypatch):
    from saga_sr.experiments import mini_data

    calls = []
    monkeypatch.setattr(mini_data.subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    root = tmp_path / "extracted"
    root.mkdir()
    (root / ".unpacked").write_text("".join(f"{p}_1.0_all.deb\n" for p in mini_data.PACKAGE_SETS["v1"]))
    mini_data.fetch(tmp_path / "debs", root, "v1")
    assert calls == []
    mini_data.fetch(tmp_path / "debs", root, "v2")
    assert calls[0][:2] == ["apt-get", "download"] and "lmms-common" in calls[0]
