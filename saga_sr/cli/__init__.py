"""`saga-sr` command line: a thin dispatcher over one module per subcommand.

Usage errors and user-caused errors (SagaError, CliError) are one line on stderr and exit code 2; a
refused run has changed nothing. Each module in COMMANDS exposes `register(subparsers)`, which adds its parser and sets
`func` (called with the parsed namespace, returning an exit code). Modules import torch
and friends inside their functions so that `saga-sr --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from saga_sr import __version__
from saga_sr.cli.options import CliError, OneLineParser  # options imports nothing from this package
from saga_sr.errors import SagaError

# subcommand module -> the subcommands it registers (for the help listing order)
COMMANDS = [
    "saga_sr.cli.config_cmd",  # config check / inspect / derive
    "saga_sr.cli.audio_cmd",  # degrade / rolloff / metrics
    "saga_sr.cli.prepare_cmd",  # prepare (latent shards)
    "saga_sr.cli.train_cmd",  # train
    "saga_sr.cli.upsample_cmd",  # upsample
    "saga_sr.cli.caption_cmd",  # caption
    "saga_sr.cli.evaluate_cmd",  # evaluate
    "saga_sr.cli.ladder_cmd",  # ladder
    "saga_sr.cli.demo_cmd",  # demo
    "saga_sr.cli.recipe_cmd",  # recipe
    "saga_sr.cli.app_cmd",  # app (the web page)
]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="saga-sr",
        description="SAGA-SR audio super-resolution: band-limited audio at any input rate from 4 to 48 kHz "
        "(input band 2-16 kHz and up) to 44.1 kHz.",
    )
    parser.add_argument("--version", action="version", version=f"saga-sr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CliError, SagaError) as exc:
        print(f"saga-sr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
