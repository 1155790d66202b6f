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
    lines = text.splitlines()
    # two seeds, a 0.5 LSD gap on every clip: the Answers table's bootstrap calls A0 worse, so A1 is enough
    a0 = next(line for line in lines if line.startswith("- A0: vs A1 at 4000 Hz"))
    assert "Δ +0.500 [" in a0 and "(4 clips × 2/2 seeds): **reliably worse** → not enough." in a0
    assert "- A1: the best at 4000 Hz → **enough**." in lines and "- Answer: **A1**" in text
    q1 = next(line for line in lines if line.startswith("| Q1 | A0 → A1 (deeper) | lsd | 4000"))
    assert "| -0.500 |" in q1 and q1.endswith("| **helps** |")  # the same statistic, read from A0's side
    # text / roll-off / LFR are answered once, in the table: no second statistic for them
    assert "What did text" not in text and "Δ(with − without)" not in text and "seed-paired" not in text
    assert 'in the table "Answers: Q1 deepen' in text
    assert (tmp_path / "out" / "loss_curves.png").stat().st_size > 5_000


def test_one_seed_says_not_enough_evidence(tmp_path):
    report = run_ladder(_settings(tmp_path, ["A0", "A1"]), tmp_path / "out", train_fn=FakeTraining(), eval_fn=fake_eval)
    text = report.read_text()
    assert "One seed only" in text
    # a 0.5 worse mean on one seed is not called, so the first rung (A0) counts as enough
    a0 = next(line for line in text.splitlines() if line.startswith("- A0: vs A1 at 4000 Hz Δ +0.500"))
    assert a0.endswith("seeds): not enough evidence (fewer than 2 seeds) → **enough**.")
    assert "- Answer: **A0**" in text


