"""One set of sampling defaults, the model's (ModelSettings.sampling), and one sampling path: the CLI, the
app's runner, the Python API and `evaluate` give the same output for the same model and seed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from saga_sr.config.typed import DEFAULT_CFG_AUDIO, DEFAULT_CFG_TEXT, DEFAULT_STEPS, ModelSettings

OWN = {"steps": 2, "audio": 2.5, "text": 0.5}  # a model's own defaults, unlike the package's
SR, CUTOFF = 16000, 6000.0


def test_sampling_settings_given_then_the_models_then_the_packages():
    bare = ModelSettings(sample_rate=44100, audio_channels=1, sample_size=4096, io_channels=8)
    assert bare.sampling() == bare.sampling(None, None, None, None)
    s = bare.sampling()
    assert (s.steps, s.cfg_audio, s.cfg_text, s.target_rolloff) == (
        DEFAULT_STEPS,
        DEFAULT_CFG_AUDIO,
        DEFAULT_CFG_TEXT,
        0.9,
    )
    own = ModelSettings(
        sample_rate=44100, audio_channels=1, sample_size=4096, io_channels=8, default_steps=4, cfg_audio=2.0
    )
    s = own.sampling()
    assert (s.steps, s.cfg_audio, s.cfg_text) == (4, 2.0, DEFAULT_CFG_TEXT)
    s = own.sampling(steps=7, cfg_audio=0.0, cfg_text=0.0, target_rolloff=12000.0)
    assert (s.steps, s.cfg_audio, s.cfg_text, s.target_rolloff) == (7, 0.0, 0.0, 12000.0)  # 0 is a value


def test_the_app_offers_the_models_own_defaults():
    from saga_sr.app.runner import Settings

    own = ModelSettings(
        sample_rate=44100,
        audio_channels=1,
        sample_size=4096,
        io_channels=8,
        default_steps=4,
        cfg_audio=2.0,
        cfg_text=1.0,
    )
    shown = Settings().resolved(own)
    assert (shown.steps, shown.cfg_audio, shown.cfg_text, shown.target_rolloff) == (4, 2.0, 1.0, None)  # not given
    assert Settings(steps=9).resolved(own).steps == 9


def own_defaults(cfg: dict) -> None:
    cfg["model"]["diffusion"]["default_steps"] = OWN["steps"]
    cfg["model"]["diffusion"]["cfg_scales"] = {"audio": OWN["audio"], "text": OWN["text"]}


@pytest.fixture(scope="module")
def model_dir(make_model_dir):
    """A random DiT (the init zeroes its residual branches): steps and CFG matter."""
    return make_model_dir(edit=own_defaults, randomize=("dit",))


@pytest.mark.slow
def test_cli_app_api_and_evaluate_give_the_same_output(tmp_path, model_dir):
    from saga_sr.app.runner import Settings, run_uploads, split_uploads
    from saga_sr.cli import main
    from saga_sr.evaluation.evaluate import load_systems
    from saga_sr.inference.pipeline import Upsampler
    from saga_sr.models.checkpoint import load_model

    t = np.arange(int(0.6 * SR)) / SR
    wav = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.1 * np.sin(2 * np.pi * 2500 * t)).astype(np.float32)[None]
    src = tmp_path / "in.wav"
    sf.write(src, wav.T, SR, subtype="FLOAT")

    assert (
        main(
            [
                "upsample",
                str(src),
                "-o",
                str(tmp_path / "cli.wav"),
                "--model",
                str(model_dir),
                "--device",
                "cpu",
                "--seed",
                "3",
                "--no-lfr",
                "--input-cutoff",
                str(CUTOFF),
                "--report",
                "-q",
            ]
        )
        == 0
    )
    cli = sf.read(tmp_path / "cli.wav", dtype="float32", always_2d=True)[0].T
    report = json.loads((tmp_path / "cli.report.json").read_text())
    assert (report["steps"], report["cfg_audio"], report["cfg_text"]) == (OWN["steps"], OWN["audio"], OWN["text"])

    up = Upsampler(load_model(model_dir))
    (outcome,) = run_uploads(
        up, split_uploads([src]), tmp_path / "app", Settings(seed=3, lfr=False, input_cutoff_hz=CUTOFF)
    )
    assert outcome.error is None
    app = sf.read(outcome.result.dst, dtype="float32", always_2d=True)[0].T

    api = up.upsample(wav, SR, seed=3, lfr=False, input_cutoff_hz=CUTOFF)
    model_fn, _ = load_systems(model_dir, seed=3)
    evaluated = model_fn(wav, SR, CUTOFF)["ours_no_lfr"]

    explicit = up.upsample(
        wav,
        SR,
        seed=3,
        lfr=False,
        input_cutoff_hz=CUTOFF,
        steps=OWN["steps"],
        cfg_audio=OWN["audio"],
        cfg_text=OWN["text"],
    )
    np.testing.assert_array_equal(api, explicit)
    for name, out in (("cli", cli), ("app", app), ("evaluate", evaluated)):
        np.testing.assert_allclose(out, api, atol=1e-5, err_msg=name)
    for other in ({"steps": OWN["steps"] + 1}, {"cfg_audio": DEFAULT_CFG_AUDIO, "cfg_text": DEFAULT_CFG_TEXT}):
        changed = up.upsample(wav, SR, seed=3, lfr=False, input_cutoff_hz=CUTOFF, **other)
        assert np.abs(changed - api).max() > 1e-3, other  # the settings matter: the match above is not vacuous
