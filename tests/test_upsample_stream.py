"""Streaming upsampling: the bounded buffers, `upsample_file` equal to the in-memory `upsample`, memory held
independent of the input length, and bad files refused before anything is written."""

import numpy as np
import pytest
import soundfile as sf
from test_upsample_pipeline import tones

from saga_sr.audio.io import load_audio
from saga_sr.errors import AudioError
from saga_sr.inference import pipeline
from saga_sr.inference.stream import ForwardBuffer, OverlapAdd


@pytest.fixture(scope="module")
def upsampler(random_upsampler):
    return random_upsampler


def test_forward_buffer_reads_on_demand_and_forgets():
    x = np.arange(2 * 100, dtype=np.float32).reshape(2, 100)
    buf = ForwardBuffer((x[:, i : i + 7] for i in range(0, 100, 7)), 2, 103)
    np.testing.assert_array_equal(buf.get(-3, 5), np.pad(x[:, :5], ((0, 0), (3, 0))))
    assert buf.end < 20  # read only what was asked (plus one block)
    buf.release(40)
    np.testing.assert_array_equal(buf.get(40, 103), np.pad(x[:, 40:], ((0, 0), (0, 3))))
    with pytest.raises(ValueError, match="released"):
        buf.get(39, 50)


def test_overlap_add_emits_final_samples():
    acc = OverlapAdd((1,), 10)
    acc.add(0, np.ones((1, 6), np.float32))
    acc.add(4, np.ones((1, 8), np.float32))  # cut at the length
    np.testing.assert_array_equal(acc.emit(4), np.ones((1, 4)))
    np.testing.assert_array_equal(acc.emit(99), [[2, 2, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match="emitted"):
        acc.add(3, np.ones((1, 2), np.float32))


@pytest.mark.parametrize("sr,channels", [(22050, 2), (8000, 1)])
def test_file_stream_equals_in_memory(upsampler, tmp_path, sr, channels):
    """Small blocks (0.37 s) put block boundaries everywhere: reading, soxr's stream, window and decode
    spans, output blocks. The result equals the in-memory path within float rounding."""
    src, dst = tmp_path / "in.flac", tmp_path / "out.wav"
    sf.write(src, tones(sr, 2.5, channels).T, sr, subtype="PCM_24")
    info = upsampler.upsample_file(src, dst, block_seconds=0.37, steps=2, seed=5, prompt="a synth")
    wav, sr_read = load_audio(src, target_sr=None)
    ref, ref_info = upsampler.upsample_with_info(wav, sr_read, steps=2, seed=5, prompt="a synth")
    out, sr_out = sf.read(dst, dtype="float32", always_2d=True)
    assert sr_out == 44100 and out.shape == (round(wav.shape[1] * 44100 / sr), channels)
    np.testing.assert_allclose(out.T, ref, atol=1e-5)
    assert info.rolloff_hz == ref_info.rolloff_hz and info.band_edge_hz == ref_info.band_edge_hz
    assert info.input_sr == sr and info.channels == channels


@pytest.mark.slow
def test_memory_held_does_not_grow_with_length(upsampler, tmp_path, monkeypatch):
    """The largest input and output spans held at any time are the same (up to one read block) for 3 s and
    12 s of audio: a read block (1 s) plus about one window, never the whole input."""
    held = {"in": 0, "out": 0}

    class SpyIn(ForwardBuffer):
        def get(self, start, end):
            seg = super().get(start, end)
            held["in"] = max(held["in"], self.buf.shape[1])
            return seg

    class SpyOut(OverlapAdd):
        def add(self, start, values):
            super().add(start, values)
            held["out"] = max(held["out"], self.buf.shape[-1])

    monkeypatch.setattr(pipeline, "ForwardBuffer", SpyIn)
    monkeypatch.setattr(pipeline, "OverlapAdd", SpyOut)
    up = upsampler
    peaks = []
    for seconds in (3.0, 12.0):
        held.update({"in": 0, "out": 0})
        src = tmp_path / f"{seconds:g}.wav"
        sf.write(src, tones(16000, seconds, 1).T, 16000)
        up.upsample_file(
            src,
            tmp_path / f"{seconds:g}_out.wav",
            block_seconds=1.0,
            steps=1,
            cfg_audio=1.0,
            cfg_text=1.0,
            batch_size=2,
        )
        peaks.append(dict(held))
    assert peaks[0]["out"] == peaks[1]["out"] and abs(peaks[0]["in"] - peaks[1]["in"]) <= 44100, peaks
    assert peaks[1]["in"] < 2 * 44100 and peaks[1]["out"] < 44100, peaks  # a block and a window, not 12 s


def test_bad_files_write_nothing(upsampler, tmp_path):
    sr = 16000
    cases = {"silent.wav": np.zeros((sr, 1)), "three.wav": np.full((sr, 3), 0.1), "nan.wav": np.full((sr, 1), np.nan)}
    for name, data in cases.items():
        sf.write(tmp_path / name, data, sr, subtype="FLOAT")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), sr)
    sf.write(tmp_path / "fast.wav", np.full((sr, 1), 0.1), 96000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF nonsense")
    expect = {
        "silent.wav": "silent",
        "three.wav": "3 channels",
        "nan.wav": "NaN",
        "empty.wav": "zero length",
        "fast.wav": "sample rate",
        "broken.wav": "cannot read",
    }
    for name, message in expect.items():
        with pytest.raises(AudioError, match=message):
            upsampler.upsample_file(tmp_path / name, tmp_path / "out" / name, steps=1)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
