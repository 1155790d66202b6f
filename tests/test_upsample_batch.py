"""`saga-sr upsample --processes N` / `--devices` / torchrun: the layout rules, the sharding, and a real
2-process batch (one corrupt file) killed and resumed with --skip-existing, equal to a single-process run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from saga_sr.cli import main
from saga_sr.inference.batch import Layout, check_relaunchable, plan_digest, plan_layout, shard, summary_line
from saga_sr.models.checkpoint import export_model

ROOT = Path(__file__).resolve().parent.parent
TORCHRUN = {"TORCHELASTIC_RUN_ID": "x", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "RANK": "3"}


def test_shards_are_disjoint_cover_everything_and_balanced():
    items = list(range(41))
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(i for p in parts for i in p) == items
    assert [len(p) for p in parts] == [14, 14, 13]
    assert shard(items, 1, 3)[:3] == [1, 4, 7]
    assert shard([5], 1, 2) == []  # more ranks than files: a rank may have nothing to do


def test_plan_digest_tells_different_plans_apart():
    a = [(Path("in/a.wav"), Path("out/a.wav")), (Path("in/b.wav"), Path("out/b.wav"))]
    assert plan_digest(a) == plan_digest(list(a)) and plan_digest(a) != plan_digest(a[:1])
    assert plan_digest(a) != plan_digest(a[::-1])


def test_layout_for_processes_devices_and_torchrun():
    assert plan_layout("cpu", 1, None, {}) is None
    assert plan_layout("cpu", 2, None, {}) == Layout("cpu", 2, 1, torchrun=False)
    assert plan_layout("cuda", 2, None, {}, gpu_count=4) == Layout("gpu", 2, 1, torchrun=False)
    assert plan_layout("cuda", 1, [1, 3], {}, gpu_count=4) == Layout("gpu", [1, 3], 1, torchrun=False)
    assert plan_layout("cuda", 1, [2], {}, gpu_count=4) is None  # one GPU: the ordinary single process
    assert plan_layout("cpu", 1, None, TORCHRUN) == Layout("cpu", 2, 2, torchrun=True)
    assert plan_layout("cuda", 1, None, TORCHRUN).world_size == 4
    assert plan_layout("cpu", 1, None, {**TORCHRUN, "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"}) is None


@pytest.mark.parametrize(
    "device, processes, devices, environ, words",
    [
        ("cpu", 2, None, TORCHRUN, "torchrun starts the processes"),
        ("cuda:1", 1, None, TORCHRUN, "local rank"),
        ("cpu", 1, [0, 1], {}, "--device cuda"),
        ("cuda", 3, [0, 1], {}, "--processes 3"),
        ("cuda", 1, [0, 4], {}, "2 CUDA device(s)"),
        ("cuda", 1, [1, 1], {}, "each named once"),
        ("cuda:1", 2, None, {}, "--devices"),
        ("cuda", 3, None, {}, "2 CUDA device(s)"),
        ("mps", 2, None, {}, "--device mps"),
    ],
)
def test_layout_refusals_name_the_option(device, processes, devices, environ, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        plan_layout(device, processes, devices, environ, gpu_count=2)


def test_the_relaunched_command_line_must_be_saga_sr():
    check_relaunchable("/usr/bin/saga-sr", None)
    check_relaunchable("-m", "saga_sr.__main__")
    with pytest.raises(ValueError, match="python -m saga_sr upsample"):
        check_relaunchable("/usr/bin/pytest", "pytest.__main__")


def test_in_process_call_with_processes_is_refused_before_anything_is_written(tmp_path, batch, capsys):
    """Lightning would rerun pytest's command line as the second process: refused, exit 2, no output."""
    code = main(
        [
            "upsample",
            str(batch / "in"),
            "-o",
            str(tmp_path / "out"),
            "--model",
            str(batch / "model"),
            "--device",
            "cpu",
            "--processes",
            "2",
        ]
    )
    assert code == 2 and "rerun this command line" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_devices_option_is_checked_by_argparse(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["upsample", str(tmp_path), "-o", str(tmp_path / "o"), "--devices", "0,x"])
    assert exc.value.code == 2 and "--devices" in capsys.readouterr().err


def test_summary_line_is_the_single_process_one():
    assert summary_line(3, [], 2) == "upsample: 3 ok, 0 failed, 2 kept (existing)"
    assert summary_line(3, ["in/x.wav"], 0) == "upsample: 3 ok, 1 failed, 0 kept (existing) (in/x.wav)"


def test_rank_zero_collects_every_rank_and_stops_when_one_crashed():
    """Results travel through the store; a rank that exited without reporting stops rank 0's wait (instead of
    waiting for days), one that reported and then exited does not."""
    import torch.distributed as dist

    from saga_sr.inference import batch as batch_mod

    store = dist.HashStore()
    assert batch_mod.gather_results(store, 1, 2, 3, [[4, "in/x.wav", "in/x.wav: bad"]], dict) is None
    got = batch_mod.gather_results(store, 0, 2, 5, [], lambda missing: {r: "ended" for r in missing})
    assert [(r["rank"], r["ok"], len(r["failed"])) for r in got] == [(0, 5, 0), (1, 3, 1)]

    fresh = dist.HashStore()
    t0 = time.monotonic()
    with pytest.raises(batch_mod.RankEnded, match="rank 1 ended with exit code -9"):
        batch_mod.gather_results(
            fresh, 0, 2, 5, [], lambda missing: {r: f"rank {r} ended with exit code -9" for r in missing}
        )
    assert time.monotonic() - t0 < 5


# ---- a real batch of 24 files over 2 CPU processes ------------------------------------------------------------
N_FILES, BAD = 24, "f07.wav"


