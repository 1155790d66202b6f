"""`saga-sr evaluate --processes N`: the test files spread over ranks, the tables as one process writes them."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from saga_sr.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


def _test_set(root: Path) -> Path:
    """Five short clips in two domains and one unreadable file (skipped, as in one process)."""
    rng = np.random.default_rng(0)
    for i in range(5):
        folder = root / ("music", "speech")[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        sr = (44100, 22050)[i % 2]
        sf.write(folder / f"c{i}.wav", 0.1 * rng.standard_normal((int(0.3 * sr), 1 + i % 2)), sr)
    (root / "music" / "broken.wav").write_bytes(b"RIFF, but not audio")
    return root


def _args(model: Path, test_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "evaluate",
        "--model",
        str(model),
        "--test-dir",
        str(test_dir),
        "--out",
        str(out),
        "--cutoffs",
        "4000",
        "8000",
        "--steps",
        "1",
        "--perceptual",
        "mel",
        "--plots",
        "2",
        "--seed",
        "5",
        *extra,
    ]


def _rows(path: Path) -> list[dict]:
    """per_clip.csv without its timing column (seconds: wall time, different in every run)."""
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_processes_are_checked_before_anything_is_written(tmp_path, make_model_dir, capsys):
    """--devices without CUDA, and --processes in a process the others cannot rerun (not `saga-sr ...`): one-line
    errors naming the option, exit code 2, no output folder."""
    model, test_dir, out = make_model_dir(), _test_set(tmp_path / "test"), tmp_path / "out"
    assert main(_args(model, test_dir, out, "--devices", "0,1")) == 2
    assert "--devices: GPU indices need CUDA" in capsys.readouterr().err
    assert main(_args(model, test_dir, out, "--processes", "2")) == 2
    assert "`saga-sr evaluate ...`" in capsys.readouterr().err
    assert not out.exists()


def test_a_file_that_fails_on_a_rank_leaves_the_tables_unwritten(tmp_path, make_model_dir, monkeypatch, capsys):
    """Rank 0 names the failed file (scoring raised there, not an unreadable file) and writes no tables, exit 1."""
    from saga_sr.cli import evaluate_cmd
    from saga_sr.inference import batch

    def ranks(files, layout, *, name, digest, make_step, **_):
        bad = name(files[2])
        return [
            {"rank": 0, "ok": 0, "failed": [], "done": []},
            {"rank": 1, "ok": 0, "failed": [[2, bad, f"{bad}: boom"]], "done": []},
        ]

    monkeypatch.setattr(batch, "run_ranks", ranks)
    monkeypatch.setattr(evaluate_cmd, "batch_layout", lambda *_: batch.Layout("cpu", 2, 1, torchrun=False))
    model, test_dir, out = make_model_dir(), _test_set(tmp_path / "test"), tmp_path / "out"
    assert main(_args(model, test_dir, out, "--processes", "2")) == 1
    assert re.search(r"1 test file\(s\) failed \(\S+music/c2\.wav\); no tables written", capsys.readouterr().err)
    assert not (out / "per_clip.csv").exists() and not (out / "results.md").exists()


@pytest.mark.slow
def test_two_processes_write_what_one_process_writes(tmp_path, make_model_dir):
    """2 CPU processes, one thread each: every clip scored by exactly one rank, the unreadable file skipped with
    its note, and per_clip.csv (but its timings), summary.csv and results.md equal to a 1-process run's."""
    model, test_dir = make_model_dir(sample_size=None, jitter=0.05), _test_set(tmp_path / "test")
    out = tmp_path / "two"
    proc = subprocess.run(
        [sys.executable, "-m", "saga_sr", *_args(model, test_dir, out, "--processes", "2")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = re.findall(r"^\[(\d+)/6\] (\S+?)(?::| ?$)", proc.stderr, flags=re.MULTILINE)
    assert sorted(int(k) for k, _ in done) == list(range(1, 7)), proc.stderr
    assert sorted(name for _, name in done) == sorted(
        ["music/broken.wav", "music/c0.wav", "music/c2.wav", "music/c4.wav", "speech/c1.wav", "speech/c3.wav"]
    )

    one = tmp_path / "one"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank: CPU matrix products round differently with other thread counts
    try:
        assert main(_args(model, test_dir, one)) == 0
    finally:
        torch.set_num_threads(threads)
    rows = _rows(one / "per_clip.csv")
    assert len(rows) == 5 * 2 * 5 and _rows(out / "per_clip.csv") == rows
    for name in ("summary.csv", "results.md"):
        assert (out / name).read_text() == (one / name).read_text(), name
    assert "skipped music/broken.wav" in (out / "results.md").read_text()
    assert sorted(p.name for p in out.glob("*.png")) == ["spectrograms_4000hz.png", "spectrograms_8000hz.png"]
