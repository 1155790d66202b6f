"""`saga-sr ladder`: the capacity ladder (A0 -> A1 -> B1, F0 -> F1 -> F2) as one resumable command.

A thin wrapper over saga_sr.experiments.ladder.run_ladder (layout and resume rules are documented there).
Two processes may share one --out with disjoint --rungs / --seeds (e.g. `--threads 1` each on two cores);
each writes the report from every finished run of the same budget, and `--report_only` rewrites it.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from saga_sr.cli.common import quiet_lightning
from saga_sr.errors import SagaError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ladder",
        help="train and compare the seeds' capacity ladder rungs on the same data, seed and budget",
        description="Check every rung with the dimension checks first (a rung that would crash is reported with "
        "the violated relation and skipped), then train each rung x seed on the same data and budget through the "
        "training API, evaluate each with the same protocol (LR at each cutoff; with and without LFR), and write "
        "OUT/ladder_report.md (metrics table; Q1 deepen, Q2 widen, Q3 text / roll-off and Q4 LFR with clip x "
        "seed bootstrap intervals; memorisation; the first rung that is enough, by the same intervals), "
        "OUT/ladder_metrics.csv and OUT/loss_curves.png. Rerunning the same command resumes: finished runs are "
        "skipped and a partial one continues from its last.ckpt. --scale mini maps every rung onto "
        "configs/mini.json (mini = A0: widths x1/2, depths x3/8, heads of 64); --minutes gives every run the same "
        "training wall time.",
    )
    p.add_argument(
        "--train_dir",
        "--train-dir",
        type=Path,
        metavar="T",
        dest="train_dir",
        help="training audio folder or manifest (.csv / .jsonl / .json); required unless --report_only",
    )
    p.add_argument(
        "--val_dir",
        "--val-dir",
        type=Path,
        metavar="V",
        dest="val_dir",
        help="validation audio folder or manifest; also the evaluation set unless --eval_dir (a manifest's "
        "files are linked under OUT/eval_set/<domain>/); required unless --report_only",
    )
    p.add_argument(
        "--eval_dir",
        "--eval-dir",
        type=Path,
        default=None,
        metavar="E",
        dest="eval_dir",
        help="evaluation folder (subfolders are domains; default: --val_dir)",
    )
    p.add_argument(
        "--rungs",
        default="A0,A1,B1",
        metavar="LIST",
        help="comma-separated rung names (A0, A1, B1, F0, F1, F2) or config files (default A0,A1,B1)",
    )
    p.add_argument(
        "--max_steps",
        "--max-steps",
        type=int,
        default=None,
        dest="max_steps",
        metavar="N",
        help="optimiser steps per run (default 200, or no step limit with --minutes)",
    )
    p.add_argument(
        "--minutes",
        type=float,
        default=None,
        metavar="M",
        help="training wall time per run (the trainer's max_time): the same CPU budget for every rung, so "
        "bigger rungs reach fewer steps (recorded per run)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch threads of this process (torch.set_num_threads; e.g. 1 each for two ladders on two cores)",
    )
    p.add_argument(
        "--val_every",
        "--val-every",
        type=int,
        default=None,
        dest="val_every",
        metavar="N",
        help="validation and checkpoint interval in steps (default: a fifth of --max_steps, else 100)",
    )
    p.add_argument(
        "--report_only",
        "--report-only",
        action="store_true",
        dest="report_only",
        help="train nothing: rewrite OUT/ladder_report.md from every finished run in --out (settings from "
        "OUT/ladder.json), e.g. after two processes shared it",
    )
    p.add_argument(
        "--out", type=Path, default=Path("ladder_out"), metavar="DIR", help="output folder (default ladder_out)"
    )
    p.add_argument(
        "--scale",
        choices=("full", "tiny", "mini"),
        default="full",
        help="tiny: every rung shrunk by the same factors (patched pretransform, tiny T5) for CPU; mini: every "
        "rung mapped onto configs/mini.json by the seeds' ratios (mini = A0: A0 256x3, A1 256x6, B1 384x6, "
        "F0-F2 768x9; roll-off only in F2)",
    )
    p.add_argument(
        "--seeds",
        default="0",
        metavar="LIST",
        help="comma-separated seeds; two or more are needed to tell a difference from noise (default 0)",
    )
    p.add_argument(
        "--base",
        default=None,
        metavar="CONFIG",
        help="base config for named rungs (default: mini with --scale mini, else the seeds' small config for "
        "A/B and full for F)",
    )
    p.add_argument(
        "--batch_size", "--batch-size", type=int, default=2, dest="batch_size", help="batch size (default 2)"
    )
    p.add_argument(
        "--cutoffs",
        type=float,
        nargs="+",
        default=[4000.0, 8000.0],
        metavar="HZ",
        help="evaluation cutoffs (default 4000 8000)",
    )
    p.add_argument(
        "--eval_steps",
        "--eval-steps",
        type=int,
        default=8,
        dest="eval_steps",
        help="sampling steps in evaluation (default 8)",
    )
    p.add_argument(
        "--eval_max_files",
        "--eval-max-files",
        type=int,
        default=4,
        dest="eval_max_files",
        help="evaluation files per domain (default 4)",
    )
    p.add_argument(
        "--eval_seconds",
        "--eval-seconds",
        type=float,
        default=None,
        dest="eval_seconds",
        metavar="S",
        help="score only the first S seconds of each evaluation file (default: whole files; big rungs sample "
        "slowly on CPU)",
    )
    p.add_argument(
        "--perceptual",
        choices=("auto", "visqol", "mel", "none"),
        default="mel",
        help="perceptual metric in evaluation (default mel: ViSQOL is slow on CPU)",
    )
    p.add_argument(
        "--bench_steps",
        "--bench-steps",
        type=int,
        default=3,
        dest="bench_steps",
        help="timed synthetic training steps per rung for the s/step column (default 3; 0 skips)",
    )
    p.add_argument(
        "--val_lowfreq_replace",
        action="store_true",
        help="apply LFR in training's validation (the seeds' ladder passes --disable_val_lowfreq_replace)",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="device for evaluation and the memory probe: auto (cuda when available), cpu, cuda, cuda:N; "
        "training picks its accelerator itself (default auto)",
    )
    p.add_argument(
        "--text_encoder_path",
        "--text-encoder-path",
        dest="text_encoder_path",
        default=None,
        metavar="DIR",
        help="local T5 folder for full-scale rungs (offline)",
    )
    p.set_defaults(func=run_ladder_cmd)


def run_ladder_cmd(args: argparse.Namespace) -> int:
    # lazy: keeps `saga-sr --help` fast
    from saga_sr.data.index import MANIFEST_SUFFIXES
    from saga_sr.experiments.ladder import LadderSettings, parse_list, report_only, run_ladder

    if args.threads is not None:
        if args.threads < 1:
            raise SagaError(f"--threads must be positive, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    if args.report_only:
        report = report_only(args.out)
        print(report.read_text())
        print(f"report: {report}")
        return 0
    rungs = parse_list(args.rungs)
    try:
        seeds = tuple(int(s) for s in parse_list(args.seeds))
    except ValueError as exc:
        raise SagaError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from exc
    if not rungs or not seeds:
        raise SagaError("--rungs and --seeds must name at least one rung and one seed")
    if args.max_steps is not None and args.max_steps < 1:
        raise SagaError(f"--max_steps must be positive, got {args.max_steps}")
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        raise SagaError(f"--minutes must be a positive number of minutes, got {args.minutes}")
    if args.eval_seconds is not None and not (math.isfinite(args.eval_seconds) and args.eval_seconds > 0):
        raise SagaError(f"--eval_seconds must be a positive number of seconds, got {args.eval_seconds}")
    if args.val_every is not None and args.val_every < 1:
        raise SagaError(f"--val_every must be positive, got {args.val_every}")
    for name, d in (("--train_dir", args.train_dir), ("--val_dir", args.val_dir)):
        if d is None:
            raise SagaError(f"{name} is required (unless --report_only)")
        if not (d.is_dir() or (d.is_file() and d.suffix.lower() in MANIFEST_SUFFIXES)):
            raise SagaError(f"{name} {d}: no such folder or manifest ({', '.join(MANIFEST_SUFFIXES)})")
    if args.eval_dir is not None and not args.eval_dir.is_dir():
        raise SagaError(f"--eval_dir {args.eval_dir}: no such folder")
    max_steps = args.max_steps if args.max_steps is not None else (None if args.minutes else 200)
    device = args.device
    if device == "auto":
        import torch  # lazy: keeps `saga-sr --help` fast

        device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = LadderSettings(
        train_dir=str(args.train_dir),
        val_dir=str(args.val_dir),
        rungs=tuple(rungs),
        max_steps=max_steps,
        minutes=args.minutes,
        threads=args.threads,
        eval_dir=str(args.eval_dir) if args.eval_dir else None,
        val_every=args.val_every,
        seeds=seeds,
        scale=args.scale,
        base=args.base,
        batch_size=args.batch_size,
        eval_cutoffs=tuple(args.cutoffs),
        eval_steps=args.eval_steps,
        eval_max_files=args.eval_max_files,
        eval_seconds=args.eval_seconds,
        perceptual=args.perceptual,
        val_lowfreq_replace=args.val_lowfreq_replace,
        device=device,
        bench_steps=args.bench_steps,
        text_encoder_path=args.text_encoder_path,
    )
    with quiet_lightning():  # the ladder prints its own progress lines
        report = run_ladder(settings, args.out, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(report.read_text())
    print(f"report: {report}")
    print(f"metrics: {report.parent / 'ladder_metrics.csv'}")
    print(f"loss curves: {report.parent / 'loss_curves.png'}")
    return 0
