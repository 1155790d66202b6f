"""`saga-sr upsample`: --help, a real run over files and a folder, failures that stay alone, refusals."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from saga_sr.cli import main


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir


def write_tone(path, sr, channels, seconds=0.6):
    t = np.arange(int(sr * seconds)) / sr
    x = np.stack([0.3 * np.sin(2 * np.pi * 330 * (c + 1) * t) for c in range(channels)], axis=1)
    sf.write(path, x, sr)


def test_help():
    out = subprocess.run([sys.executable, "-m", "saga_sr", "upsample", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--model", "--input-cutoff", "--target-rolloff", "--cfg-audio", "--no-lfr", "--precision"):
        assert flag in out.stdout


def test_real_run_with_a_bad_file(tmp_path, model_dir, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write_tone(src / "a.flac", 8000, 1)
    write_tone(src / "sub" / "b.wav", 22050, 2)
    (src / "sub" / "b.caption.txt").write_text("a synth")
    (src / "broken.wav").write_bytes(b"RIFF not really audio")
    sf.write(src / "empty.wav", np.zeros((0, 1)), 16000)
    write_tone(tmp_path / "three.wav", 16000, 3)
    out = tmp_path / "out"
    code = main(
        [
            "upsample",
            str(src),
            str(tmp_path / "three.wav"),
            "-o",
            str(out),
            "--model",
            str(model_dir),
            "--steps",
            "2",
            "--device",
            "cpu",
            "-q",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "2 ok, 3 failed" in captured.out
    assert "broken.wav" in captured.err and "three.wav" in captured.err and "3 channels" in captured.err
    assert "empty.wav" in captured.err and "zero length" in captured.err
    a, sr_a = sf.read(out / "a.wav", always_2d=True)
    b, sr_b = sf.read(out / "sub" / "b.wav", always_2d=True)
    assert sr_a == sr_b == 44100
    assert a.shape == (round(0.6 * 44100), 1) and b.shape == (round(0.6 * 44100), 2)
    assert not list(out.rglob(".*.tmp"))  # atomic writes leave no temp files


def test_refuses_to_overwrite_an_input(tmp_path, model_dir, capsys):
    write_tone(tmp_path / "x.wav", 16000, 1)
    code = main(["upsample", str(tmp_path / "x.wav"), "-o", str(tmp_path), "--model", str(model_dir)])
    assert code == 2 and "overwrite" in capsys.readouterr().err
    assert sf.info(str(tmp_path / "x.wav")).samplerate == 16000


def test_missing_model_is_a_usage_error(tmp_path, capsys):
    write_tone(tmp_path / "x.wav", 16000, 1)
    code = main(["upsample", str(tmp_path / "x.wav"), "-o", str(tmp_path / "o"), "--model", str(tmp_path / "nope")])
    assert code == 2 and "nope" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def own_cfg_scales(cfg: dict) -> None:
    cfg["model"]["diffusion"]["cfg_scales"] = {"audio": 2.0, "text": 1.7}


def test_cfg_scales_default_to_the_models_own_then_flags_win(tmp_path, monkeypatch, make_model_dir):
    """Like `evaluate` and validation: no flag -> the model config's cfg_scales; a flag (0 too) wins."""
    from saga_sr.inference import pipeline

    model_dir = make_model_dir(edit=own_cfg_scales)

    calls = []

    real = pipeline.Upsampler.upsample_file

    def record(self, src, dst, **kwargs):
        info = real(self, src, dst, **kwargs)
        calls.append((info.cfg_audio, info.cfg_text))  # what the run used
        return info

    monkeypatch.setattr(pipeline.Upsampler, "upsample_file", record)
    write_tone(tmp_path / "a.wav", 16000, 1, seconds=0.2)
    base = ["upsample", str(tmp_path / "a.wav"), "--model", str(model_dir), "--device", "cpu", "-q", "--steps", "1"]
    assert main(base + ["-o", str(tmp_path / "o1")]) == 0
    assert main(base + ["-o", str(tmp_path / "o2"), "--cfg-text", "0"]) == 0
    assert calls == [(2.0, 1.7), (2.0, 0.0)]


def test_band_edge_printed_and_report(tmp_path, model_dir, capsys):
    """A 16 kHz file holding an 8 kHz band: the detected edge is printed; --report writes the sidecar with
    the edge, the measured roll-off f_l (not the edge) and the run's settings; --input-cutoff moves only
    the edge."""
    import json

    import soxr

    sr = 16000
    x = np.random.default_rng(0).standard_normal(sr) * 0.1
    sf.write(tmp_path / "n.wav", soxr.resample(soxr.resample(x, sr, 8000, "HQ"), 8000, sr, "HQ"), sr)
    out = tmp_path / "out"
    assert (
        main(
            [
                "upsample",
                str(tmp_path / "n.wav"),
                "-o",
                str(out),
                "--model",
                str(model_dir),
                "--steps",
                "1",
                "--device",
                "cpu",
                "--report",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    report = json.loads((out / "n.report.json").read_text())
    assert 3800 <= report["band_edge_hz"] <= 4000 and report["band_edge_source"] == "detected"
    assert f"band edge {report['band_edge_hz']:.0f} Hz (detected)" in err
    assert report["rolloff_hz"] < report["band_edge_hz"] and report["steps"] == 1 and report["cfg_audio"] == 1.4
    assert report["input_sr"] == sr and report["timings"]["sampling"] > 0
    assert (
        main(
            [
                "upsample",
                str(tmp_path / "n.wav"),
                "-o",
                str(tmp_path / "out2"),
                "--model",
                str(model_dir),
                "--steps",
                "1",
                "--device",
                "cpu",
                "--report",
                "-q",
                "--input-cutoff",
                "3000",
            ]
        )
        == 0
    )
    given = json.loads((tmp_path / "out2" / "n.report.json").read_text())
    assert given["band_edge_hz"] == 3000 and given["band_edge_source"] == "input_cutoff"
    assert given["rolloff_hz"] == report["rolloff_hz"]  # f_l is measured, never the given cutoff
