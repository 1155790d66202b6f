"""saga_sr.evaluation.evaluate / perceptual / plots and saga_sr.evaluation.stats, and `saga-sr evaluate`."""

from __future__ import annotations

import csv
import importlib.metadata
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saga_sr.evaluation.stats import mean_ci, paired_difference

DATA = Path(__file__).parent / "data"


def _clips(root: Path, seconds: float = 1.0) -> Path:
    """Two short real clips in two domains (subfolders)."""
    for name, domain in (("guitar_mono", "music"), ("drums_stereo", "drums")):
        x, sr = sf.read(DATA / f"{name}.flac", dtype="float32")
        (root / domain).mkdir(parents=True, exist_ok=True)
        sf.write(root / domain / f"{name}.flac", x[: int(seconds * sr)], sr)
    return root


def test_mean_ci_known_answer():
    s = mean_ci([1.0, 2.0, 3.0])
    assert s.mean == pytest.approx(2.0)
    assert s.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    assert s.format(2) == "2.00 ± 2.48"
    one = mean_ci([5.0, float("nan"), None])
    assert one.n == 1 and math.isnan(one.half_width) and one.format() == "5.00 (n=1)"
    d = paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.5])
    assert d.mean == pytest.approx((1 + 1 + 0.5) / 3)


def test_log_mel_distance_orders_degradations():
    from saga_sr.evaluation.perceptual import log_mel_distance

    rng = np.random.default_rng(0)
    x = rng.standard_normal(44100).astype(np.float32) * 0.1
    assert log_mel_distance(x, x, 44100) == pytest.approx(0.0, abs=1e-9)
    quieter = log_mel_distance(x, 0.5 * x, 44100)
    assert quieter == pytest.approx(20 * np.log10(2), rel=1e-3)  # a uniform -6.02 dB gain
    assert log_mel_distance(x, 0.1 * x, 44100) > quieter