@pytest.fixture(scope="module")
def batch(tmp_path_factory, make_tiny_model):
    root = tmp_path_factory.mktemp("batch")
    export_model(make_tiny_model(), root / "model")
    rng = np.random.default_rng(0)
    (root / "in").mkdir()
    for i in range(N_FILES):
        sr = (8000, 16000)[i % 2]
        sf.write(root / "in" / f"f{i:02d}.wav", 0.2 * rng.standard_normal((sr // 4, 1)), sr)
    (root / "in" / BAD).write_bytes(b"RIFF, but not audio")
    return root


def _command(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "saga_sr",
        "upsample",
        str(root / "in"),
        "-o",
        str(out),
        "--model",
        str(root / "model"),
        "--steps",
        "1",
        "--device",
        "cpu",
        "--seed",
        "3",
        *extra,
    ]


def _lines(err: str) -> list[tuple[int, int, str]]:
    """(done, total, input) for each per-file line: '[k/N] IN -> OUT (...)' or '[k/N] FAILED IN: reason'."""
    found = re.findall(r"^\[(\d+)/(\d+)\] (?:FAILED )?(\S+?)(?::| ->) ", err, flags=re.MULTILINE)
    return [(int(k), int(n), Path(src).name) for k, n, src in found]


def _wait_gone(group: int) -> None:
    """Until every process of the group has ended (a killed process may finish the rename it was in)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _outputs(out: Path) -> set[str]:
    return {p.name for p in out.glob("*.wav")} if out.is_dir() else set()


@pytest.mark.slow
def test_two_processes_killed_and_resumed_equal_one_process(batch: Path, tmp_path: Path):
    """24 files, one corrupt, 2 CPU processes: killed (SIGKILL to both) after some outputs, resumed with
    --skip-existing: every good file written exactly once over the two runs, the corrupt one failed alone with
    its reason (exit 1), the progress counts the whole batch, and every output equals the single-process one
    (bit for bit, at the same threads per process)."""
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "first.err", "w") as err:
        proc = subprocess.Popen(
            _command(batch, out, "--processes", "2"),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 240
        while len(_outputs(out)) < 6 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole batch: Lightning's second process too
        proc.wait()
        _wait_gone(proc.pid)
    first = _outputs(out)
    good = {f"f{i:02d}.wav" for i in range(N_FILES)} - {BAD}
    assert 6 <= len(first) < len(good), "the batch was not interrupted mid-way"
    first_lines = [src for _, _, src in _lines((tmp_path / "first.err").read_text())]
    assert len(first_lines) == len(set(first_lines))  # no file twice, even in the killed run

    resumed = subprocess.run(
        _command(batch, out, "--processes", "2", "--skip-existing"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 1, resumed.stderr[-3000:]
    lines = _lines(resumed.stderr)
    todo = N_FILES - len(first)
    assert sorted(src for _, _, src in lines) == sorted((good - first) | {BAD}), resumed.stderr  # each once
    assert sorted(k for k, _, _ in lines) == list(range(1, todo + 1)) and {n for _, n, _ in lines} == {todo}
    assert re.search(rf"FAILED \S*{BAD}: cannot read audio", resumed.stderr)
    assert f"{todo - 1} ok, 1 failed, {len(first)} kept (existing)" in resumed.stdout and BAD in resumed.stdout
    assert _outputs(out) == good
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the killed run's temporaries removed

    ref = tmp_path / "ref"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank: CPU matrix products round differently with other thread counts
    try:
        assert main(_command(batch, ref, "-q")[3:]) == 1  # the same command in one process
    finally:
        torch.set_num_threads(threads)
    for name in sorted(good):
        a, sr_a = sf.read(out / name, always_2d=True)
        b, sr_b = sf.read(ref / name, always_2d=True)
        assert sr_a == sr_b == 44100 and np.array_equal(a, b), name


@pytest.mark.slow
def test_a_failure_on_another_rank_still_ends_in_rank_zeros_summary(batch: Path, tmp_path: Path):
    """Rank 1 gets the corrupt file and a short one and finishes first; rank 0 still upsamples its long files and
    prints the summary with exit code 1 (a non-zero exit of rank 1 makes Lightning kill rank 0 mid-batch)."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    for name, seconds in (("a.wav", 8), ("c.wav", 8), ("d.wav", 0.1), ("e.wav", 8)):  # rank 0: a, c, e
        sf.write(src / name, 0.2 * rng.standard_normal((int(16000 * seconds), 1)), 16000)
    (src / "b.wav").write_bytes(b"RIFF, but not audio")  # rank 1: b, d
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "saga_sr",
            "upsample",
            str(src),
            "-o",
            str(tmp_path / "out"),
            "--model",
            str(batch / "model"),
            "--steps",
            "1",
            "--device",
            "cpu",
            "--processes",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "upsample: 4 ok, 1 failed, 0 kept (existing)" in proc.stdout and "b.wav" in proc.stdout
    assert _outputs(tmp_path / "out") == {"a.wav", "c.wav", "d.wav", "e.wav"}


def test_a_rank_without_files_runs_an_empty_loop():
    """More processes than files (`--processes 3` on one file): Lightning refuses a zero-length loader, so a rank
    with nothing to do gets one no-op item instead of a traceback."""
    from saga_sr.inference.batch import predict_module

    calls = []
    module = predict_module(
        [(Path("in/a.wav"), Path("out/a.wav"))], str, "plan", lambda device: calls.append, quiet=True, setup_line=None
    )
    module.part = []
    items = list(module.predict_dataloader())
    assert len(items) == 1
    for item in items:
        module.predict_step(item)
    assert module.done == [] and module.failed == [] and calls == []
