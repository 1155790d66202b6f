"""`saga-sr demo`: evaluate the shipped model (or, with --train, a tiny model trained on the shipped CC0 clips)
on held-out clips and upsample one of them.

A thin wrapper over saga_sr.experiments.demo.run_demo (what it does is documented there).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from saga_sr.cli.common import quiet_lightning
from saga_sr.cli.evaluate_cmd import target_setting_arg
from saga_sr.errors import SagaError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the main job in one command: evaluate the shipped model on held-out clips, upsample one",
        description="On a fresh machine, offline: take the shipped saga-sr-mini model (or, with --train, train "
        "the tiny model on the CC0 recordings shipped in saga_sr/assets/demo for a few minutes on CPU), "
        "evaluate it on the held-out clips at 4 and 8 kHz cutoffs "
        "against the unprocessed input, the pretransform round trip + LFR and a DSP bandwidth extension, and "
        "upsample one held-out clip from a 16 kHz (8 kHz-band) file. The model is given upsample's default target "
        "roll-off (0.9, ~19.9 kHz) unless --target-rolloff says otherwise; the table says which. Prints the table "
        "and where the WAVs, the spectrogram PNGs and the tables are.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("saga_sr_demo"), metavar="DIR", help="output folder (default saga_sr_demo)"
    )
    p.add_argument(
        "--train",
        action="store_true",
        help="train tiny.json on the shipped clips first and evaluate that instead of the shipped model",
    )
    p.add_argument(
        "--minutes",
        type=float,
        default=3.0,
        metavar="M",
        help="with --train: training budget in minutes (default 3; evaluation adds a few minutes)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="seconds instead of minutes: a couple of training steps, 2 sampling steps, mel distance "
        "instead of ViSQOL (checks that everything runs; the numbers mean nothing)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="sampling steps for evaluation and the showcase (default: the model's, else 8; quick 2)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for training, LR simulation and sampling (default 0)")
    p.add_argument(
        "--perceptual",
        choices=("auto", "visqol", "mel", "none"),
        default="auto",
        help="perceptual metric (default auto: ViSQOL, or a labelled log-mel distance if it cannot run)",
    )
    p.add_argument(
        "--target-rolloff",
        "--target_rolloff",
        type=target_setting_arg,
        action="append",
        dest="target_rolloffs",
        metavar="{default,reference,VALUE}",
        help="target roll-off given to the model in the evaluation, repeatable, as in `saga-sr evaluate` "
        "(default: default, 0.9 = ~19.9 kHz, what upsample uses; reference = each clip's own HR roll-off, "
        "an oracle; each extra setting adds one more model pass per clip)",
    )
    p.set_defaults(func=run_demo_cmd)


def run_demo_cmd(args: argparse.Namespace) -> int:
    from saga_sr.experiments.demo import run_demo  # lazy: keeps `saga-sr --help` fast

    if args.minutes <= 0:
        raise SagaError(f"--minutes must be positive, got {args.minutes}")
    with quiet_lightning():
        result = run_demo(
            args.out,
            minutes=args.minutes,
            quick=args.quick,
            seed=args.seed,
            perceptual=args.perceptual,
            eval_steps=args.steps,
            train=args.train,
            target_rolloffs=tuple(args.target_rolloffs or ("default",)),
        )
    text = result.results_md.read_text()
    overall = [block for block in text.split("### ") if block.startswith("all,")]
    print()
    print("Results on the held-out clips (all domains; per-domain tables in the file below):\n")
    for block in overall:
        print("### " + block.strip() + "\n")
    for note in result.notes:
        print(f"note: {note}")
    print()
    print(f"model:          {result.model_dir}")
    print(f"tables:         {result.results_md} (per domain: {result.out_dir / 'eval' / 'tables'})")
    print(f"per-clip CSV:   {result.out_dir / 'eval' / 'per_clip.csv'}")
    print(f"scored WAVs:    {result.out_dir / 'eval' / 'audio'}")
    for fig in result.figures:
        print(f"spectrograms:   {fig}")
    for name, path in result.showcase.items():
        print(f"showcase {name + ':':12s} {path}")
    return 0