def test_visqol_runs_offline_and_ranks_a_lowpass_lower():
    """Skipped only when visqol-python is not installed; installed but unable to run (CI installs it) fails."""
    from scipy.signal import butter, sosfiltfilt

    from saga_sr.evaluation.perceptual import make_scorer

    try:
        importlib.metadata.version("visqol-python")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("visqol-python is not installed (pip install -e '.[eval]')")
    scorer = make_scorer("visqol")  # SagaError (a failure) when the installed package cannot score
    assert scorer.name == "visqol"
    x, sr = sf.read(DATA / "guitar_mono.flac", dtype="float32")
    x = x[:sr]
    low = sosfiltfilt(butter(8, 3000, fs=sr, output="sos"), x).astype(np.float32)
    same, degraded = scorer(x, x, sr), scorer(x, low, sr)
    assert 4.0 < same <= 5.0
    assert degraded < same - 0.2
    short = x[: sr // 5]  # 0.2 s: shorter than ViSQOL's analysis patches
    assert math.isnan(scorer(short, short, sr))  # no score (and evaluate names the file), not a crash


def _fake_model(lr, sr, cutoff, target_rolloff=None):
    from saga_sr.audio.lfr import low_frequency_replace

    raw = 0.8 * lr + 0.01
    return {"ours": low_frequency_replace(raw, lr, sr, cutoff_hz=cutoff), "ours_no_lfr": raw}


@pytest.mark.slow
def test_run_evaluation_numbers_recompute_from_saved_wavs(tmp_path):
    from saga_sr.audio.lr_sim import simulate_lr
    from saga_sr.audio.metrics import all_metrics
    from saga_sr.evaluation.evaluate import EvalSettings, clip_seed, run_evaluation

    test_dir = _clips(tmp_path / "test")
    out = tmp_path / "out"
    res = run_evaluation(
        test_dir,
        out,
        model_fn=_fake_model,
        roundtrip_fn=lambda hr, sr: hr,
        settings=EvalSettings(cutoffs=(4000.0, 8000.0), perceptual="mel", n_plot=2),
    )
    rows = list(csv.DictReader(open(out / "per_clip.csv")))
    assert len(rows) == 2 * 2 * 5  # files x cutoffs x systems
    assert {r["system"] for r in rows} == {"unprocessed", "ours", "ours_no_lfr", "vae_lfr", "dsp_bwe"}
    for r in rows:  # every number is recomputable from the two saved WAVs
        ref, sr = sf.read(out / r["reference"], dtype="float32", always_2d=True)
        est, sr2 = sf.read(out / r["wav"], dtype="float32", always_2d=True)
        assert sr == sr2 == 44100
        again = all_metrics(ref.T, est.T, sr, float(r["cutoff_hz"]))
        for key in ("lsd", "lsd_ssr", "lsd_hf", "lsd_lf", "si_sdr"):
            assert float(r[key]) == pytest.approx(again[key], rel=1e-6, abs=1e-9), (r["file"], r["system"], key)
    # the LR input is the documented deterministic simulation
    r = next(r for r in rows if r["system"] == "unprocessed" and r["cutoff_hz"] == "4000.0" and r["domain"] == "music")
    hr, _ = sf.read(out / r["reference"], dtype="float32", always_2d=True)
    lr = simulate_lr(
        hr.T, 44100, seed=clip_seed("music/guitar_mono.flac", 4000.0, 0), cutoff=4000.0, filter_type="cheby1", order=8
    ).audio
    saved, _ = sf.read(out / r["wav"], dtype="float32", always_2d=True)
    np.testing.assert_allclose(saved.T, lr, atol=1e-6)
    # summary + tables per domain and cutoff, and the spectrogram grids
    summary = {
        (s["domain"], s["cutoff_hz"], s["system"], s["metric"]): s for s in csv.DictReader(open(out / "summary.csv"))
    }
    lsds = [float(r["lsd"]) for r in rows if r["system"] == "dsp_bwe" and r["cutoff_hz"] == "8000.0"]
    assert float(summary[("all", "8000.0", "dsp_bwe", "lsd")]["mean"]) == pytest.approx(np.mean(lsds))
    names = sorted(p.name for p in (out / "tables").iterdir())
    assert names == [
        "all_4000hz.md",
        "all_8000hz.md",
        "drums_4000hz.md",
        "drums_8000hz.md",
        "music_4000hz.md",
        "music_8000hz.md",
    ]
    assert "±" in (out / "tables" / "all_4000hz.md").read_text()
    assert "DSP bandwidth extension" in (out / "results.md").read_text()
    assert [p.name for p in res.figures] == ["spectrograms_4000hz.png", "spectrograms_8000hz.png"]
    assert all(p.stat().st_size > 10_000 for p in res.figures)


def _lowpassed(x: np.ndarray, sr: int, hz: float) -> np.ndarray:
    """Everything above `hz` removed exactly (FFT mask), length kept."""
    spec = np.fft.rfft(x, axis=-1)
    spec[..., np.fft.rfftfreq(x.shape[-1], 1 / sr) > hz] = 0
    return np.fft.irfft(spec, n=x.shape[-1], axis=-1).astype(np.float32)


def _noise_filler(lr, sr, cutoff, target_rolloff=None):
    """A stand-in model: the DSP noise fill above the cutoff, stopped at whatever target roll-off it is given."""
    from saga_sr.audio.bwe import dsp_bandwidth_extension
    from saga_sr.inference.bands import resolve_target_rolloff

    _, target_hz = resolve_target_rolloff(target_rolloff, sr)
    filled = _lowpassed(dsp_bandwidth_extension(lr, sr, cutoff, 0), sr, target_hz)
    return {"ours": filled, "ours_no_lfr": filled}


def test_reference_target_beats_default_on_a_band_limited_reference(tmp_path):
    from saga_sr.evaluation.evaluate import EvalSettings, run_evaluation
    from saga_sr.inference.bands import DEFAULT_TARGET_ROLLOFF, resolve_target_rolloff

    x, sr = sf.read(DATA / "guitar_mono.flac", dtype="float32")
    (tmp_path / "t").mkdir()
    sf.write(tmp_path / "t" / "dull.wav", _lowpassed(x[:sr], sr, 9000.0), sr)  # nothing above 9 kHz
    settings = EvalSettings(cutoffs=(4000.0,), perceptual="none", n_plot=1, target_rolloffs=("default", "reference"))
    res = run_evaluation(tmp_path / "t", tmp_path / "o", model_fn=_noise_filler, settings=settings)
    by = {(r["system"], r["target_setting"]): r for r in res.rows}
    ref_hz = by[("ours", "reference")]["reference_rolloff_hz"]
    assert 4000 < ref_hz < 9000
    assert by[("ours", "reference")]["target_rolloff_hz"] == pytest.approx(ref_hz, abs=0.1)  # the oracle value given
    assert by[("ours", "default")]["target_rolloff"] == DEFAULT_TARGET_ROLLOFF
    default_hz = resolve_target_rolloff(None, 44100)[1]
    assert by[("ours", "default")]["target_rolloff_hz"] == pytest.approx(default_hz, abs=0.1)
    # noise filled only up to the reference's roll-off scores much better above the cutoff than noise to 19.9 kHz
    assert by[("ours", "reference")]["lsd_hf"] < by[("ours", "default")]["lsd_hf"] - 0.5
    assert by[("ours", "reference")]["lsd"] < by[("ours", "default")]["lsd"]
    # the baselines take no target roll-off: one row each, marked n/a, sharing the clip's reference roll-off
    baselines = [r for r in res.rows if r["system"] in ("unprocessed", "dsp_bwe")]
    assert len(baselines) == 2 and all(r["target_setting"] == "n/a" and r["target_rolloff"] is None for r in baselines)
    assert all(r["reference_rolloff_hz"] == ref_hz for r in res.rows)
    table = (tmp_path / "o" / "tables" / "all_4000hz.md").read_text()
    assert "| target roll-off |" in table and "reference (oracle" in table and "default (0.900 = 19.9 kHz)" in table
    assert table.count("DSP bandwidth extension") == 1 and table.count("SAGA-SR (this model, with LFR)") == 2
    summary = list(csv.DictReader(open(tmp_path / "o" / "summary.csv")))
    assert {r["target_setting"] for r in summary if r["system"] == "ours"} == {"default", "reference"}


def test_target_settings_parse_like_upsample():
    from saga_sr.inference.targets import parse_target_setting, unique_settings

    assert parse_target_setting("Default").resolve(5000.0, 44100) == pytest.approx((0.9, 0.9 * 1025 * 44100 / 2048))
    assert parse_target_setting("0.5").resolve(5000.0, 44100)[0] == 0.5
    assert parse_target_setting("16000").resolve(5000.0, 44100)[1] == 16000.0
    assert parse_target_setting("reference").resolve(5000.0, 44100)[1] == pytest.approx(5000.0)
    assert parse_target_setting("reference").resolve(0.0, 44100)[0] > 0  # a silent reference: one bin, not an error
    for bad in ("loud", "0", "-3", "30000", "nan"):
        with pytest.raises(ValueError):
            parse_target_setting(bad)
    assert [s.name for s in unique_settings(["reference", "default", "reference"])] == ["reference", "default"]
    assert [s.name for s in unique_settings(())] == ["default"]


def test_a_model_without_target_conditioning_is_named_in_the_notes():
    from types import SimpleNamespace

    from saga_sr.evaluation.evaluate import target_note
    from saga_sr.inference.targets import takes_target_rolloff, unique_settings

    plain = SimpleNamespace(cross_attn_cond_ids=["prompt"], global_cond_ids=[], rolloff_conditioner=None)
    paper = SimpleNamespace(
        cross_attn_cond_ids=["prompt", "target_rolloff"], global_cond_ids=[], rolloff_conditioner=None
    )
    assert not takes_target_rolloff(plain) and takes_target_rolloff(paper)

    def model_fn(lr, sr, cutoff, target_rolloff=None):
        return {}

    model_fn.takes_target_rolloff = False
    assert "every setting gives the same output" in target_note(unique_settings(("default", "reference")), model_fn)


def test_vae_row_beats_unprocessed_and_bad_files_are_skipped(tmp_path):
    from saga_sr.evaluation.evaluate import EvalSettings, run_evaluation

    test_dir = _clips(tmp_path / "t", 0.6)
    (test_dir / "music" / "broken.wav").write_bytes(b"RIFF not really a wav file")
    res = run_evaluation(
        test_dir,
        tmp_path / "o",
        model_fn=None,
        roundtrip_fn=lambda hr, sr: hr,
        settings=EvalSettings(cutoffs=(4000.0,), perceptual="none", n_plot=1),
    )
    assert any("broken.wav" in n for n in res.notes)  # a bad file is skipped with its reason
    assert any("round trip is lossless" in n for n in res.notes)  # the identity round trip is named as such
    assert "broken.wav" in (tmp_path / "o" / "results.md").read_text()
    by = {(r["file"], r["system"]): r for r in res.rows}
    for f in ("music/guitar_mono.flac", "drums/drums_stereo.flac"):
        assert by[(f, "vae_lfr")]["lsd"] < 0.5 * by[(f, "unprocessed")]["lsd"]
        assert (f, "ours") not in by


@pytest.fixture(scope="module")
def jittered_model_dir(make_model_dir):
    """tiny.json at its own window length, every weight moved off its init (the zero-initialised output layer
    included), so the conditioning changes the output."""
    return make_model_dir(sample_size=None, jitter=0.05)


def test_evaluate_cli_help(capsys):
    from saga_sr.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--test-dir" in text and "--target-rolloff" in text and "reference" in text


def test_evaluate_cli_runs_the_model(tmp_path, jittered_model_dir, capsys):
    from saga_sr.cli import main

    test_dir = _clips(tmp_path / "test", 0.8)
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            "--model",
            str(jittered_model_dir),
            "--test-dir",
            str(test_dir),
            "--cutoffs",
            "4000",
            "--steps",
            "1",
            "--out",
            str(out),
            "--perceptual",
            "mel",
            "--max-files",
            "1",
            "--plots",
            "1",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "SAGA-SR (this model, with LFR)" in text and "per_clip.csv" in text
    rows = list(csv.DictReader(open(out / "per_clip.csv")))
    ours = [r for r in rows if r["system"] == "ours"]
    assert len(ours) == 2 and all(math.isfinite(float(r["lsd"])) for r in ours)
    wav, sr = sf.read(out / ours[0]["wav"])
    ref, _ = sf.read(out / ours[0]["reference"])
    assert sr == 44100 and wav.shape == ref.shape


def test_evaluate_cli_scores_two_target_settings(tmp_path, jittered_model_dir, capsys):
    from saga_sr.cli import main

    test_dir = _clips(tmp_path / "test", 0.5)
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            "--model",
            str(jittered_model_dir),
            "--test-dir",
            str(test_dir),
            "--cutoffs",
            "4000",
            "--steps",
            "1",
            "--out",
            str(out),
            "--perceptual",
            "none",
            "--max-files",
            "1",
            "--plots",
            "1",
            "--target-rolloff",
            "default",
            "--target-rolloff",
            "12000",
        ]
    )
    assert code == 0
    assert "target roll-off" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "per_clip.csv")))
    ours = {(r["file"], r["target_setting"]): r for r in rows if r["system"] == "ours"}
    assert len(ours) == 2 * 2  # files x settings
    for (_, setting), r in ours.items():
        assert float(r["target_rolloff_hz"]) == pytest.approx({"default": 19864.4, "12000": 12000.0}[setting], abs=0.1)
        assert float(r["reference_rolloff_hz"]) > 0
    assert len({r["wav"] for r in rows}) == len(rows)  # every scored signal has its own file
    assert sum(r["system"] == "dsp_bwe" for r in rows) == 2  # baselines once per clip, not once per setting
    for f in ("music/guitar_mono.flac", "drums/drums_stereo.flac"):  # the value given reaches the model
        a, b = (sf.read(out / ours[(f, s)]["wav"])[0] for s in ("default", "12000"))
        assert np.abs(a - b).max() > 1e-4
    table = (out / "tables" / "all_4000hz.md").read_text()
    assert "default (0.900 = 19.9 kHz)" in table and "12000 (0.544 = 12.0 kHz)" in table


