"""saga-sr-mini's data preparation and export: bandwidth measurement, SF2 reading, splits, fp16 export."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saga_sr.experiments.mini_data import measure_bandwidth, prepare, sf2_samples, split_of

SR = 44100


def _noise(seconds: float, cutoff: float | None, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(int(seconds * SR)) * 0.1
    if cutoff:  # a brick wall, as Vorbis / MP3 encoders and resamplers leave it
        spec = np.fft.rfft(x)
        spec[np.fft.rfftfreq(len(x), 1 / SR) > cutoff] = 0
        x = np.fft.irfft(spec, n=len(x))
    return x.astype(np.float32)


@pytest.mark.parametrize("cutoff", [11025.0, 16000.0, 19600.0])
def test_bandwidth_finds_the_low_pass_edge(cutoff):
    assert abs(measure_bandwidth(_noise(2.0, cutoff), SR) - cutoff) < 600


def test_bandwidth_of_full_band_and_fading_audio():
    assert measure_bandwidth(_noise(2.0, None), SR) == SR / 2  # flat to the top: no edge
    # content fading at -12 dB/octave above 2 kHz into a -90 dB floor ends where it meets the floor
    x = _noise(4.0, None)
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / SR)
    spec *= np.minimum(1.0, (2000 / np.maximum(f, 1)) ** 2)
    faded = np.fft.irfft(spec, n=len(x)) + 10 ** (-90 / 20) * np.random.default_rng(1).standard_normal(len(x))
    assert 8000 < measure_bandwidth(faded.astype(np.float32), SR) < 20000


def _sf2(path: Path, samples: list[tuple[str, np.ndarray, int]]) -> None:
    """A minimal SoundFont 2: RIFF sfbk / LIST sdta (smpl) / LIST pdta (shdr with a terminal record)."""
    pcm, shdr, pos = b"", b"", 0
    for name, x, rate in samples:
        data = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes() + b"\0" * 92  # 46 zero samples of padding
        shdr += struct.pack("<20s5IbbHH", name.encode(), pos, pos + len(x), pos, pos + len(x), rate, 60, 0, 0, 1)
        pcm += data
        pos += len(data) // 2
    shdr += struct.pack("<20s5IbbHH", b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0)

    def chunk(cid: bytes, body: bytes) -> bytes:
        return cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")

    body = b"sfbk" + chunk(b"LIST", b"INFO" + chunk(b"ifil", struct.pack("<HH", 2, 1)))
    body += chunk(b"LIST", b"sdta" + chunk(b"smpl", pcm)) + chunk(b"LIST", b"pdta" + chunk(b"shdr", shdr))
    path.write_bytes(chunk(b"RIFF", body)[:8] + body)


def test_sf2_samples_are_read_back(tmp_path):
    a, b = _noise(0.5, 8000, 1), _noise(0.4, None, 2)
    _sf2(tmp_path / "kit.sf2", [("Kick", a, 44100), ("Hat", b, 48000)])
    got = sf2_samples(tmp_path / "kit.sf2")
    assert [(n, r, len(x)) for n, x, r in got] == [("Kick", 44100, len(a)), ("Hat", 48000, len(b))]
    assert np.abs(got[0][1] - a).max() < 1e-4


def test_splits_are_deterministic_and_hold_out_languages():
    assert split_of("klettres:fr:a") == "test" and split_of("ktuberling:nl:x") == "val"
    assert split_of("klettres:de:a") == "train"
    picks = [split_of(f"wesnoth:track{i}") for i in range(400)]
    assert picks == [split_of(f"wesnoth:track{i}") for i in range(400)]
    assert 0.7 < picks.count("train") / 400 < 0.9 and picks.count("val") > 10 and picks.count("test") > 20


def test_prepare_writes_split_manifests_with_bandwidth(tmp_path):
    root = tmp_path / "x"
    share = root / "usr" / "share"
    for lang in ("de", "fr", "nl"):
        (share / "klettres" / lang).mkdir(parents=True)
        sf.write(share / "klettres" / lang / "a.wav", _noise(1.0, 11025), SR, subtype="FLOAT")
    music = share / "games" / "wesnoth" / "1.16" / "music"
    music.mkdir(parents=True)
    sf.write(music / "long.ogg", _noise(12.0, 19600), SR)  # cut into 10 s chunks
    sf.write(music / "low.ogg", _noise(1.0, 7000)[::2], SR // 2)  # a 22.05 kHz file: real low-rate
    (share / "sounds" / "sf2").mkdir(parents=True)
    _sf2(share / "sounds" / "sf2" / "kit.sf2", [("Snare", _noise(0.5, None), 48000)])
    report = prepare(root, tmp_path / "out", freesound=None, exclude_names={"excluded"})
    rows = {s: list(csv.DictReader(open(tmp_path / "out" / f"{s}.csv"))) for s in ("train", "val", "test")}
    langs = {s: {Path(r["source"]).parent.name for r in rs if r["domain"] == "speech"} for s, rs in rows.items()}
    assert langs["train"] == {"de"} and langs["val"] == {"nl"} and langs["test"] == {"fr"}
    everything = [r for rs in rows.values() for r in rs]
    music_rows = [r for r in everything if r["domain"] == "music"]
    assert len(music_rows) >= 2 and all(abs(float(r["bandwidth_hz"]) - 19600) < 600 for r in music_rows)
    speech = [r for r in everything if r["domain"] == "speech"]
    assert all(abs(float(r["bandwidth_hz"]) - 11025) < 600 and r["caption"] == "speech" for r in speech)
    assert report["kept"]["lowrate"] == 1 and report["kept_per_domain"]["train"]["speech"] == 1
    info = sf.info(str(tmp_path / "out" / everything[0]["path"]))
    assert info.samplerate == SR and info.channels == 1
    assert json.loads((tmp_path / "out" / "prepare_report.json").read_text())["kept"] == report["kept"]


def test_export_half_loads_back(tmp_path):
    import torch

    from saga_sr.experiments.mini_recipe import export_half
    from saga_sr.models.build import build_model
    from saga_sr.models.checkpoint import export_model, load_model

    model = build_model("tiny", seed=0)
    export_model(model, tmp_path / "full")
    export_half(tmp_path / "full", tmp_path / "half")
    assert (tmp_path / "half" / "model.safetensors").stat().st_size < 0.6 * (
        tmp_path / "full" / "model.safetensors"
    ).stat().st_size
    back = load_model(tmp_path / "half")
    for (k, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        assert b.dtype == a.dtype and torch.allclose(a, b, atol=1e-3 * (a.abs().max() + 1)), k


def test_sf2_velocity_layers_share_a_split_and_some_prompts_are_empty():
    from saga_sr.experiments.mini_data import blank_prompts, instrument_of

    assert instrument_of("42-SabianRockHatCl-3") == instrument_of("42-SabianRockHatCl-12") == "42-SabianRockHatCl"
    rows = [{"path": f"a{i % 50}.flac", "caption": "music"} for i in range(2000)]
    blank = blank_prompts(rows)
    share = sum(r["caption"] == "" for r in blank) / len(rows)
    assert 0.2 < share < 0.3 and blank == blank_prompts(rows) and rows[0]["caption"] == "music"


def test_same_named_sources_in_one_split_are_both_kept(tmp_path):
    share = tmp_path / "x" / "usr" / "share"
    for lang, hz in (("de", 5000), ("en", 9000)):  # both training languages, the same folder and file name
        (share / "klettres" / lang / "alpha").mkdir(parents=True)
        sf.write(share / "klettres" / lang / "alpha" / "a.wav", _noise(1.0, hz), SR, subtype="FLOAT")
    prepare(tmp_path / "x", tmp_path / "out", freesound=None)
    rows = list(csv.DictReader(open(tmp_path / "out" / "train.csv")))
    paths = {r["path"]: r for r in rows}
    assert len(paths) == 2 and {Path(r["source"]).parts[-3] for r in paths.values()} == {"de", "en"}
    for path, row in paths.items():  # each file holds its own source's audio (the band tells them apart)
        x, _ = sf.read(str(tmp_path / "out" / path))
        expected = 5000 if Path(row["source"]).parts[-3] == "de" else 9000
        assert abs(measure_bandwidth(x, SR) - expected) < 600


def test_recipe_trains_phase_a_without_the_bridge_then_phase_b_from_its_weights(tmp_path, monkeypatch):
    """The recipe's two phases (fakes for fetch / prepare / train / export): phase a trains mini.json without
    lr_bridge for the minutes given, phase b trains mini.json from phase a's export for BRIDGE_STEPS; a rerun once
    phase b has started resumes phase b and never goes back to phase a."""
    import saga_sr.experiments.mini_data as mini_data
    import saga_sr.experiments.mini_recipe as recipe
    import saga_sr.training.run as run_mod
    from saga_sr.config import load_config

    assert load_config("mini")["model"]["diffusion"].get("lr_bridge") is not None
    calls = []

    def fake_train(**kw):
        calls.append(kw)
        ckpts = Path(kw["output_dir"]) / "checkpoints"
        ckpts.mkdir(parents=True, exist_ok=True)
        (ckpts / "last.ckpt").write_text("x")
        (Path(kw["output_dir"]) / "model").mkdir(exist_ok=True)
        return Path(kw["output_dir"])

    def fake_prepare(root, prepared, **kw):
        prepared.mkdir(parents=True)
        (prepared / "prepare_report.json").write_text(json.dumps({"kept": {}, "skipped": 0}))
        return {"kept": {}, "skipped": 0}

    monkeypatch.setattr(mini_data, "fetch", lambda debs, root, *a: root)
    monkeypatch.setattr(mini_data, "prepare", fake_prepare)
    monkeypatch.setattr(run_mod, "train", fake_train)
    monkeypatch.setattr(run_mod, "checkpoint_step", lambda path: 10)
    monkeypatch.setattr(
        run_mod, "find_resume_checkpoint", lambda spec, folder: Path(folder) / "checkpoints" / "last.ckpt"
    )
    monkeypatch.setattr(recipe, "export_half", lambda src, dst: dst)
    monkeypatch.setattr(recipe, "demo_test_names", lambda: set())
    result = recipe.run_recipe(tmp_path / "d", tmp_path / "r", minutes=2.0, log=lambda _m: None)
    a, b = calls
    phase_a = json.loads(Path(a["model_config"]).read_text())
    assert "lr_bridge" not in phase_a["model"]["diffusion"] and a["max_time"] == 2.0
    assert a["output_dir"] == str(tmp_path / "r") and a["resume"] is None
    assert b["model_config"] == "mini" and b["max_steps"] == recipe.BRIDGE_STEPS
    assert b["pretrained_ckpt"] == str(tmp_path / "r" / "model" / "model.safetensors")
    assert b["output_dir"] == str(tmp_path / "r" / "bridge") and result.train_steps == 20
    calls.clear()
    recipe.run_recipe(tmp_path / "d", tmp_path / "r", minutes=2.0, log=lambda _m: None)
    assert len(calls) == 1 and calls[0]["resume"] == "last" and calls[0]["pretrained_ckpt"] is None
