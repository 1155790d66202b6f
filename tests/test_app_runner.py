"""saga_sr.app.runner without a served page: the page gives no target roll-off unless one is set (as `upsample`
without the option), and a running job ends at its next step when the page stops, writing nothing."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from saga_sr.app.runner import Cancelled, JobGate, Settings, run_uploads, split_uploads
from saga_sr.inference.pipeline import Upsampler


def band_limited(cfg: dict) -> None:
    cfg["model"]["diffusion"]["target_band_limit"] = True


@pytest.fixture(scope="module")
def up(make_tiny_model):
    """The tiny config with a random DiT and the band limit on (as saga-sr-mini's config)."""
    return Upsampler(make_tiny_model(sample_size=4096, edit=band_limited, randomize=("dit",)))


def write_noise(path, sr: int, seconds: float):
    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(int(sr * seconds)), sr)
    return path


def test_the_page_gives_no_target_unless_one_is_set(up, tmp_path):
    uploads = split_uploads([write_noise(tmp_path / "a.wav", 16000, 0.3)])
    none_given = run_uploads(up, uploads, tmp_path / "o1", Settings(steps=1))[0].result.info
    assert Settings().target_rolloff is None and none_given.target_band_limit is False
    given = run_uploads(up, uploads, tmp_path / "o2", Settings(steps=1, target_rolloff=12000.0))[0].result.info
    assert given.target_band_limit is True and given.band_limit_hz == 12000.0


def test_a_running_job_ends_when_the_page_stops_and_writes_nothing(up, tmp_path):
    """What `saga-sr app` does on Ctrl+C: stop_and_wait returns once the job has left the model (a worker
    thread still inside torch at exit aborts the process: 'terminate called without an active exception')."""
    gate, started, outcome = JobGate(), threading.Event(), {}
    uploads = split_uploads([write_noise(tmp_path / "long.wav", 16000, 30.0)])

    def job():
        try:
            with gate.running():
                run_uploads(
                    up,
                    uploads,
                    tmp_path / "out",
                    Settings(steps=50, batch_size=1),
                    report=lambda f, text: started.set() if "windows" in text else None,
                    gate=gate,
                )
        except Cancelled as exc:
            outcome["cancelled"] = exc

    worker = threading.Thread(target=job)
    worker.start()
    assert started.wait(60)
    assert gate.stop_and_wait(30.0)
    worker.join(5)
    assert not worker.is_alive() and "cancelled" in outcome
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    with pytest.raises(Cancelled):  # a stopping page starts no new job
        with gate.running():
            pass


def test_the_page_refuses_a_target_upsample_refuses():
    gr = pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")
    from saga_sr.app.page import given_target

    assert given_target(False, 1.5) is None and given_target(True, 0.5) == 0.5
    for bad in (1.5, 0.0, 0.01, 30000.0, float("nan"), None):
        with pytest.raises(gr.Error, match="target roll-off"):
            given_target(True, bad)