def test_evaluate_cli_rejects_a_bad_target_rolloff(tmp_path, capsys):
    from saga_sr.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--model", str(tmp_path), "--test-dir", str(tmp_path), "--target-rolloff", "loud"])
    assert exc.value.code == 2
    assert "--target-rolloff" in capsys.readouterr().err


def test_evaluate_cli_missing_model_is_a_clear_error(tmp_path, capsys):
    from saga_sr.cli import main

    code = main(["evaluate", "--model", str(tmp_path / "nope"), "--test-dir", str(tmp_path)])
    assert code == 2
    assert "nope" in capsys.readouterr().err


def test_a_band_limited_reference_is_named_per_file_and_in_the_notes(tmp_path):
    """A 16 kHz file scored as the HR reference holds nothing above ~8 kHz: warned about per file and named
    in results.md; a full-band reference is not."""
    import soxr

    from saga_sr.evaluation.evaluate import EvalSettings, run_evaluation

    x, sr = sf.read(DATA / "guitar_mono.flac", dtype="float32")
    (tmp_path / "t").mkdir()
    sf.write(tmp_path / "t" / "full.wav", x[:sr], sr)
    sf.write(tmp_path / "t" / "phone16k.wav", soxr.resample(x[:sr], sr, 16000), 16000)
    logged: list[str] = []
    res = run_evaluation(
        tmp_path / "t",
        tmp_path / "o",
        model_fn=None,
        settings=EvalSettings(cutoffs=(4000.0,), perceptual="none", n_plot=0),
        log=logged.append,
    )
    warnings = [m for m in logged if m.startswith("warning:")]
    assert len(warnings) == 1 and "phone16k.wav" in warnings[0] and "band-limited" in warnings[0]
    note = next(n for n in res.notes if "band-limited" in n)
    assert "phone16k.wav (8.0 kHz)" in note and "full.wav" not in note
    assert note in (tmp_path / "o" / "results.md").read_text()


