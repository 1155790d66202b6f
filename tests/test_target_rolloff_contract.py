"""The target roll-off never costs the input its own audio: one range rule for every surface (upsample,
evaluate, the page, the Python API), a band limit that never acts below the input's band edge, and no limit
at all when no target is given. The model: saga-sr-mini's config (its `target_band_limit` on) with a random
DiT, which generates loud content everywhere above the edge, so anything a limit removes shows."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from saga_sr.audio.lfr import TARGET_TAPER_FRACTION, edge_crossfade_hz
from saga_sr.audio.spectral import HOP, N_FFT, bin_of_hz, stft
from saga_sr.cli import main
from saga_sr.inference.bands import MIN_TARGET_HZ, band_limit_hz, parse_target_rolloff, resolve_target_rolloff
from saga_sr.inference.pipeline import Upsampler

SR = 44100
BAD = ["0", "-1", "nan", "inf", "1.5", "16", "999", "0.01", "30000", "loud"]
GOOD = {"1": 1.0, "1.0": 1.0, "0.05": 0.05, "1000": 1000.0, "2000": 2000.0, "22050": 22050.0, "default": None}


def band_limited(cfg: dict) -> None:
    for key in ("lr_prefill", "lr_bridge"):  # a random DiT started from noise: loud content above the edge
        cfg["model"]["diffusion"].pop(key, None)
    cfg["model"]["diffusion"]["target_band_limit"] = True


@pytest.fixture(scope="module")
def model_dir(make_model_dir):
    """The real init zeroes the DiT's residual branches: it would generate nothing."""
    return make_model_dir(config="mini", edit=band_limited, randomize=("dit",))


@pytest.fixture(scope="module")
def up(model_dir):
    from saga_sr.models.checkpoint import load_model

    return Upsampler(load_model(model_dir))


