"""load_audio / save_audio / find_audio_files: formats, rates, channel rules, clear errors, atomic writes."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saga_sr.audio.io import (
    AUDIO_EXTENSIONS,
    audio_rate,
    find_audio_files,
    find_audio_files_relative,
    fit_gain,
    load_audio,
    read_audio_blocks,
    save_audio,
)
from saga_sr.errors import AudioError

DATA = Path(__file__).parent / "data"


def _tone(sr: int, seconds: float = 0.5, freq: float = 1000.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([x * (1 + 0.1 * c) for c in range(channels)], axis=1).astype(np.float32)


def test_real_recordings_load_as_stereo_and_mono():
    wav, sr = load_audio(DATA / "guitar_stereo.flac")
    assert sr == 44100 and wav.dtype == np.float32 and wav.shape == (2, 132300)
    mono, _ = load_audio(DATA / "guitar_mono.flac")
    assert mono.shape == (1, 132300)
    dup, _ = load_audio(DATA / "guitar_mono.flac", channels=2)
    assert dup.shape == (2, 132300) and np.array_equal(dup[0], dup[1])
    down, _ = load_audio(DATA / "guitar_stereo.flac", channels=1)
    np.testing.assert_allclose(down[0], wav.mean(axis=0), atol=1e-6)


def test_resampling_keeps_duration_and_pitch(tmp_path):
    path = tmp_path / "tone16k.wav"
    sf.write(path, _tone(16000, 1.0, 1000.0), 16000)
    wav, sr = load_audio(path)
    assert sr == 44100 and abs(wav.shape[1] - 44100) <= 1
    spec = np.abs(np.fft.rfft(wav[0]))
    assert abs(np.argmax(spec) * 44100 / wav.shape[1] - 1000.0) < 2.0
    native, nsr = load_audio(path, target_sr=None)
    assert nsr == 16000 and native.shape == (1, 16000)


def test_more_than_two_channels_refused_unless_downmix(tmp_path):
    path = tmp_path / "quad.wav"
    sf.write(path, _tone(44100, 0.2, channels=4), 44100)
    with pytest.raises(AudioError, match="quad.wav.*4 channels"):
        load_audio(path)
    wav, _ = load_audio(path, downmix=True)
    assert wav.shape[0] == 1
    assert load_audio(path, downmix=True, channels=2)[0].shape[0] == 2


@pytest.mark.parametrize(
    "kind,message",
    [
        ("garbage", "cannot read"),
        ("empty", "cannot read|zero length"),
        ("zero", "zero length"),
        ("nan", "NaN"),
        ("silent", "silent"),
        ("missing", "no such file"),
    ],
)
def test_bad_inputs_raise_audio_error_naming_the_file(tmp_path, kind, message):
    path = tmp_path / f"bad_{kind}.wav"
    if kind == "garbage":
        path.write_bytes(b"this is not audio" * 10)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "zero":
        sf.write(path, np.zeros((0, 1), np.float32), 44100)
    elif kind == "nan":
        x = _tone(44100, 0.1)
        x[10] = np.nan
        sf.write(path, x, 44100, subtype="FLOAT")
    elif kind == "silent":
        sf.write(path, np.zeros((4410, 2), np.float32), 44100)
    with pytest.raises(AudioError, match=message) as info:
        load_audio(path)
    assert f"bad_{kind}.wav" in str(info.value)


def test_silent_allowed_when_asked(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros((441, 1), np.float32), 44100)
    wav, _ = load_audio(path, allow_silent=True)
    assert wav.shape == (1, 441) and not wav.any()


@pytest.mark.parametrize("name,subtype,tol", [("a.wav", None, 0.0), ("a.flac", None, 2e-7), ("b.wav", "PCM_16", 4e-5)])
def test_save_round_trip(tmp_path, name, subtype, tol):
    x = _tone(44100, 0.2, channels=2).T
    out = save_audio(tmp_path / "sub" / name, x, 44100, subtype=subtype)
    y, sr = load_audio(out)
    assert sr == 44100 and y.shape == x.shape
    assert np.max(np.abs(y - x)) <= tol
    assert [p.name for p in out.parent.iterdir()] == [name]  # no temp file left


def test_save_never_clips_silently(tmp_path):
    x = np.array([[0.5, 1.7, -2.0, 0.1]], np.float32)
    for name, subtype in (("c.wav", "PCM_16"), ("c.flac", None)):
        with pytest.raises(AudioError, match="peak 2.000 is above full scale"):
            save_audio(tmp_path / name, x, 8000, subtype=subtype)
        assert not (tmp_path / name).exists()
        gain = fit_gain(x, tmp_path / name, subtype)
        assert gain == pytest.approx(0.5)
        y, _ = sf.read(save_audio(tmp_path / name, x * gain, 8000, subtype=subtype), dtype="float32")
        assert y.tolist() == pytest.approx((x[0] * gain).tolist(), abs=1e-4)  # scaled, not clipped
    y, _ = sf.read(save_audio(tmp_path / "f.wav", x, 8000), dtype="float32")  # float WAV keeps > 1
    assert fit_gain(x, tmp_path / "f.wav") == 1.0 and y.tolist() == x[0].tolist()


def test_saved_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        out = save_audio(tmp_path / "new" / "p.wav", _tone(8000, 0.1).T, 8000)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644 and stat.S_IMODE(out.parent.stat().st_mode) == 0o755


def test_failed_save_leaves_no_partial_file_and_keeps_old(tmp_path):
    target = tmp_path / "keep.wav"
    save_audio(target, _tone(8000, 0.1).T, 8000)
    before = target.read_bytes()
    with pytest.raises(AudioError, match="keep.wav"):
        save_audio(target, np.full((1, 10), np.nan, np.float32), 8000)
    with pytest.raises(AudioError, match="keep.wav"):
        save_audio(target, _tone(8000, 0.1).T, 8000, subtype="NOT_A_SUBTYPE")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]


def test_find_audio_files(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    for rel in ["d/x.wav", "d/e/y.FLAC", "d/notes.txt", "d/.hidden.wav", "z.ogg"]:
        (tmp_path / rel).write_bytes(b"")
    found = find_audio_files([tmp_path / "d", tmp_path / "z.ogg"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["d/e/y.FLAC", "d/x.wav", "z.ogg"]
    rels = [r.as_posix() for _, r in find_audio_files_relative([tmp_path / "d"])]
    assert rels == ["e/y.FLAC", "x.wav"]
    assert [p.name for p in find_audio_files(tmp_path / "d", recursive=False)] == ["x.wav"]
    assert ".flac" in AUDIO_EXTENSIONS
    with pytest.raises(AudioError, match="nope"):
        find_audio_files([tmp_path / "nope"])


def test_a_file_name_outside_the_file_system_encoding_is_read_and_written(tmp_path):
    """A Latin-1 name on a UTF-8 system (Python holds it with surrogates): soundfile's strict encoding of a str
    failed it as 'cannot read audio'; it is opened by the bytes the OS listed."""
    if sys.getfilesystemencoding().lower() not in ("utf-8", "utf8"):
        pytest.skip("needs a UTF-8 file system encoding")
    raw = os.fsencode(tmp_path) + b"/caf\xe9.wav"
    try:
        sf.write(raw, np.full(800, 0.1, dtype=np.float32), 16000, subtype="FLOAT")
    except (OSError, RuntimeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    name = os.fsdecode(raw)
    wav, sr = load_audio(name, target_sr=None)
    assert sr == 16000 and wav.shape == (1, 800) and audio_rate(name) == 16000
    assert [b.shape[1] for b in read_audio_blocks(name, 500)] == [500, 300]
    out = os.fsdecode(os.fsencode(tmp_path) + b"/out\xe9.wav")
    save_audio(out, wav, sr)
    assert load_audio(out, target_sr=None)[0].shape == (1, 800)