@pytest.mark.parametrize("seconds", ["0", "-1", "nan"])
def test_evaluate_refuses_max_seconds_that_is_not_positive(tmp_path, capsys, seconds):
    """0 used to mean whole files without a word; now a usage error that writes nothing."""
    from saga_sr.cli import main

    test_dir = _clips(tmp_path / "test", 0.3)
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--test-dir", str(test_dir), "--out", str(tmp_path / "o"), f"--max-seconds={seconds}"])
    assert exc.value.code == 2 and "--max-seconds" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_run_evaluation_refuses_max_seconds_that_is_not_positive(tmp_path):
    from saga_sr.evaluation.evaluate import EvalSettings, run_evaluation

    with pytest.raises(ValueError, match="max_seconds"):
        run_evaluation(
            _clips(tmp_path / "test", 0.3), tmp_path / "o", model_fn=None, settings=EvalSettings(max_seconds=0.0)
        )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("target", ["1.5", "16", "0.01", "30000", "0", "-1", "nan"])
def test_evaluate_refuses_the_targets_upsample_refuses(tmp_path, capsys, target):
    from saga_sr.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--test-dir", str(tmp_path), "--out", str(tmp_path / "o"), f"--target-rolloff={target}"])
    assert exc.value.code == 2 and "--target-rolloff" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_markdown_table_known_answer():
    from saga_sr.evaluation.tables import markdown_table

    assert markdown_table(["a", "b"], [["1", "2"], ["x", "y"]]) == ["| a | b |", "|---|---|", "| 1 | 2 |", "| x | y |"]


