"""`saga-sr recipe mini`: fetch, prepare, train and export saga-sr-mini in one resumable command.

A thin wrapper over saga_sr.experiments.mini_recipe.run_recipe (the stages are documented there).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "recipe",
        help="reproduce the shipped model: fetch its data, prepare, train, export (saga-sr-mini)",
        description="Fetch the allowed Debian packages (apt-get download + dpkg -x, nothing installed) into "
        "DATA, decode them to mono 44.1 kHz with each file's measured bandwidth, split by file and language "
        "(the demo's test clips excluded), train in two phases with the project's trainer (validating on the "
        "held-out split): configs/mini.json without its lr_bridge for MINUTES of wall time, then with it for 150 "
        "steps from those weights, and export phase two's EMA weights in float16. Rerunning resumes: finished "
        "stages are skipped and training continues from its last checkpoint.",
    )
    p.add_argument("name", choices=("mini",), help="the recipe (mini: the shipped default model)")
    p.add_argument(
        "--data",
        type=Path,
        default=Path("data_mini"),
        metavar="DIR",
        help="where fetched and prepared audio go (default data_mini; never commit it)",
    )
    p.add_argument("--out", type=Path, default=Path("runs/mini"), metavar="DIR", help="run folder (default runs/mini)")
    p.add_argument(
        "--minutes",
        type=float,
        default=45.0,
        metavar="M",
        help="phase one's training wall time for this call (default 45, about the shipped lineage's on two threads)",
    )
    p.add_argument(
        "--freesound",
        type=Path,
        default=None,
        metavar="DIR",
        help="the project's Freesound CC0 clips (optional; sonic-pi-samples holds the same clips)",
    )
    p.add_argument(
        "--install",
        action="store_true",
        help="export into the package (saga_sr/assets/models/mini) instead of OUT/model_fp16",
    )
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.set_defaults(func=run_recipe_cmd)


def run_recipe_cmd(args: argparse.Namespace) -> int:
    from saga_sr.errors import SagaError
    from saga_sr.experiments.mini_recipe import run_recipe
    from saga_sr.models.shipped import SHIPPED_MODEL_DIR

    if args.minutes <= 0:
        raise SagaError(f"--minutes must be positive, got {args.minutes}")
    if args.freesound is not None and not args.freesound.is_dir():
        raise SagaError(f"--freesound {args.freesound}: no such folder")
    result = run_recipe(
        args.data,
        args.out,
        minutes=args.minutes,
        freesound=args.freesound,
        seed=args.seed,
        export_to=SHIPPED_MODEL_DIR if args.install else None,
    )
    print(f"trained {result.train_steps} steps; model: {result.export_dir}")
    print("stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items()))
    return 0
