"""SAGASRDataset: indexing, sidecars, manifests, skipped files, crops, padding and metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from saga_sr.data import SAGASRDataset, build_index, collate, compose_prompt, read_manifest, write_skipped_report
from saga_sr.errors import DataError

SR = 44100


def _tone(seconds: float, freq: float = 440.0, sr: int = SR, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)
    return np.stack([x] * channels, axis=1).astype(np.float32)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "train"
    (root / "sub").mkdir(parents=True)
    sf.write(root / "a.wav", _tone(1.0), SR)
    sf.write(root / "sub" / "b.flac", _tone(0.5, 880, channels=2), SR)
    sf.write(root / "c_48k.wav", _tone(0.6, sr=48000), 48000)
    (root / "a.txt").write_text("hello world\n")
    (root / "a.caption.txt").write_text("A sine tone with hiss.")
    sf.write(root / "silent.wav", np.zeros((SR // 2, 1), np.float32), SR)
    (root / "broken.wav").write_bytes(b"RIFF0000WAVEjunkjunk")
    nan = _tone(0.5)
    nan[100] = np.nan
    sf.write(root / "nan.wav", nan, SR, subtype="FLOAT")
    (root / "notes.md").write_text("not audio")
    return root


def test_index_folder_finds_usable_files_and_reports_bad_ones(folder: Path, tmp_path: Path):
    res = build_index(folder)
    names = sorted(e.path.name for e in res.entries)
    assert names == ["a.wav", "b.flac", "c_48k.wav"]
    reasons = {p.name: r for p, r in res.skipped}
    assert set(reasons) == {"silent.wav", "broken.wav", "nan.wav"}
    assert reasons["silent.wav"].startswith("silent")
    assert reasons["broken.wav"].startswith("unreadable")
    assert reasons["nan.wav"].startswith("non-finite")
    a = next(e for e in res.entries if e.path.name == "a.wav")
    assert (a.transcript, a.caption) == ("hello world", "A sine tone with hiss.")
    report = tmp_path / "skipped_files.txt"
    write_skipped_report(report, res.skipped, title="train")
    text = report.read_text()
    assert "3 skipped" in text and "broken.wav\tunreadable" in text


def test_missing_and_empty_sources_are_clear_errors(tmp_path: Path):
    with pytest.raises(DataError, match="no such folder"):
        build_index(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no usable audio"):
        SAGASRDataset(tmp_path / "empty", 4096, SR, 1)


def test_manifests_csv_and_jsonl(folder: Path, tmp_path: Path):
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(
        "path,caption,transcript,domain\n"
        f"{folder / 'a.wav'},manifest caption,,speech\n"
        "train/sub/b.flac,,words,music\nmissing.wav,,,\n"
    )
    rows = read_manifest(csv_path)
    assert rows[1]["path"] == tmp_path / "train/sub/b.flac"
    res = build_index(csv_path)
    assert [e.path.name for e in res.entries] == ["a.wav", "b.flac"]
    assert res.entries[0].caption == "manifest caption" and res.entries[0].transcript == "hello world"
    assert res.entries[1].domain == "music" and res.entries[1].transcript == "words"
    assert res.skipped[0][1].startswith("missing")
    jl = tmp_path / "m.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in [{"path": str(folder / "a.wav"), "domain": "general"}]))
    assert build_index(jl).entries[0].domain == "general"
    bad = tmp_path / "bad.csv"
    bad.write_text("file,caption\nx.wav,y\n")
    with pytest.raises(DataError, match="'path' column"):
        read_manifest(bad)


def test_prompt_composition():
    assert compose_prompt("A cap.", "words", True) == "A cap. words"
    assert compose_prompt("A cap.", "words", False) == "words"
    assert compose_prompt("", "", True) == ""


def test_items_crop_pad_metadata_and_determinism(folder: Path):
    ds = SAGASRDataset(folder, 8192, SR, 2, compute_rolloff=True, deterministic=True, seed=3)
    audio, md = ds[ds.entries.index(next(e for e in ds.entries if e.path.name == "a.wav"))]
    assert audio.shape == (2, 8192) and audio.dtype == torch.float32
    assert md["lr_audio"].shape == (2, 8192) and md["padding_mask"].all()
    assert 2000 <= md["lr_cutoff_hz"] <= 16000
    assert md["prompt"] == "A sine tone with hiss. hello world"
    assert md["seconds_total"] == pytest.approx(1.0) and 0 <= md["seconds_start"] <= 1.0 - 8192 / SR
    assert 0 < md["rolloff_low"] < md["rolloff_high"] <= SR / 2
    assert md["input_rolloff"] == pytest.approx(md["rolloff_low"] / (SR / 2048) / 1025, rel=1e-6)
    again_audio, again_md = ds[0]
    first_audio, first_md = ds[0]
    assert torch.equal(again_audio, first_audio) and again_md["lr_cutoff_hz"] == first_md["lr_cutoff_hz"]
    # the HR target is the file itself (left channel duplicated for mono files)
    ref, _ = sf.read(folder / "a.wav", dtype="float32")
    start = round(md["seconds_start"] * SR)
    assert np.allclose(audio[0].numpy(), ref[start : start + 8192], atol=1e-6)


def test_short_file_is_padded_with_a_mask_and_resampled(folder: Path):
    ds = SAGASRDataset(folder, 32768, SR, 1, deterministic=True, use_caption=False)
    i = next(i for i, e in enumerate(ds.entries) if e.path.name == "c_48k.wav")
    audio, md = ds[i]
    valid = int(md["padding_mask"].sum())
    assert valid == pytest.approx(0.6 * SR, abs=2)
    assert not md["padding_mask"][valid:].any() and float(audio[:, valid:].abs().max()) == 0.0
    assert float(md["lr_audio"][:, valid:].abs().max()) == 0.0
    assert "rolloff_low" not in md
    batch_audio, batch_md = collate([ds[0], ds[1]])
    assert batch_audio.shape == (2, 1, 32768) and len(batch_md) == 2


def test_training_crops_vary(folder: Path):
    ds = SAGASRDataset(folder, 2048, SR, 1, seed=0)
    starts = {ds[0][1]["seconds_start"] for _ in range(6)}
    assert len(starts) > 1


def test_index_cache_skips_rechecking_unchanged_files(folder: Path, tmp_path: Path, monkeypatch):
    import saga_sr.data.index as index

    cache = tmp_path / "cache.json"
    first = build_index(folder, cache_path=cache)

    def no_reads(path):
        raise AssertionError(f"{path} was checked again")

    monkeypatch.setattr(index, "check_audio", no_reads)
    again = build_index(folder, cache_path=cache)
    assert [e.path for e in again.entries] == [e.path for e in first.entries]
    assert again.skipped == first.skipped
    sf.write(folder / "a.wav", _tone(0.3), SR)  # a changed file is checked again
    with pytest.raises(AssertionError, match="a.wav was checked again"):
        build_index(folder, cache_path=cache)


def test_resampled_random_crop_matches_the_whole_file_resampled(tmp_path: Path):
    from saga_sr.audio.io import load_audio
    from saga_sr.data.index import build_index
    from saga_sr.data.segment import read_segment

    sf.write(tmp_path / "x48.wav", _tone(2.0, 1000.0, sr=48000, channels=2), 48000)
    entry = build_index(tmp_path).entries[0]
    full, _ = load_audio(tmp_path / "x48.wav", target_sr=SR)
    for seed in range(3):
        seg = read_segment(entry, 4096, SR, 2, np.random.default_rng(seed))
        start = round(seg.seconds_start * SR)
        assert seg.valid == 4096 and start > 0
        assert np.abs(seg.audio - full[:, start : start + 4096]).max() < 1e-4


def test_manifest_bandwidth_is_the_hr_rolloff(folder: Path, tmp_path: Path):
    """A manifest's measured bandwidth is the target roll-off and caps the LR cutoff; absent: the segment's."""
    man = tmp_path / "m.csv"
    man.write_text(f"path,bandwidth_hz\n{folder / 'a.wav'},5000\n{folder / 'sub' / 'b.flac'},\n")
    ds = SAGASRDataset(man, 8192, SR, 1, compute_rolloff=True, deterministic=True)
    assert [e.bandwidth_hz for e in ds.entries] == [5000.0, 0.0]
    for i in range(4):
        ds.seed = i
        _, md = ds[0]
        assert md["rolloff_high"] == 5000.0 and md["lr_cutoff_hz"] <= 0.94 * 5000 + 1e-6
        assert md["target_rolloff"] == pytest.approx(5000 / (SR / 2048) / 1025)
    _, md = ds[1]
    assert md["rolloff_high"] != 5000.0 and md["rolloff_high"] > 0
    man.write_text(f"path,bandwidth_hz\n{folder / 'a.wav'},wide\n")
    with pytest.raises(DataError, match="a.wav.*bandwidth_hz 'wide'"):
        build_index(man)


def test_a_training_file_named_outside_the_file_system_encoding_is_indexed_and_read(tmp_path):
    """A Latin-1 name on a UTF-8 system: training's index and segment reader open it by the bytes the OS
    listed, as upsample does, instead of skipping it as unreadable."""
    import os
    import sys

    from saga_sr.data.index import checked_entry, list_candidates
    from saga_sr.data.segment import read_segment

    if sys.getfilesystemencoding().lower() not in ("utf-8", "utf8"):
        pytest.skip("needs a UTF-8 file system encoding")
    raw = os.fsencode(tmp_path) + b"/caf\xe9.wav"
    noise = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    try:
        sf.write(raw, noise, 16000, subtype="FLOAT")
    except (OSError, RuntimeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    rows = list_candidates(tmp_path)
    assert len(rows) == 1
    entry, reason = checked_entry(rows[0])
    assert entry is not None, reason
    seg = read_segment(entry, 4000, 16000, 1, rng=None)
    np.testing.assert_allclose(seg.audio[0][:4000], noise[:4000], atol=1e-6)
