"""The output contract (saga_sr.outputs): -o file or folder, existing outputs, writability before work, ordinary
permissions for every written file and folder, recognisable temporaries cleaned after a SIGKILL, and degrade
never clipping silently."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saga_sr.cli import main
from saga_sr.models.checkpoint import export_model
from saga_sr.outputs import TEMP_SUFFIX, clean_stale_temps, new_temp_file

SR = 16000


def tone(seconds=0.5, channels=1, amp=0.3):
    t = np.arange(int(SR * seconds)) / SR
    return np.stack([amp * np.sin(2 * np.pi * 440 * (c + 1) * t) for c in range(channels)], axis=1)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def model(make_tiny_model):
    return make_tiny_model()


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir


def test_export_has_ordinary_permissions_and_replaces_atomically(model, tmp_path, umask_022):
    out = export_model(model, tmp_path / "model")
    assert mode(out) == 0o755 and mode(out / "model.safetensors") == 0o644 and mode(out / "config.json") == 0o644
    export_model(model, out)  # replacing an export leaves no temporaries
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_temporaries_of_a_killed_run_are_cleaned_by_the_next_run(tmp_path, umask_022):
    folder = tmp_path / "out"
    folder.mkdir()
    code = (
        "import os, signal, sys; from saga_sr.outputs import new_temp_file; "
        "new_temp_file(sys.argv[1]); os.kill(os.getpid(), signal.SIGKILL)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder / "a.wav")],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert proc.returncode == -9
    (left,) = folder.iterdir()
    assert left.name.startswith(".a.wav.") and left.name.endswith(TEMP_SUFFIX) and mode(left) == 0o644
    live = new_temp_file(folder / "b.wav")  # a running process's temporary is kept
    sf.write(tmp_path / "in.wav", tone(), SR)
    assert main(["degrade", str(tmp_path / "in.wav"), "-o", str(folder), "--cutoff", "3000"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted([live.name, "degrade.jsonl", "in.wav"])
    assert clean_stale_temps(folder) == []


def test_degrade_file_mode_and_existing_outputs(tmp_path, capsys):
    sf.write(tmp_path / "in.wav", tone(), SR)
    target = tmp_path / "lr.wav"
    assert main(["degrade", str(tmp_path / "in.wav"), "-o", str(target), "--cutoff", "3000"]) == 0
    assert target.is_file() and sf.info(target).subtype == "FLOAT"
    assert not (tmp_path / "degrade.jsonl").exists()  # file mode: the JSON line goes to stdout only
    first = target.read_bytes()
    assert main(["degrade", str(tmp_path / "in.wav"), "-o", str(target), "--cutoff", "3000"]) == 2
    assert main(["degrade", str(tmp_path / "in.wav"), "-o", str(target), "--cutoff", "3000", "--skip-existing"]) == 0
    assert target.read_bytes() == first
    assert main(["degrade", str(tmp_path / "in.wav"), "-o", str(target), "--cutoff", "5000", "--overwrite"]) == 0
    assert target.read_bytes() != first


def test_degrade_of_a_loud_recording_never_clips(tmp_path, capsys):
    """A simulated LR can exceed full scale (Gibbs ringing of a near-full-scale square wave): float keeps it,
    an integer format refuses it, --scale-to-fit scales it and reports the gain."""
    t = np.arange(SR) / SR
    loud = 0.99 * np.sign(np.sin(2 * np.pi * 200 * t))[:, None]
    sf.write(tmp_path / "loud.wav", loud, SR, subtype="FLOAT")
    src = str(tmp_path / "loud.wav")
    assert (
        main(["degrade", src, "-o", str(tmp_path / "f.wav"), "--cutoff", "2000", "--filter", "cheby1", "--order", "8"])
        == 0
    )
    rec = json.loads(capsys.readouterr().out)
    peak = np.abs(sf.read(tmp_path / "f.wav")[0]).max()
    assert peak > 1.05 and rec["peak"] == pytest.approx(peak, rel=1e-6) and rec["gain"] == 1.0
    assert (
        main(["degrade", src, "-o", str(tmp_path / "i.flac"), "--cutoff", "2000", "--filter", "cheby1", "--order", "8"])
        == 1
    )
    err = capsys.readouterr().err
    assert "above full scale" in err and "--scale-to-fit" in err and not (tmp_path / "i.flac").exists()
    assert (
        main(
            [
                "degrade",
                src,
                "-o",
                str(tmp_path / "i.flac"),
                "--cutoff",
                "2000",
                "--filter",
                "cheby1",
                "--order",
                "8",
                "--scale-to-fit",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    rec = json.loads(captured.out)
    y = sf.read(tmp_path / "i.flac")[0]
    assert rec["gain"] == pytest.approx(1 / peak, rel=1e-5) and "scaled by" in captured.err
    assert np.abs(y).max() <= 1.0 and np.sum(np.abs(y) >= 0.9999) <= 2  # scaled, not clipped
    ref = sf.read(tmp_path / "f.wav")[0]
    assert np.max(np.abs(y - ref * rec["gain"])) < 1e-4


@pytest.mark.slow
def test_upsample_output_contract(tmp_path, model_dir, capsys, umask_022):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b"):
        sf.write(src / f"{name}.wav", tone(), SR)
    run = ["--model", str(model_dir), "--steps", "1", "-q", "--device", "cpu"]
    assert main(["upsample", str(src / "a.wav"), "-o", str(tmp_path / "one.wav")] + run) == 0
    assert (tmp_path / "one.wav").is_file() and mode(tmp_path / "one.wav") == 0o644
    out = tmp_path / "out"
    assert main(["upsample", str(src), "-o", str(out)] + run) == 0
    assert mode(out) == 0o755 and all(mode(p) == 0o644 for p in out.iterdir())
    kept = (out / "a.wav").stat().st_mtime_ns
    (out / "b.wav").unlink()  # an interrupted batch
    capsys.readouterr()
    assert main(["upsample", str(src), "-o", str(out)] + run) == 2
    assert "already exists" in capsys.readouterr().err and not (out / "b.wav").exists()
    assert main(["upsample", str(src), "-o", str(out), "--skip-existing"] + run) == 0
    assert "1 ok, 0 failed, 1 kept" in capsys.readouterr().out
    assert (out / "b.wav").is_file() and (out / "a.wav").stat().st_mtime_ns == kept
    assert main(["upsample", str(src), "-o", str(out), "--overwrite"] + run) == 0
    assert (out / "a.wav").stat().st_mtime_ns != kept


def test_unwritable_output_is_refused_before_the_model_loads(tmp_path, capsys, monkeypatch):
    sf.write(tmp_path / "a.wav", tone(), SR)
    (tmp_path / "blocker").write_text("a file where a folder is needed")
    import saga_sr.models.checkpoint as export

    monkeypatch.setattr(export, "load_model", lambda *a, **k: pytest.fail("the model must not load"))
    assert (
        main(
            [
                "upsample",
                str(tmp_path / "a.wav"),
                "-o",
                str(tmp_path / "blocker" / "x"),
                "--model",
                str(tmp_path / "nomodel"),
            ]
        )
        == 2
    )
    assert "blocker is a file" in capsys.readouterr().err
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert (
            main(["upsample", str(tmp_path / "a.wav"), "-o", str(locked / "o"), "--model", str(tmp_path / "nomodel")])
            == 2
        )
        assert "not writable" in capsys.readouterr().err


def test_check_writable_tries_the_folder_itself_and_leaves_nothing(tmp_path, monkeypatch):
    """os.access says yes to root everywhere; a folder the file system refuses (/proc, a read-only mount) is
    found by making and removing an empty folder in it, for every command's outputs alike."""
    import tempfile

    from saga_sr.errors import OutputError
    from saga_sr.outputs import check_writable

    check_writable([tmp_path / "new" / "a.wav", tmp_path / "b.wav"])
    assert list(tmp_path.iterdir()) == []  # the probes are gone, no folder was created

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(OutputError, match="not writable"):
        check_writable([tmp_path / "new" / "a.wav"])
