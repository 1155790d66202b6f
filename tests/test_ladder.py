"""saga_sr.experiments.ladder / report and `saga-sr ladder`: checks, resume bookkeeping, verdicts, tiny smoke run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import soundfile as sf

from saga_sr.experiments.ladder import LadderSettings, TrainRequest, run_ladder

DATA = Path(__file__).parent / "data"
FILES = [f"music/clip{i}.flac" for i in range(4)]


def _bad_config(tmp_path: Path) -> Path:
    from saga_sr.config import load_config

    cfg = load_config("tiny")
    cfg["model"]["diffusion"]["config"]["num_heads"] = 3  # 128 is not divisible by 3
    path = tmp_path / "bad_heads.json"
    path.write_text(json.dumps(cfg))
    return path


class FakeTraining:
    """Writes what training writes (metrics.csv, last.ckpt, model/); can stop once to simulate a crash."""

    def __init__(self, fail_on: str | None = None, error: type[BaseException] = KeyboardInterrupt) -> None:
        self.calls: list[TrainRequest] = []
        self.fail_on, self.error = fail_on, error

    def __call__(self, req: TrainRequest) -> Path:
        self.calls.append(req)
        out = req.out_dir
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "checkpoints" / "last.ckpt").write_bytes(b"ckpt")
        if self.fail_on and self.fail_on in str(out):
            self.fail_on = None
            raise self.error("simulated interruption")
        (out / "model").mkdir(exist_ok=True)
        level = {"A0": 1.0, "A1": 0.5}.get(req.config_path.parent.parent.name, 0.8)
        with open(out / "metrics.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["epoch", "step", "train/loss", "val/loss", "val/lsd", "val/si_sdr"])
            for step in range(req.max_steps):
                w.writerow([0, step, level * (1 + 1 / (step + 1)), "", "", ""])
            w.writerow([0, req.max_steps - 1, "", level * 1.3, 2.0 * level, -level])
        return out


def fake_eval(model_dir: Path, val_dir: Path, out_dir: Path, settings, seed: int):
    """per_clip.csv where A1 is clearly better than A0 (0.5 lower LSD on every clip, tiny seed noise)."""
    rung = model_dir.parent.parent.parent.name
    base = {"A0": 2.0, "A1": 1.5}.get(rung, 1.9)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "per_clip.csv", "w", newline="") as fh:
        w = csv.DictWriter(
            fh, fieldnames=["domain", "file", "cutoff_hz", "system", "lsd", "lsd_hf", "lsd_lf", "si_sdr"]
        )
        w.writeheader()
        for i, f in enumerate(FILES):
            for c in settings.eval_cutoffs:
                lsd = base + 0.1 * i + 0.01 * seed
                w.writerow(
                    dict(
                        domain="music",
                        file=f,
                        cutoff_hz=c,
                        system="ours",
                        lsd=lsd,
                        lsd_hf=lsd + 0.3,
                        lsd_lf=0.2,
                        si_sdr=5.0 - lsd,
                    )
                )
                w.writerow(
                    dict(
                        domain="music",
                        file=f,
                        cutoff_hz=c,
                        system="ours_no_lfr",
                        lsd=lsd + 0.2 + 0.01 * i,
                        lsd_hf=lsd + 0.3,
                        lsd_lf=2.0,
                        si_sdr=1.0 - lsd,
                    )
                )


def _settings(tmp_path: Path, rungs, seeds=(0,), **kw) -> LadderSettings:
    for d in ("train", "val"):
        (tmp_path / d).mkdir(exist_ok=True)
    return LadderSettings(
        train_dir=str(tmp_path / "train"),
        val_dir=str(tmp_path / "val"),
        rungs=tuple(rungs),
        max_steps=20,
        seeds=tuple(seeds),
        scale="tiny",
        eval_cutoffs=(4000.0,),
        bench_steps=0,
        **kw,
    )


def test_invalid_rung_is_reported_and_the_ladder_goes_on(tmp_path):
    bad = _bad_config(tmp_path)
    train = FakeTraining(fail_on="A1", error=RuntimeError)
    report = run_ladder(
        _settings(tmp_path, ["A0", str(bad), "nonsense", "A1", "B1"]),
        tmp_path / "out",
        train_fn=train,
        eval_fn=fake_eval,
    )
    assert [c.config_path.parent.parent.name for c in train.calls] == ["A0", "A1", "B1"]
    text = report.read_text()
    assert "bad_heads" in text and "num_heads" in text and "nonsense" in text
    assert "A1 seed 0: training failed: RuntimeError: simulated interruption" in text
    assert "| B1 | done |" in text
    rec = json.loads((tmp_path / "out" / "runs" / "bad_heads" / "seed0" / "record.json").read_text())
    assert rec["status"] == "invalid" and any("num_heads" in p for p in rec["problems"])


def test_interrupted_ladder_resumes_at_the_rung_and_checkpoint(tmp_path):
    settings = _settings(tmp_path, ["A0", "A1"])
    train = FakeTraining(fail_on="A1")
    with pytest.raises(KeyboardInterrupt):
        run_ladder(settings, tmp_path / "out", train_fn=train, eval_fn=fake_eval)
    assert (tmp_path / "out" / "runs" / "A0" / "seed0" / "record.json").is_file()
    again = FakeTraining()
    run_ladder(settings, tmp_path / "out", train_fn=again, eval_fn=fake_eval)
    assert len(again.calls) == 1  # A0 is done and skipped
    req = again.calls[0]
    assert req.config_path.parent.parent.name == "A1"
    assert req.resume == tmp_path / "out" / "runs" / "A1" / "seed0" / "train" / "checkpoints" / "last.ckpt"
    third = FakeTraining()
    run_ladder(settings, tmp_path / "out", train_fn=third, eval_fn=fake_eval)
    assert third.calls == []


def test_report_numbers_and_verdicts(tmp_path):
    settings = _settings(tmp_path, ["A0", "A1"], seeds=(0, 1))
    report = run_ladder(settings, tmp_path / "out", train_fn=FakeTraining(), eval_fn=fake_eval)
    rows = list(csv.DictReader(open(tmp_path / "out" / "ladder_metrics.csv")))
    a0 = next(r for r in rows if r["rung"] == "A0" and r["seed"] == "0")
    assert float(a0["ours_lsd_4000"]) == pytest.approx(2.0 + 0.15)  # mean over the four clips of per_clip.csv
    assert a0["disable_val_lowfreq_replace"] == "True" and a0["compute_rolloff"] == "False"
    text = report.read_text()
    assert "excludes 0: A0 is worse" in text  # two seeds, a 0.5 LSD gap, no seed noise in the gap
    assert "Answer: **A1**" in text
    assert "lsd_lf @ 4000 Hz Δ(with − without) -1.800" in text and "helped" in text
    assert (tmp_path / "out" / "loss_curves.png").stat().st_size > 5_000


def test_one_seed_says_not_enough_evidence(tmp_path):
    report = run_ladder(_settings(tmp_path, ["A0", "A1"]), tmp_path / "out", train_fn=FakeTraining(), eval_fn=fake_eval)
    text = report.read_text()
    assert "One seed only" in text
    assert "one seed, so seed-to-seed noise is unmeasured" in text and "not enough evidence" in text


def test_ladder_cli_help(capsys):
    from saga_sr.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["ladder", "--help"])
    assert exc.value.code == 0
    assert "--rungs" in capsys.readouterr().out


@pytest.mark.slow
def test_tiny_ladder_smoke(tmp_path, capsys):
    """CI smoke test: the tiny ladder on three short clips with a few steps, then a rerun that resumes."""
    from saga_sr.cli import main

    for name, split, sec in (
        ("guitar_stereo", "train", 1.0),
        ("drums_stereo", "train", 1.0),
        ("guitar_mono", "val", 0.8),
    ):
        x, sr = sf.read(DATA / f"{name}.flac", dtype="float32")
        (tmp_path / split).mkdir(exist_ok=True)
        sf.write(tmp_path / split / f"{name}.flac", x[: int(sec * sr)], sr)
    bad = _bad_config(tmp_path)
    out = tmp_path / "ladder"
    argv = [
        "ladder",
        "--train_dir",
        str(tmp_path / "train"),
        "--val_dir",
        str(tmp_path / "val"),
        "--rungs",
        f"A0,F0,{bad}",
        "--max_steps",
        "2",
        "--scale",
        "tiny",
        "--out",
        str(out),
        "--cutoffs",
        "4000",
        "--eval_steps",
        "1",
        "--bench_steps",
        "1",
    ]
    assert main(argv) == 0
    text = (out / "ladder_report.md").read_text()
    rows = {r["rung"]: r for r in csv.DictReader(open(out / "ladder_metrics.csv"))}
    assert rows["A0"]["status"] == rows["F0"]["status"] == "done" and rows["bad_heads"]["status"] == "invalid"
    assert int(rows["F0"]["params_dit"]) > int(rows["A0"]["params_dit"]) > 0
    assert rows["F0"]["disable_caption"] == "True" and float(rows["A0"]["peak_memory_mb"]) > 0
    assert float(rows["A0"]["bench_step_s"]) > 0
    for rung in ("A0", "F0"):  # the report's numbers are the per-rung CSVs' numbers
        per_clip = list(csv.DictReader(open(out / "runs" / rung / "seed0" / "eval" / "per_clip.csv")))
        ours = [float(r["lsd"]) for r in per_clip if r["system"] == "ours"]
        assert float(rows[rung]["ours_lsd_4000"]) == pytest.approx(sum(ours) / len(ours))
        assert f"| {rung} | done |" in text and f"{sum(ours) / len(ours):.3f}" in text
        assert (out / "runs" / rung / "seed0" / "train" / "metrics.csv").is_file()
    assert (out / "loss_curves.png").is_file()
    capsys.readouterr()
    assert main(argv) == 0  # resume: everything is done, nothing retrains
    assert "already done, skipped" in capsys.readouterr().err


def test_a_started_run_resumes_with_the_config_it_started_with(tmp_path):
    settings = _settings(tmp_path, ["A0"])
    with pytest.raises(KeyboardInterrupt):
        run_ladder(settings, tmp_path / "out", train_fn=FakeTraining(fail_on="A0"), eval_fn=fake_eval)
    saved_path = tmp_path / "out" / "runs" / "A0" / "seed0" / "config.json"
    saved = json.loads(saved_path.read_text())
    saved["_comment"] = "the definition this run started with"  # as if derive_rung changed meanwhile
    saved_path.write_text(json.dumps(saved))
    again = FakeTraining()
    run_ladder(settings, tmp_path / "out", train_fn=again, eval_fn=fake_eval)
    assert json.loads(again.calls[0].config_path.read_text())["_comment"] == saved["_comment"]
    rec = json.loads((tmp_path / "out" / "runs" / "A0" / "seed0" / "record.json").read_text())
    assert rec["status"] == "done" and "differs from the config this run started with" in rec["config_note"]


def test_rung_comparisons_are_verdicts_rendered_as_sentences(tmp_path):
    from saga_sr.experiments.report import Verdict, collect, compare_runs

    for seeds, verdict in (((0, 1), Verdict.CALLED), ((0,), Verdict.ONE_SEED)):
        out = tmp_path / f"s{len(seeds)}"
        run_ladder(_settings(tmp_path, ["A0", "A1"], seeds=seeds), out, train_fn=FakeTraining(), eval_fn=fake_eval)
        records = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/seed*/record.json"))]
        rows = collect(out, records, [4000.0])
        worse = compare_runs(out, rows, "A1", "A0", "lsd", 4000.0)
        assert worse.verdict is verdict and not worse.better and worse.mean_b - worse.mean_a == pytest.approx(0.5)
        assert worse.reliably_worse == (verdict is Verdict.CALLED)  # one seed: a worse mean is not called
        assert worse.sentence().startswith("lsd @ 4000 Hz: A1 1.6") and "A0 is worse" in worse.sentence()
        better = compare_runs(out, rows, "A0", "A1", "lsd", 4000.0)
        assert better.better and not better.reliably_worse
    missing = compare_runs(out, rows, "A0", "B1", "lsd", 4000.0)
    assert missing.verdict is Verdict.NO_RUNS and "cannot compare" in missing.sentence()
