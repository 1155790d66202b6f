"""`saga-sr config check | inspect | derive`: validate, size up and derive model configs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from saga_sr.errors import ConfigError

RUNG_HELP = (
    "A0 small baseline (512/8/8); A1 depth 16; B1 768/16/12 with 768-wide conditions; "
    "F0 full without cross-attention; F1 full + text; F2 F1 + roll-off conditioning"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="check, inspect or derive model configs",
        description="Model configs (stable-audio-tools JSON format plus SAGA-SR keys). FILE may be a path or the "
        "name of a shipped config (tiny, saga_model_config_small, saga_model_config, saga_sr_paper, "
        "stable_audio_open_1.0).",
    )
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION")

    check = sub.add_parser(
        "check",
        help="validate configs; exit 0 when every rule holds, 2 otherwise",
        description="Check structure, types, unknown keys and every dimension relation "
        "(heads, cross-attention key/value heads, global/prepend widths, latent "
        "channels, segment length), the options saga-sr does not implement, "
        "the optimiser and schedule, and the objective (rectified flow) before any "
        "tensor exists: what a build for training or sampling refuses.",
    )
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=_check)

    inspect = sub.add_parser(
        "inspect",
        help="per-component parameter counts (built on the meta device)",
        description="Build the model without allocating weights and print the parameter "
        "count of each component (dit, pretransform, conditioner).",
    )
    inspect.add_argument("file", metavar="FILE")
    inspect.add_argument(
        "--json", action="store_true", help='print {"components": {"dit": {"params": N, "keys": {name: [shape]}}, ...}}'
    )
    inspect.set_defaults(func=_inspect)

    derive = sub.add_parser(
        "derive",
        help="write a ladder rung derived from a base config",
        description=f"Rungs: {RUNG_HELP}. --scale tiny shrinks the rung for CPU "
        "(widths / 8, depths / 4, head size 32, patched pretransform, offline T5); --scale mini maps it onto "
        "mini.json's proportions (mini = A0: widths x 1/2, depths x 3/8, heads of 64; use BASE mini).",
    )
    derive.add_argument("base", metavar="BASE")
    derive.add_argument("rung", metavar="RUNG", help="one of A0 A1 B1 F0 F1 F2")
    derive.add_argument("--scale", choices=("full", "tiny", "mini"), default="full")
    derive.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")
    derive.set_defaults(func=_derive)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _check(args: argparse.Namespace) -> int:
    from saga_sr.config import check_runnable, read_config  # lazy: keeps `saga-sr --help` fast

    failed = 0
    for name in args.files:
        try:
            problems = check_runnable(read_config(name))  # everything a build for training or sampling refuses
        except ConfigError as exc:
            problems = exc.problems
        if problems:
            failed += 1
            print(f"{name}: {len(problems)} problem{'s' if len(problems) > 1 else ''}:", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
        else:
            print(f"{name}: ok")
    return 2 if failed else 0


def _format_count(n: int) -> str:
    return f"{n:,}" + (f" ({n / 1e6:.1f} M)" if n >= 1e5 else "")


def _inspect(args: argparse.Namespace) -> int:
    from saga_sr.models.build import build_model, model_summary  # lazy: keeps `saga-sr --help` fast

    model = build_model(args.file, device="meta")
    summary = model_summary(model)
    if args.json:
        json.dump(summary, sys.stdout, indent=1)
        print()
        return 0
    print(
        f"{args.file}: {model.sample_rate} Hz, {model.audio_channels} ch, segment {model.sample_size} samples "
        f"= {model.sample_size // model.downsampling_ratio} latent frames x {model.latent_channels} channels"
    )
    for name, comp in summary["components"].items():
        print(f"  {name:<20} {_format_count(comp['params']):>24} params  {len(comp['keys'])} keys")
    print(f"  {'total':<20} {_format_count(summary['total_params']):>24} params")
    return 0


def _derive(args: argparse.Namespace) -> int:
    from saga_sr.config import derive_rung, read_config, validated  # lazy: keeps `saga-sr --help` fast
    from saga_sr.config.typed import ModelSettings

    cfg = validated(
        derive_rung(read_config(args.base), args.rung, scale=args.scale), source=f"{args.base} -> {args.rung}"
    )
    from saga_sr.outputs import write_text_atomic

    write_text_atomic(args.output, json.dumps(cfg, indent=2) + "\n")
    ms = ModelSettings.from_config(cfg)
    print(
        f"{args.output}: rung {args.rung} ({args.scale}) of {args.base}: embed {ms.embed_dim}, "
        f"depth {ms.depth}, heads {ms.num_heads}, cond {ms.cond_dim}, cross {list(ms.cross_attn_cond_ids)}"
    )
    return 0
