"""End-to-end training runs on the tiny config: outputs, validation metrics, export/load, resume, errors,
a non-finite loss, and a run killed with SIGKILL that resumes from its last checkpoint."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from saga_sr.cli import main as cli_main
from saga_sr.config import load_config
from saga_sr.errors import DataError, SagaError
from saga_sr.models.checkpoint import load_model
from saga_sr.training.run import find_resume_checkpoint, train

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
FAST = dict(
    model_config="tiny",
    sample_size=4096,
    batch_size=2,
    num_workers=0,
    val_steps=2,
    max_val_items=2,
    val_examples=1,
    log_every=1,
    no_progress_bar=True,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data")
    for f in DATA.glob("*.flac"):
        shutil.copy(f, d / f.name)
    (d / "guitar_mono.txt").write_text("a transcript")
    (d / "broken.wav").write_bytes(b"not audio at all")
    return d


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory) -> Path:
    """`saga-sr train` for 4 steps with validation every 2, then the Python API with `resume` to step 6."""
    out = tmp_path_factory.mktemp("run") / "out"
    argv = [
        "train",
        "--train_dir",
        str(data_dir),
        "--val_dir",
        str(data_dir),
        "--model_config",
        "tiny",
        "--output_dir",
        str(out),
        "--max_steps",
        "4",
        "--val_every",
        "2",
        "--sample_size",
        "4096",
        "--batch_size",
        "2",
        "--num_workers",
        "0",
        "--val_steps",
        "2",
        "--max_val_items",
        "2",
        "--val_examples",
        "1",
        "--log_every",
        "1",
        "--no_progress_bar",
    ]
    assert cli_main(argv) == 0
    args = dict(FAST, train_dir=[str(data_dir)], val_dir=[str(data_dir)], output_dir=str(out), val_every=2)
    assert train(max_steps=6, resume="last", **args) == out
    return out


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_run_writes_metrics_checkpoints_export_and_plots(run: Path):
    rows = _rows(run / "metrics.csv")
    train_steps = [int(r["step"]) for r in rows if r["train/loss"]]
    assert train_steps == list(range(6))  # the resumed run kept the first run's rows, no duplicates
    val = [r for r in rows if r["val/lsd"]]
    assert len(val) == 3
    for r in val:
        assert float(r["val/lsd"]) > 0 and float(r["val/lsd_hf"]) > 0 and r["val/si_sdr"] and float(r["val/loss"]) > 0
    ckpts = run / "checkpoints"
    assert {p.name for p in ckpts.glob("step=*.ckpt")} == {"step=2.ckpt", "step=4.ckpt", "step=6.ckpt"}
    assert (ckpts / "last.ckpt").resolve().name == "step=6.ckpt"
    assert (run / "model" / "config.json").is_file() and (run / "model" / "model.safetensors").is_file()
    assert (run / "loss_curve.png").stat().st_size > 5000
    assert list((run / "val" / "step=2").glob("*.png")) and list((run / "val" / "step=2").glob("*_pred.wav"))
    # validation says which target roll-off it gave the model: each item's own HR roll-off (tiny.json takes one)
    assert all(0 < float(r["val/target_rolloff_hz"]) <= 22050 for r in val)
    sidecar = json.loads(next((run / "val" / "step=2").glob("*.json")).read_text())
    assert sidecar["target_setting"] == "reference"
    assert sidecar["target_rolloff_hz"] == sidecar["reference_rolloff_hz"] > 0
    assert "broken.wav\tunreadable" in (run / "skipped_files.txt").read_text()


def test_resumed_run_reproduces_the_uninterrupted_losses(run: Path, data_dir: Path, tmp_path: Path):
    """`run` stopped after 4 steps and resumed to 6; the same 6 steps in one go (and without validation, which
    must not disturb training's draws) give the same losses: data order, crops, LR filters, t, noise and
    dropout come from generators seeded by (seed, epoch / step), not from the global RNG."""
    out = train(
        **dict(FAST, train_dir=[str(data_dir)], output_dir=str(tmp_path / "once"), max_steps=6, checkpoint_every=6)
    )

    def losses(folder: Path) -> list[float]:
        return [float(r["train/loss"]) for r in _rows(folder / "metrics.csv") if r["train/loss"]]

    resumed, once = losses(run), losses(out)
    assert len(resumed) == len(once) == 6
    assert resumed == pytest.approx(once, rel=1e-5, abs=1e-7)
    assert len(set(once)) == 6  # a real run: every step's loss differs


def test_resume_restored_optimizer_scheduler_and_ema(run: Path):
    ckpt = torch.load(run / "checkpoints" / "step=6.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 6
    steps = {int(s["step"]) for s in ckpt["optimizer_states"][0]["state"].values()}
    assert steps == {6}  # Adam moments continued from step 4, not restarted
    assert ckpt["lr_schedulers"][0]["last_epoch"] == 6
    assert int(ckpt["state_dict"]["diffusion_ema.step"]) == 6


def test_load_model_from_folder_safetensors_and_ckpt(run: Path):
    a = load_model(run / "model")
    b = load_model(run / "model" / "model.safetensors")
    c = load_model(run / "checkpoints" / "last.ckpt")
    assert not a.training
    sa, sc = a.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sc[k]) for k in sa)  # the export holds the EMA weights, as the .ckpt's EMA
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    key = "model.model.transformer.project_in.weight"
    assert torch.equal(sa[key], ckpt["diffusion_ema.ema_model." + key])
    assert not torch.equal(sa[key], ckpt["diffusion." + key])
    assert all(torch.equal(sa[k], b.state_dict()[k]) for k in sa)


def test_resume_skips_a_truncated_checkpoint(run: Path, tmp_path: Path):
    d = tmp_path / "checkpoints"
    d.mkdir()
    shutil.copy(run / "checkpoints" / "step=4.ckpt", d / "step=4.ckpt")
    (d / "step=6.ckpt").write_bytes((run / "checkpoints" / "step=6.ckpt").read_bytes()[:1000])
    os.symlink("step=6.ckpt", d / "last.ckpt")
    assert find_resume_checkpoint("last", tmp_path).name == "step=4.ckpt"


def test_resume_with_a_different_config_is_refused_before_anything_is_written(run: Path, data_dir, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run / "checkpoints", out / "checkpoints", symlinks=True)
    shutil.copy(run / "run_config.json", out / "run_config.json")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    cfg = load_config("tiny")
    cfg["model"]["diffusion"]["config"]["depth"] += 1
    with pytest.raises(DataError, match=r"different model config; first difference at model\.diffusion\.config\.depth"):
        train(**dict(FAST, model_config=cfg, train_dir=[str(data_dir)], output_dir=str(out), resume="last"))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("case", ["missing", "empty", "bad_config", "bad_max_time"])
def test_bad_inputs_stop_before_training(case, data_dir, tmp_path: Path, capsys):
    out = tmp_path / "out"
    train_dir, config = str(data_dir), "tiny"
    if case == "missing":
        train_dir = str(tmp_path / "nope")
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "silent.txt").write_text("no audio here")
        train_dir = str(tmp_path / "empty")
    elif case == "bad_config":
        bad = (ROOT / "saga_sr" / "configs" / "tiny.json").read_text().replace('"num_heads": 4', '"num_heads": 5')
        config = str(tmp_path / "bad.json")
        Path(config).write_text(bad)
    extra = ["--max_time", "1:30"] if case == "bad_max_time" else []
    rc = cli_main(["train", "--train_dir", train_dir, "--model_config", config, "--output_dir", str(out)] + extra)
    err = capsys.readouterr().err
    assert rc == 2 and "saga-sr train: error:" in err
    assert {
        "missing": "no such folder",
        "empty": "no usable audio",
        "bad_config": "num_heads",
        "bad_max_time": "--max_time",
    }[case] in err
    assert not (out / "checkpoints").exists()


def test_nonfinite_loss_names_step_and_files_and_keeps_last_good_checkpoint(data_dir, tmp_path, monkeypatch):
    import saga_sr.training.module as module

    calls = {"n": 0}
    real = module.flow_loss

    def poisoned(*a, **kw):
        calls["n"] += 1
        loss = real(*a, **kw)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(module, "flow_loss", poisoned)
    out = tmp_path / "out"
    with pytest.raises(SagaError, match=r"non-finite training loss .* at step 2 .*\.flac"):
        train(
            max_steps=10,
            train_dir=[str(data_dir)],
            output_dir=str(out),
            checkpoint_every=1,
            val_every=100,
            **{k: v for k, v in FAST.items()},
        )
    names = {p.name for p in (out / "checkpoints").glob("step=*.ckpt")}
    assert names == {"step=1.ckpt", "step=2.ckpt"}


def test_cli_help():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train_saga_sr.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0
    for flag in (
        "--train_dir",
        "--val_dir",
        "--model_config",
        "--batch_size",
        "--learning_rate",
        "--max_steps",
        "--disable_val_lowfreq_replace",
        "--compute_rolloff",
        "--disable_caption",
        "--resume",
        "--pretrained_ckpt",
        "--strategy",
        "--num_nodes",
        "--val_every",
    ):
        assert flag in proc.stdout
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", "--help"])
    assert exc.value.code == 0


def test_sigkill_mid_training_then_resume(data_dir, tmp_path: Path):
    """The real CLI, killed with SIGKILL once step=4.ckpt exists, resumes from its newest readable checkpoint.
    The config has no roll-off ids, so --compute_rolloff adds the Fourier roll-off conditioner."""
    import json

    from saga_sr.config import read_config

    cfg = read_config("tiny")
    cfg["model"]["conditioning"]["configs"] = cfg["model"]["conditioning"]["configs"][:1]
    cfg["model"]["diffusion"].update(cross_attention_cond_ids=["prompt"], global_cond_ids=[])
    cfg["model"]["diffusion"]["config"]["global_cond_dim"] = 0
    config = tmp_path / "text_only.json"
    config.write_text(json.dumps(cfg))
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(ROOT / "train_saga_sr.py"),
        "--train_dir",
        str(data_dir),
        "--model_config",
        str(config),
        "--sample_size",
        "4096",
        "--batch_size",
        "2",
        "--num_workers",
        "0",
        "--max_steps",
        "100000",
        "--checkpoint_every",
        "2",
        "--log_every",
        "1",
        "--no_progress_bar",
        "--output_dir",
        str(out),
        "--disable_caption",
        "--compute_rolloff",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 150
        while not (out / "checkpoints" / "step=4.ckpt").exists():
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.time() < deadline, "no checkpoint at step 4 in time"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    resumed = find_resume_checkpoint("last", out)
    step = int(resumed.resolve().stem.split("=")[1])
    assert step >= 4
    fast = dict(FAST, model_config=str(config))
    train(
        train_dir=[str(data_dir)],
        val_dir=[str(data_dir)],
        output_dir=str(out),
        max_steps=step + 2,
        resume="last",
        checkpoint_every=2,
        disable_caption=True,
        compute_rolloff=True,
        **fast,
    )
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == step + 2
    rows = _rows(out / "metrics.csv")
    train_steps = [int(r["step"]) for r in rows if r["train/loss"]]
    assert train_steps[-2:] == [step, step + 1] and len(train_steps) == len(set(train_steps))
    assert [r for r in rows if r["val/lsd"]], "the run ends with a validation"
    exported = json.loads((out / "model" / "config.json").read_text())
    assert exported["model"]["diffusion"]["rolloff_conditioner"] == {"type": "fourier"}
    assert load_model(out / "model").rolloff_conditioner is not None


def test_pretrained_ckpt_initialises_from_a_checkpoint(run: Path, data_dir: Path, tmp_path: Path):
    import json

    out = tmp_path / "finetune"
    train(
        max_steps=1,
        train_dir=[str(data_dir)],
        output_dir=str(out),
        val_every=100,
        pretrained_ckpt=str(run / "model" / "model.safetensors"),
        **FAST,
    )
    report = json.loads((out / "pretrained_load_report.json").read_text())
    assert len(report["loaded"]) > 50 and not report["not_loaded"]


def test_parse_max_time():
    from saga_sr.training.run import parse_max_time

    assert parse_max_time(None) is None
    assert parse_max_time("2.5") == {"seconds": 150.0}
    assert parse_max_time("00:12:00:00") == "00:12:00:00"
    for bad in ("0", "-1", "soon", "12:00"):
        with pytest.raises(SagaError, match="--max_time"):
            parse_max_time(bad)


def _copy_run(run: Path, out: Path) -> dict:
    shutil.copytree(run / "checkpoints", out / "checkpoints", symlinks=True)
    shutil.copy(run / "run_config.json", out / "run_config.json")
    return {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "change,field",
    [
        ({"batch_size": 3}, "batch_size"),
        ({"sample_size": 8192}, "sample_size"),
        ({"seed": 5}, "seed"),
        ({"train_dir": [str(DATA)]}, "train_dir"),
    ],
)
def test_resume_that_would_change_the_run_is_refused_naming_it(run: Path, data_dir, tmp_path, change, field):
    out = tmp_path / "run"
    before = _copy_run(run, out)
    args = dict(FAST, train_dir=[str(data_dir)], val_dir=[str(data_dir)], output_dir=str(out), val_every=2, max_steps=8)
    with pytest.raises(DataError, match=rf"differs from the one it continues .* at \S*{field} .*nothing was changed"):
        train(resume="last", **{**args, **change})
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_the_record_of_a_resumed_run_says_what_it_ran(run: Path):
    """The fixture's resume raised --max_steps (allowed): run_config.json holds the resumed invocation."""
    record = json.loads((run / "run_config.json").read_text())
    assert record["args"]["max_steps"] == 6
    assert record["resumed_from"].endswith("step=4.ckpt")
    assert not list((run / "checkpoints").glob("last-v*.ckpt"))


def test_a_run_shorter_than_log_every_names_no_missing_metrics_file(data_dir, tmp_path: Path, capsys):
    out = tmp_path / "out"
    argv = [
        "train",
        "--train_dir",
        str(data_dir),
        "--model_config",
        "tiny",
        "--output_dir",
        str(out),
        "--max_steps",
        "1",
        "--log_every",
        "5",
        "--sample_size",
        "4096",
        "--batch_size",
        "2",
        "--num_workers",
        "0",
        "--no_progress_bar",
    ]
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    if (out / "metrics.csv").is_file():
        assert f"metrics: {out / 'metrics.csv'}" in text
    else:
        assert "no metrics.csv" in text and "--log_every 5" in text and "metrics: " not in text