def test_ladder_cli_help(capsys):
    from saga_sr.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["ladder", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--rungs" in text and "--minutes" in text and "--threads" in text and "--report_only" in text
    assert "mini" in text


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


def test_two_processes_share_one_out_under_a_time_budget(tmp_path):
    """Disjoint rungs in two ladder calls (as two processes would), one --minutes budget: the second report
    (and --report_only) answers Q1 from both; steps reached and threads are recorded per run."""
    from saga_sr.experiments.ladder import report_only

    out = tmp_path / "out"
    first = run_ladder(
        _settings(tmp_path, ["A0"], seeds=(0, 1), minutes=1.5, threads=1),
        out,
        train_fn=FakeTraining(),
        eval_fn=fake_eval,
    )
    assert "| Q1 | A0 → A1 (deeper) | lsd | 4000 | n/a" in first.read_text()
    report = run_ladder(
        _settings(tmp_path, ["A1"], seeds=(0, 1), minutes=1.5, threads=1),
        out,
        train_fn=FakeTraining(),
        eval_fn=fake_eval,
    )
    text = report.read_text()
    assert "per run 1.5 min of training wall time, 20 steps at most, 1 torch thread(s);" in text
    q1 = next(line for line in text.splitlines() if line.startswith("| Q1 | A0 → A1 (deeper) | lsd | 4000"))
    assert "| -0.500 |" in q1 and q1.endswith("| **helps** |") and "4 × 2/2" in q1
    q4 = next(line for line in text.splitlines() if line.startswith("| Q4 | A1: LFR off → on | lsd | 4000"))
    assert q4.endswith("| **helps** |")  # fake_eval: LFR lowers every clip's LSD by 0.2 + 0.01 i
    rec = json.loads((out / "runs" / "A0" / "seed1" / "record.json").read_text())
    assert rec["minutes"] == 1.5 and rec["steps_reached"] == 19 and isinstance(rec["threads"], int)
    rows = {r["rung"] + r["seed"]: r for r in csv.DictReader(open(out / "ladder_metrics.csv"))}
    assert set(rows) == {"A00", "A01", "A10", "A11"} and rows["A10"]["steps_reached"] == "19"
    report.unlink()
    assert report_only(out).read_text() == text


def test_question_verdicts_on_synthetic_scores():
    from saga_sr.experiments.report import HELPS, HURTS, bootstrap_difference, verdict

    a = {s: {f"c{i}": 2.0 + 0.1 * i + 0.01 * s for i in range(8)} for s in (0, 1)}
    better = {s: {c: v - 0.5 for c, v in clips.items()} for s, clips in a.items()}
    iv = bootstrap_difference(a, better)
    assert iv.mean == pytest.approx(-0.5) and iv.high < 0 and (iv.clips, iv.seeds_a, iv.seeds_b) == (8, 2, 2)
    assert verdict(iv, lower_is_better=True) == HELPS and verdict(iv, lower_is_better=False) == HURTS
    noisy = {s: {c: v + (0.3 if i % 2 else -0.3) for i, (c, v) in enumerate(clips.items())} for s, clips in a.items()}
    iv = bootstrap_difference(a, noisy)
    assert iv.low < 0 < iv.high and verdict(iv, True).startswith("not enough evidence")
    one_seed = bootstrap_difference({0: a[0]}, {0: better[0]})
    assert one_seed.high < 0 and verdict(one_seed, True) == "not enough evidence (fewer than 2 seeds)"
    assert verdict(one_seed, True, min_seeds=1) == HELPS  # Q4: same samples with and without LFR
    assert verdict(bootstrap_difference(a, {}), True) == "no finished runs of both"


def test_cli_takes_scale_mini_minutes_threads_and_manifests(tmp_path, monkeypatch, capsys):
    import torch

    import saga_sr.experiments.ladder as ladder
    from saga_sr.cli import main

    seen = {}

    def fake_run_ladder(settings, out, log=None):
        seen.update(settings=settings, threads=torch.get_num_threads())
        out.mkdir(parents=True, exist_ok=True)
        (out / "ladder_report.md").write_text("report\n")
        return out / "ladder_report.md"

    monkeypatch.setattr(ladder, "run_ladder", fake_run_ladder)
    for split in ("train", "val"):
        (tmp_path / f"{split}.csv").write_text("path,domain\nclip.flac,music\n")
    argv = ["ladder", "--train-dir", str(tmp_path / "train.csv"), "--val-dir", str(tmp_path / "val.csv")]
    argv += ["--scale", "mini", "--minutes", "2.5", "--rungs", "A0,F2", "--seeds", "0,1", "--out", str(tmp_path / "o")]
    argv += ["--eval_seconds", "3"]
    threads = torch.get_num_threads()
    try:
        assert main([*argv, "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    s = seen["settings"]
    assert (s.scale, s.minutes, s.max_steps, s.threads, s.rungs, s.seeds) == (
        "mini",
        2.5,
        None,
        1,
        ("A0", "F2"),
        (0, 1),
    )
    assert seen["threads"] == 1 and s.eval_seconds == 3.0
    capsys.readouterr()
    assert main([*argv, "--minutes", "0"]) == 2
    assert "--minutes must be a positive number of minutes, got 0.0" in capsys.readouterr().err
    assert main([*argv[:4], str(tmp_path / "nothing.csv")]) == 2
    assert "no such folder or manifest" in capsys.readouterr().err


def test_a_val_manifest_becomes_an_evaluation_folder_of_links(tmp_path):
    from saga_sr.evaluation.evaluate import list_test_files
    from saga_sr.experiments.ladder import eval_folder

    (tmp_path / "audio").mkdir()
    for name, data in (("g_000", "guitar_mono"), ("g_001", "guitar_mono"), ("h_000", "guitar_stereo")):
        (tmp_path / "audio" / f"{name}.flac").write_bytes((DATA / f"{data}.flac").read_bytes())
    (tmp_path / "audio" / "drums_stereo.flac").write_bytes((DATA / "drums_stereo.flac").read_bytes())
    manifest = tmp_path / "val.csv"
    manifest.write_text(
        "path,domain,source\naudio/g_000.flac,music,g.sf2\naudio/drums_stereo.flac,effects,d.ogg\n"
        "audio/g_001.flac,music,g.sf2\n"  # a second chunk of the same recording: not linked
        "audio/h_000.flac,music,g.sf2\n"  # another instrument of the same SF2 file: linked
    )
    settings = LadderSettings(train_dir=str(manifest), val_dir=str(manifest), rungs=("A0",))
    folder = eval_folder(settings, tmp_path / "out")
    assert folder == tmp_path / "out" / "eval_set"
    assert [rel.as_posix() for _path, rel in list_test_files(folder)] == [
        "effects/drums_stereo.flac",
        "music/g_000.flac",
        "music/h_000.flac",
    ]
    assert (folder / "music" / "g_000.flac").resolve() == (tmp_path / "audio" / "g_000.flac").resolve()
    assert eval_folder(settings, tmp_path / "out") == folder  # a second process finds the links made


def test_steps_reached_is_the_final_checkpoint_step(tmp_path):
    from saga_sr.experiments.ladder import steps_reached

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "metrics.csv").write_text("epoch,step,train/loss\n0,9,1.0\n0,29,0.5\n")
    assert steps_reached(tmp_path, None) == 29
    for step in (20, 37):
        (tmp_path / "checkpoints" / f"step={step}.ckpt").write_bytes(b"")
    assert steps_reached(tmp_path, None) == 37 and steps_reached(tmp_path, 30) == 30
    assert steps_reached(tmp_path / "nothing", 50) == 50 and steps_reached(tmp_path / "nothing", None) == 0


def test_step_benchmark_runs_a_mini_rung():
    """mini.json's lr_prefill reads each item's LR cutoff: the synthetic batch must carry one."""
    from saga_sr.config import derive_rung, load_config
    from saga_sr.experiments.measure import benchmark_step

    assert benchmark_step(derive_rung(load_config("mini"), "A0", scale="mini"), 1, "cpu", steps=1) > 0


def test_q3_is_also_answered_at_a0_size_when_those_config_rungs_ran(tmp_path):
    """F0_at_A0.json (A0 without text) -> A0: the text question at a capacity that trains in the budget; the row
    appears only when both rungs ran."""
    from saga_sr.config import derive_rung, load_config

    cfg = derive_rung(load_config("saga_model_config_small"), "A0", scale="tiny")
    cfg["model"]["diffusion"]["cross_attention_cond_ids"] = []
    (tmp_path / "F0_at_A0.json").write_text(json.dumps(cfg))
    settings = _settings(tmp_path, ["A0"], seeds=(0, 1))
    plain = run_ladder(settings, tmp_path / "a", train_fn=FakeTraining(), eval_fn=fake_eval)
    assert "Q3 (A0 size)" not in plain.read_text()
    rungs = ["A0", str(tmp_path / "F0_at_A0.json")]
    settings = _settings(tmp_path, rungs, seeds=(0, 1))
    text = run_ladder(settings, tmp_path / "b", train_fn=FakeTraining(), eval_fn=fake_eval).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| Q3 (A0 size) | F0_at_A0 → A0 (+ text) | lsd"))
    assert "| +0.100 |" in row and row.endswith("| **hurts** |")  # fake_eval: A0 2.0, any other rung 1.9


def test_text_roll_off_and_lfr_point_to_the_answers_table():
    """Text / roll-off / LFR have no second statistic: one pointer, with the prompt caveat only when a text row ran."""
    from saga_sr.experiments.report import _answered_above

    plain = "\n".join(_answered_above(["A0", "A1"], "tiny"))
    assert 'in the table "Answers: Q1 deepen, Q2 widen, Q3 text / roll-off, Q4 LFR" above' in plain
    assert "Prompts come from" not in plain
    tiny = "\n".join(_answered_above(["A0", "F0_at_A0"], "tiny"))
    assert "Prompts come from" in tiny and "random tiny one" in tiny
    assert "random tiny one" not in "\n".join(_answered_above(["F0", "F1"], "mini"))
