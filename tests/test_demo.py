"""`saga-sr demo`: the shipped assets and a --quick end-to-end run."""

from __future__ import annotations

import csv

import pytest
import soundfile as sf


def test_demo_assets_are_shipped_small_and_attributed():
    from saga_sr.experiments.demo import SHOWCASE, assets_dir

    root = assets_dir()
    files = sorted(p for p in root.rglob("*.flac"))
    assert sum(p.stat().st_size for p in files) < 6_000_000
    train = [p for p in files if p.parent.name == "train"]
    domains = {p.parent.name for p in files if p.parent.parent.name == "test"}
    assert len(train) >= 6 and domains == {"music", "drums", "ambience", "vocal"}
    sources = (root / "SOURCES.txt").read_text()
    for p in files:
        rel = p.relative_to(root).as_posix()
        assert rel in sources and "CC0" in sources.split(rel, 1)[1].split("\n", 1)[0]
        info = sf.info(p)
        assert info.samplerate == 44100 and info.duration <= 6.0
    assert (root / "test" / SHOWCASE).is_file()
    assert not {p.name for p in train} & {p.name for p in files if p.parent.parent.name == "test"}


def test_demo_cli_help(capsys):
    from saga_sr.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--minutes" in text and "--target-rolloff" in text


@pytest.mark.slow
def test_demo_quick_trains_and_runs_end_to_end(tmp_path, capsys):
    from saga_sr.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--train", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "all, cutoff 4000 Hz" in text and "all, cutoff 8000 Hz" in text
    assert "DSP bandwidth extension" in text and str(out / "showcase") in text
    assert "target roll-off given to the model: default (0.900 = 19.9 kHz)" in text  # the setting is stated
    rows = list(csv.DictReader(open(out / "eval" / "per_clip.csv")))
    assert {r["cutoff_hz"] for r in rows} == {"4000.0", "8000.0"}
    assert {r["domain"] for r in rows} == {"music", "drums", "ambience", "vocal"}
    assert {r["target_setting"] for r in rows if r["system"] == "ours"} == {"default"}
    up, sr = sf.read(out / "showcase" / "upsampled_44k.wav")
    ref, _ = sf.read(out / "showcase" / "reference.wav")
    low, low_sr = sf.read(out / "showcase" / "input_16k.wav")
    assert sr == 44100 and low_sr == 16000 and up.shape == ref.shape and len(ref) == 44100  # quick: first second
    assert (out / "showcase" / "spectrogram.png").stat().st_size > 10_000
    assert (out / "eval" / "spectrograms_8000hz.png").is_file()
    assert (out / "train" / "model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_demo_quick_uses_the_shipped_model(tmp_path, capsys):
    from saga_sr.cli import main
    from saga_sr.models.shipped import SHIPPED_MODEL_DIR

    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"model:          {SHIPPED_MODEL_DIR}" in text and "all, cutoff 8000 Hz" in text
    assert not (out / "train").exists() and (out / "showcase" / "upsampled_44k.wav").is_file()