def noise(sr: int, seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    """Full-band white noise at `sr` (its band edge is its Nyquist)."""
    return (0.1 * np.random.default_rng(seed).standard_normal(int(sr * seconds))).astype(np.float32)


def band_db(x: np.ndarray, lo: float, hi: float) -> float:
    f, mag = np.fft.rfftfreq(len(x), 1 / SR), np.abs(np.fft.rfft(x))
    return float(10 * np.log10((mag[(f >= lo) & (f < hi)] ** 2).mean() + 1e-30))


def kept_db(x_in: np.ndarray, sr: int, y: np.ndarray, edge_hz: float) -> float:
    """The largest level difference in dB, bin by bin (long-term power of the 2048-point STFT that LFR works
    in), between the output and the input resampled to 44.1 kHz, from the second bin up to README's contract
    band (0.9 x the input's Nyquist) or the band edge's LFR crossfade if lower. A random model's high band,
    ~30 dB louder than the input, leaks a little into it through the STFT's overlap-add (measured <= 0.4 dB);
    a cut is tens of dB."""
    ref = x_in if sr == SR else soxr.resample(x_in, sr, SR, "HQ").astype(np.float32)
    k = bin_of_hz(min(edge_hz - edge_crossfade_hz(edge_hz), 0.9 * sr / 2), SR)
    a, b = ((np.abs(stft(v, N_FFT, HOP)) ** 2).mean(axis=-1)[2:k] for v in (ref, y[: len(ref)]))
    return float(np.max(np.abs(10 * np.log10(b / a))))


def test_one_range_rule_for_the_target_rolloff():
    for text in BAD:
        with pytest.raises(ValueError, match="roll-off|number"):
            parse_target_rolloff(text)
    for text, value in GOOD.items():
        assert parse_target_rolloff(text) == value
    assert resolve_target_rolloff(None, SR) == resolve_target_rolloff(0.9, SR)  # not given: conditioned on 0.9
    assert resolve_target_rolloff(0.05, SR)[1] >= MIN_TARGET_HZ  # the page's slider minimum is in range
    with pytest.raises(ValueError, match="16000"):  # kHz typed as Hz: the message says what to write
        resolve_target_rolloff(16, SR)


@pytest.mark.parametrize("edge", [1900.0, 3897.5, 7751.9, 11000.0, 15876.0, 21000.0, 22050.0])
def test_the_band_limit_never_acts_below_the_band_edge(edge):
    for target in (MIN_TARGET_HZ, 0.5 * edge, edge, 1.01 * edge, 16000.0, 19864.4, 22050.0):
        limit = band_limit_hz(target, edge, SR)
        if limit is None:  # a limit at or above the Nyquist: nothing to remove
            assert max(target, edge) >= 0.97 * SR / 2
            continue
        assert limit >= target
        k = bin_of_hz(limit, SR)
        taper = max(1, int(round(TARGET_TAPER_FRACTION * limit * N_FFT / SR)))  # as audio.lfr.limit_to_target
        assert k - taper >= bin_of_hz(edge, SR), (edge, target, limit)
    assert band_limit_hz(None, edge, SR) is None  # no target given: no limit


def test_a_target_below_the_edge_keeps_the_input_band(up):
    """`--target-rolloff 2000` on an 8 kHz file (edge ~3.9 kHz): the 2-3.9 kHz band is the input's, and
    nothing is added above the edge."""
    x = soxr.resample(noise(SR), SR, 8000, "HQ").astype(np.float32)
    y, info = up.upsample_with_info(x[None], 8000, steps=1, target_rolloff=2000)
    y, edge = y[0], info.band_edge_hz
    assert 3500 < edge < 4000 and kept_db(x, 8000, y, edge) < 1.0
    assert band_db(y, 5000, 20000) < band_db(y, 2000, 3500) - 40
    assert info.target_band_limit and info.band_limit_hz >= edge


@pytest.mark.parametrize("target", [1.5, 16, 0.0, -1.0, float("nan"), 30000.0])
def test_the_api_refuses_a_target_out_of_range(up, tmp_path, target):
    with pytest.raises(ValueError, match="roll-off"):
        up.upsample(noise(16000)[None], 16000, steps=1, target_rolloff=target)
    src = tmp_path / "in.wav"
    sf.write(src, noise(16000), 16000)
    with pytest.raises(ValueError, match="roll-off"):
        up.upsample_file(src, tmp_path / "out.wav", steps=1, target_rolloff=target)
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("target", ["1.5", "0", "-1", "nan", "30000", "16"])
def test_upsample_refuses_a_target_out_of_range(model_dir, tmp_path, capsys, target):
    src = tmp_path / "in.wav"
    sf.write(src, noise(16000), 16000)
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "upsample",
                str(src),
                "-o",
                str(tmp_path / "out"),
                "--model",
                str(model_dir),
                "-q",
                f"--target-rolloff={target}",
            ]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--target-rolloff" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_no_target_cuts_nothing_full_band_or_band_limited(model_dir, up, tmp_path, capsys):
    """Without --target-rolloff: a full-band file keeps its 20-22 kHz, every input bin below the edge is
    the input's, and a band-limited file's output holds all the model generated (the same as with the band
    limit switched off); `--target-rolloff default` is the same as not giving it."""
    full = noise(SR, seed=1)
    limited = soxr.resample(noise(SR, seed=2), SR, 16000, "HQ").astype(np.float32)
    sf.write(tmp_path / "full44.wav", full, SR, subtype="FLOAT")
    sf.write(tmp_path / "voice16.wav", limited, 16000, subtype="FLOAT")
    assert (
        main(
            [
                "upsample",
                str(tmp_path / "full44.wav"),
                str(tmp_path / "voice16.wav"),
                "-o",
                str(tmp_path / "o"),
                "--model",
                str(model_dir),
                "--steps",
                "1",
                "-q",
                "--report",
            ]
        )
        == 0
    )
    y_full, _ = sf.read(tmp_path / "o" / "full44.wav", dtype="float32")
    assert kept_db(full, SR, y_full, SR / 2) < 1.0
    assert abs(band_db(y_full, 20200, 21500) - band_db(full, 20200, 21500)) < 0.1
    assert abs(band_db(y_full, 21850, 22050) - band_db(full, 21850, 22050)) < 0.1  # the top bins too
    y_lim, _ = sf.read(tmp_path / "o" / "voice16.wav", dtype="float32")
    import json

    report = json.loads((tmp_path / "o" / "voice16.report.json").read_text())
    assert report["target_band_limit"] is False and report["band_limit_hz"] is None
    assert kept_db(limited, 16000, y_lim, report["band_edge_hz"]) < 1.0
    unlimited = up.upsample_file(tmp_path / "voice16.wav", tmp_path / "unlimited.wav", steps=1, limit_band=False)
    assert unlimited.band_edge_hz == report["band_edge_hz"]
    y_ref, _ = sf.read(tmp_path / "unlimited.wav", dtype="float32")
    assert band_db(y_ref, 20200, 21500) > band_db(y_ref, 2000, 7000) - 30  # the model did generate up there
    np.testing.assert_allclose(y_lim, y_ref, atol=1e-5)  # ... and none of it was cut
    capsys.readouterr()
    assert (
        main(
            [
                "upsample",
                str(tmp_path / "voice16.wav"),
                "-o",
                str(tmp_path / "d.wav"),
                "--model",
                str(model_dir),
                "--steps",
                "1",
                "-q",
                "--target-rolloff",
                "default",
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(sf.read(tmp_path / "d.wav", dtype="float32")[0], y_lim)


def test_six_channels_name_the_option_of_the_command(model_dir, up, tmp_path, capsys):
    """The command line names its own --downmix option, never the Python argument; the API names neither."""
    from saga_sr.errors import AudioError

    sf.write(tmp_path / "six.wav", np.tile(noise(16000)[:, None], (1, 6)), 16000)
    assert (
        main(
            [
                "upsample",
                str(tmp_path / "six.wav"),
                "-o",
                str(tmp_path / "o"),
                "--model",
                str(model_dir),
                "--steps",
                "1",
                "-q",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "6 channels" in err and "--downmix" in err and "downmix=True" not in err
    with pytest.raises(AudioError, match="6 channels") as exc:
        up.upsample_file(tmp_path / "six.wav", tmp_path / "six_out.wav", steps=1)
    assert "--downmix" not in str(exc.value)
