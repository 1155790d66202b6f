"""`saga-sr train`: the training program (same flags as `python train_saga_sr.py`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from saga_sr.training.args import add_train_arguments  # lazy: keeps `saga-sr --help` fast

    parser = subparsers.add_parser(
        "train",
        help="train SAGA-SR (the seeds' train_saga_sr.py)",
        description="Train SAGA-SR: a rectified-flow DiT on pretransform latents, conditioned on the LR latent, "
        "text (T5) and spectral roll-off, with Lightning (checkpoints, resume, DDP/FSDP, CSV logs). "
        "Writes OUTPUT_DIR/{checkpoints,model,val,metrics.csv,loss_curve.png,skipped_files.txt}.",
    )
    add_train_arguments(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from saga_sr.training.run import main  # lazy: keeps `saga-sr --help` fast

    return main(args)
