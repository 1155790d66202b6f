"""`saga-sr ladder`: the capacity ladder (A0 -> A1 -> B1, F0 -> F1 -> F2) as one resumable command.

A thin wrapper over saga_sr.experiments.ladder.run_ladder (layout and resume rules are documented there).
"""

from __future__ import annotations

import argparse
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
        "OUT/ladder_report.md (metrics table, memorisation, first rung that is enough, text F1 vs F0, roll-off F2 "
        "vs F1, where LFR helped), OUT/ladder_metrics.csv and OUT/loss_curves.png. Rerunning the same command "
        "resumes: finished runs are skipped and a partial one continues from its last.ckpt.",
    )
    p.add_argument(
        "--train_dir",
        "--train-dir",
        required=True,
        type=Path,
        metavar="T",
        dest="train_dir",
        help="training audio folder",
    )
    p.add_argument(
        "--val_dir",
        "--val-dir",
        required=True,
        type=Path,
        metavar="V",
        dest="val_dir",
        help="validation audio folder (also the evaluation set; subfolders are domains)",
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
        default=200,
        dest="max_steps",
        metavar="N",
        help="optimiser steps per rung (default 200)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("ladder_out"), metavar="DIR", help="output folder (default ladder_out)"
    )
    p.add_argument(
        "--scale",
        choices=("full", "tiny"),
        default="full",
        help="tiny: every rung shrunk by the same factors (patched pretransform, tiny T5) for CPU",
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
        help="base config for named rungs (default: the seeds' small config for A/B, full for F)",
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
    from saga_sr.experiments.ladder import LadderSettings, parse_list, run_ladder  # lazy: keeps `saga-sr --help` fast

    rungs = parse_list(args.rungs)
    try:
        seeds = tuple(int(s) for s in parse_list(args.seeds))
    except ValueError as exc:
        raise SagaError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from exc
    if not rungs or not seeds:
        raise SagaError("--rungs and --seeds must name at least one rung and one seed")
    if args.max_steps < 1:
        raise SagaError(f"--max_steps must be positive, got {args.max_steps}")
    for d in (args.train_dir, args.val_dir):
        if not d.is_dir():
            raise SagaError(f"{d}: no such folder")
    device = args.device
    if device == "auto":
        import torch  # lazy: keeps `saga-sr --help` fast

        device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = LadderSettings(
        train_dir=str(args.train_dir),
        val_dir=str(args.val_dir),
        rungs=tuple(rungs),
        max_steps=args.max_steps,
        seeds=seeds,
        scale=args.scale,
        base=args.base,
        batch_size=args.batch_size,
        eval_cutoffs=tuple(args.cutoffs),
        eval_steps=args.eval_steps,
        eval_max_files=args.eval_max_files,
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