def _half_then_fail(monkeypatch, cls, name):
    """Make `cls.name` write part of its data, then fail as a full disk would."""
    original = getattr(cls, name)

    def broken(self, data, *args, **kwargs):
        original(self, data[: max(1, len(data) // 2)], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cls, name, broken)


@pytest.mark.parametrize(
    "target, cls, name", [("per_clip.csv", csv.DictWriter, "writerows"), ("results.md", Path, "write_text")]
)
def test_a_failure_mid_write_leaves_no_partial_table_or_csv(tmp_path, monkeypatch, target, cls, name):
    from saga_sr.evaluation.evaluate import EvalSettings, run_evaluation
    from saga_sr.outputs import TEMP_SUFFIX

    test_dir, out = _clips(tmp_path / "t", 0.3), tmp_path / "o"
    (out / "tables").mkdir(parents=True)
    (out / target).write_text("a previous run's file\n")
    _half_then_fail(monkeypatch, cls, name)
    with pytest.raises(OSError, match="No space left"):
        run_evaluation(
            test_dir, out, model_fn=None, settings=EvalSettings(cutoffs=(4000.0,), perceptual="none", n_plot=0)
        )
    monkeypatch.undo()
    assert (out / target).read_text() == "a previous run's file\n"  # the old file whole, not a half-written one
    assert not list((out / "tables").iterdir()) and not list(out.rglob(f"*{TEMP_SUFFIX}"))
