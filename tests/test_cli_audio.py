"""`saga-sr degrade / rolloff / metrics`, run in-process on the real test recordings and on bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saga_sr.audio.io import load_audio
from saga_sr.audio.metrics import all_metrics
from saga_sr.audio.spectral import magnitude, rolloff
from saga_sr.cli import main

DATA = Path(__file__).parent / "data"


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture()
def inputs(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    shutil.copy(DATA / "guitar_stereo.flac", root / "guitar.flac")
    shutil.copy(DATA / "drums_stereo.flac", root / "sub" / "drums.flac")
    return root


@pytest.mark.parametrize("command", ["degrade", "rolloff", "metrics"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: saga-sr " + command in capsys.readouterr().out


def test_degrade_band_limits_as_asked_and_skips_bad_files(inputs, tmp_path, capsys):
    (inputs / "broken.wav").write_bytes(b"not audio at all")
    out = tmp_path / "out"
    rc = main(["degrade", str(inputs), "-o", str(out), "--cutoff", "4000", "--filter", "cheby1", "--order", "8"])
    captured = capsys.readouterr()
    assert rc == 1 and "broken.wav" in captured.err
    assert not (out / "broken.wav").exists()
    records = _json_lines(captured.out)
    assert [Path(r["output"]).relative_to(out).as_posix() for r in records] == ["guitar.wav", "sub/drums.wav"]
    assert all(r["cutoff_hz"] == 4000.0 and r["filter"] == "cheby1" and r["order"] == 8 for r in records)
    assert _json_lines((out / "degrade.jsonl").read_text()) == records
    for rel in ["guitar.flac", "sub/drums.flac"]:
        assert sf.info(out / Path(rel).with_suffix(".wav")).subtype == "FLOAT"  # the default never clips
        hr, _ = load_audio(inputs / rel)
        lr, sr = load_audio(out / Path(rel).with_suffix(".wav"))
        assert sr == 44100 and lr.shape == hr.shape
        assert rolloff(lr, sr).hz <= 4000.0
        k = int(4000 * 2048 / sr) + 2
        above = (magnitude(lr)[:, k:] ** 2).sum() / (magnitude(hr)[:, k:] ** 2).sum()
        assert 10 * np.log10(above) < -40.0


def test_degrade_draws_per_file_deterministically_and_resamples(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    x, sr = sf.read(DATA / "drums_stereo.flac")
    sf.write(src / "low_rate.wav", x[::2], sr // 2)  # a 22.05 kHz input
    shutil.copy(DATA / "guitar_stereo.flac", src / "g.flac")
    assert main(["degrade", str(src), "-o", str(tmp_path / "a"), "--seed", "5"]) == 0
    first = _json_lines(capsys.readouterr().out)
    assert main(["degrade", str(src), "-o", str(tmp_path / "b"), "--seed", "5"]) == 0
    second = _json_lines(capsys.readouterr().out)
    assert [(r["cutoff_hz"], r["filter"], r["order"]) for r in first] == [
        (r["cutoff_hz"], r["filter"], r["order"]) for r in second
    ]
    # samples, not bytes: a float WAV's PEAK chunk carries a timestamp
    assert np.array_equal(sf.read(tmp_path / "a" / "g.wav")[0], sf.read(tmp_path / "b" / "g.wav")[0])
    for r in first:
        assert 2000.0 <= r["cutoff_hz"] <= 16000.0
    assert sf.info(tmp_path / "a" / "low_rate.wav").samplerate == 44100


def test_degrade_refuses_to_overwrite_inputs(inputs, capsys):
    before = sorted(p.name for p in inputs.rglob("*"))
    rc = main(["degrade", str(inputs), "-o", str(inputs), "--cutoff", "4000"])
    assert rc == 2 and "input folder" in capsys.readouterr().err
    rc = main(["degrade", str(inputs / "guitar.flac"), "-o", str(inputs / "guitar.flac"), "--cutoff", "4000"])
    assert rc == 2 and "would replace the input" in capsys.readouterr().err
    assert sorted(p.name for p in inputs.rglob("*")) == before
    # OUT inside the input folder: a second run does not degrade its own earlier outputs again
    assert main(["degrade", str(inputs), "-o", str(inputs / "lr"), "--cutoff", "4000"]) == 0
    assert main(["degrade", str(inputs), "-o", str(inputs / "lr"), "--cutoff", "4000", "--overwrite"]) == 0
    records = _json_lines(capsys.readouterr().out)
    assert len(records) == 4 and not (inputs / "lr" / "lr").exists()
    assert len(_json_lines((inputs / "lr" / "degrade.jsonl").read_text())) == 2


def test_rolloff_json_lines(tmp_path, capsys):
    main(
        [
            "degrade",
            str(DATA / "guitar_stereo.flac"),
            "-o",
            str(tmp_path),
            "--cutoff",
            "6000",
            "--filter",
            "ellip",
            "--order",
            "6",
        ]
    )
    capsys.readouterr()
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"\x00" * 100)
    rc = main(["rolloff", str(tmp_path / "guitar_stereo.wav"), str(DATA / "guitar_mono.flac"), str(bad)])
    captured = capsys.readouterr()
    assert rc != 0 and "bad.flac" in captured.err
    rows = _json_lines(captured.out)
    assert [Path(r["path"]).name for r in rows] == ["guitar_stereo.wav", "guitar_mono.flac"]
    assert set(rows[0]) == {"path", "rolloff_hz", "rolloff_normalized", "bin", "sample_rate"}
    wav, sr = load_audio(DATA / "guitar_mono.flac")
    expected = rolloff(wav, sr)
    assert (rows[1]["bin"], rows[1]["rolloff_hz"], rows[1]["rolloff_normalized"]) == (
        expected.bin,
        expected.hz,
        expected.normalized,
    )
    assert rows[0]["rolloff_hz"] <= 6000.0 and rows[0]["sample_rate"] == 44100


def test_metrics_pair_known_answer(tmp_path, capsys):
    wav, sr = load_audio(DATA / "guitar_stereo.flac")
    sf.write(tmp_path / "half.wav", 0.5 * wav.T, sr, subtype="FLOAT")
    sf.write(tmp_path / "ref.wav", wav.T, sr, subtype="FLOAT")
    assert main(["metrics", str(tmp_path / "ref.wav"), str(tmp_path / "half.wav"), "--cutoff", "4000"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["lsd_ssr"] == pytest.approx(2 * np.log10(2), abs=1e-4) and row["si_sdr"] > 60
    # the NU-Wave LSD floors power at 1e-8: this recording's quietest high bins sit on the floor in both
    assert 0.5 < row["lsd"] < 2 * np.log10(2) and row["lsd_lf"] == pytest.approx(2 * np.log10(2), abs=1e-4)
    assert {k: row[k] for k in ("lsd", "lsd_hf", "lsd_lf")} == pytest.approx(
        {k: v for k, v in all_metrics(wav, 0.5 * wav, sr, 4000.0).items() if k in ("lsd", "lsd_hf", "lsd_lf")}, rel=1e-6
    )


def test_metrics_folders_with_summary(tmp_path, capsys):
    ref, est = tmp_path / "ref", tmp_path / "est"
    for d in (ref, est):
        (d / "sub").mkdir(parents=True)
    wav, sr = load_audio(DATA / "drums_stereo.flac")
    sf.write(ref / "sub" / "a.flac", wav.T, sr)
    sf.write(est / "sub" / "a.wav", wav.T, sr, subtype="FLOAT")  # matched by name without extension
    sf.write(ref / "b.wav", wav.T, sr)  # no estimate
    sf.write(est / "extra.wav", wav.T, sr)  # no reference
    rc = main(["metrics", str(ref), str(est)])
    captured = capsys.readouterr()
    rows = _json_lines(captured.out)
    assert rc == 1 and "b.wav" in captured.err
    assert len(rows) == 2 and rows[0]["lsd"] < 1e-3 and rows[0]["lsd_hf"] is None
    summary = rows[-1]
    assert summary["summary"] is True and summary["count"] == 1
    assert summary["missing_estimates"] == 1 and summary["unmatched_estimates"] == 1 and summary["failed"] == 0
    assert summary["means"]["lsd"] == rows[0]["lsd"]


def test_metrics_bad_file_names_it(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope")
    assert main(["metrics", str(DATA / "guitar_mono.flac"), str(bad)]) == 2
    assert "bad.wav" in capsys.readouterr().err
