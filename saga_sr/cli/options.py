"""Option types and option groups the subcommands share, so a bad value is refused the same way everywhere.

Argument types raise argparse.ArgumentTypeError: argparse then names the option, and `OneLineParser` prints
that as one line (`saga-sr CMD: error: argument --x: ...`) with exit code 2 before anything runs.
"""

from __future__ import annotations

import argparse
import math
import sys


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 2 (raised as `saga_sr.cli.CliError`)."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (the usage itself is under --help), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind, text: str, test, words: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    if not test(value):
        raise argparse.ArgumentTypeError(f"must be {words}, got {text!r}")
    return value


def finite_float(text: str) -> float:
    return _number(float, text, lambda v: True, "finite")


def positive_float(text: str) -> float:
    return _number(float, text, lambda v: v > 0, "> 0")


def nonnegative_float(text: str) -> float:
    return _number(float, text, lambda v: v >= 0, ">= 0")


def positive_int(text: str) -> int:
    return _number(int, text, lambda v: v > 0, "a positive integer")


def nonnegative_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 0, "an integer >= 0")


def seed(text: str) -> int:
    """A seed every generator here takes (numpy, torch, Lightning): 0 to 2^32 - 1."""
    return _number(int, text, lambda v: 0 <= v < 2**32, f"an integer from 0 to {2**32 - 1}")


def probability(text: str) -> float:
    return _number(float, text, lambda v: 0 <= v <= 1, "in [0, 1]")


def target_rolloff(text: str) -> float | None:
    """A target roll-off (`saga_sr.inference.bands.parse_target_rolloff`): 'default' is None, as not given."""
    from saga_sr.inference.bands import parse_target_rolloff  # lazy: numpy, kept out of `saga-sr --help`

    try:
        return parse_target_rolloff(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def filter_order(text: str) -> int:
    from saga_sr.audio.filters import ORDER_RANGE  # lazy: scipy, kept out of `saga-sr --help`

    lo, hi = ORDER_RANGE
    return _number(int, text, lambda v: lo <= v <= hi, f"a filter order from {lo} to {hi}")


def downmix_hint(exc: BaseException) -> BaseException:
    """A too-many-channels error as a command with --downmix reports it: naming that option."""
    from saga_sr.audio.io import ChannelCountError  # lazy: soundfile, kept out of `saga-sr --help`

    return exc.with_remedy("--downmix averages them to mono") if isinstance(exc, ChannelCountError) else exc


def add_output_policy(p: argparse.ArgumentParser) -> None:
    """--overwrite / --skip-existing (saga_sr.outputs.apply_existing_policy); existing outputs are refused otherwise."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    g.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep outputs that already exist and process only the others (resume a batch)",
    )


def torch_device(name: str, option: str = "--device") -> str:
    """`name` ('auto', 'cpu', 'cuda', 'cuda:N', 'mps') checked against this machine; CliError otherwise."""
    import torch  # lazy: kept out of `saga-sr --help`

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise CliError(f"{option} {name}: not a device; use cpu, cuda, cuda:N, mps or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CliError(f"{option} {name}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CliError(f"{option} {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CliError(f"{option} {name}: MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise CliError(f"{option} {name}: not supported; use cpu, cuda, cuda:N, mps or auto")
    return name


def model_or_shipped(model, option: str = "--model"):
    """`--model` checked as a model path, or the shipped saga-sr-mini when it is not given (CliError when this
    install has none; ModelLoadError naming the option for a path that is not a model)."""
    from pathlib import Path

    from saga_sr.models.checkpoint import check_model_path  # lazy: imports torch
    from saga_sr.models.shipped import default_model_path

    if model is None:
        shipped = default_model_path()
        if shipped is None:
            raise CliError(f"no {option} given and this install has no shipped model (saga_sr/assets/models/mini)")
        return shipped
    return check_model_path(Path(model), option)


def gpu_list(text: str) -> list[int]:
    """`--devices 0,2`: GPU indices (argparse type)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected GPU indices such as 0,1, got {text!r}")
    return values


def add_batch_options(p: argparse.ArgumentParser) -> None:
    """--processes and --devices: the work of one command spread over several processes (saga_sr.inference.batch)."""
    p.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        metavar="N",
        help="worker processes on this machine, each with its own model: N CPU processes, or with "
        "--device cuda the first N GPUs (default 1; under torchrun, torchrun sets them)",
    )
    p.add_argument("--devices", type=gpu_list, metavar="I,J", help="the GPUs to use, one process each (e.g. 0,2)")


def batch_layout(args: argparse.Namespace, device: str, command: str):
    """Several processes (--processes, --devices, torchrun): their layout; None for this process alone.
    CliError names the option that does not fit, or asks for a command line the other processes can rerun."""
    import os

    import torch

    from saga_sr.inference.batch import check_relaunchable, plan_layout

    try:
        layout = plan_layout(
            device,
            args.processes,
            args.devices,
            os.environ,
            gpu_count=torch.cuda.device_count() if torch.cuda.is_available() else 0,
        )
        if layout is not None and not layout.torchrun and "LOCAL_RANK" not in os.environ:
            import __main__

            check_relaunchable(sys.argv[0], getattr(getattr(__main__, "__spec__", None), "name", None), command)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return layout
