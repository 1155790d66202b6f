"""Command-line arguments of `saga-sr train` / `python train_saga_sr.py`: one set of flags, spelled with underscores."""

from __future__ import annotations

import argparse

from saga_sr.config.schema import NONNEG_INT, POS_INT, TRAINING, Scalar, validate
from saga_sr.errors import ConfigError


def add_train_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add every training flag to `p` (shared by the CLI, the root script and `run.train(**kwargs)` defaults)."""
    data = p.add_argument_group("data")
    data.add_argument(
        "--train_dir",
        nargs="+",
        default=None,
        metavar="PATH",
        help="HR training audio: folder(s) searched recursively, or manifest(s) (.csv/.jsonl with "
        "path[,caption,transcript,domain]). Sidecars: NAME.txt transcript, NAME.caption.txt caption",
    )
    data.add_argument(
        "--train_latents",
        default=None,
        metavar="DIR_OR_URL",
        help="train on latent shards written by `saga-sr prepare` (a folder or an s3:// URL) instead "
        "of audio: the VAE is not run in the training step; --val_dir stays audio",
    )
    data.add_argument(
        "--manifest",
        nargs="+",
        default=None,
        metavar="FILE",
        help="training manifest(s), in addition to (or instead of) --train_dir",
    )
    data.add_argument(
        "--val_dir",
        nargs="+",
        default=None,
        metavar="PATH",
        help="validation audio (folder or manifest); without it there is no validation",
    )
    data.add_argument(
        "--compute_rolloff",
        action="store_true",
        help="compute input/target spectral roll-offs (rolloff_low/high); on a config without "
        "roll-off conditioners this adds the seeds' Fourier roll-off conditioner. Always on for "
        "configs whose conditioners read input_rolloff/target_rolloff",
    )
    data.add_argument(
        "--disable_caption", action="store_true", help="text prompt = transcript only (default: caption + transcript)"
    )
    data.add_argument("--use_caption", action="store_true", help="the default; kept for the seeds' command lines")
    data.add_argument("--num_workers", type=int, default=2, help="DataLoader worker processes (default 2)")
    data.add_argument(
        "--sample_size", type=int, default=None, help="segment length in samples (default: the config's sample_size)"
    )

    model = p.add_argument_group("model")
    model.add_argument(
        "--model_config",
        required=True,
        metavar="PATH_OR_NAME",
        help="model config JSON, or a shipped name (tiny, saga_model_config_small, saga_model_config, saga_sr_paper)",
    )
    model.add_argument(
        "--pretrained_ckpt",
        default=None,
        metavar="FILE",
        help="Stable Audio Open checkpoint to start from (model.safetensors or .ckpt; widened "
        "input projections for the LR latent)",
    )
    model.add_argument(
        "--text_encoder_path",
        "--text-encoder-path",
        dest="text_encoder_path",
        default=None,
        metavar="DIR",
        help="local T5 folder (offline; else $SAGA_SR_T5_PATH or the Hugging Face cache)",
    )

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--batch_size", type=int, default=None, help="per-device batch (default: config, else 4)")
    opt.add_argument("--learning_rate", type=float, default=None, help="peak learning rate (default: config)")
    opt.add_argument("--max_steps", type=int, default=None, help="optimiser steps (default: config, else 26000)")
    opt.add_argument(
        "--max_time",
        default=None,
        metavar="MINUTES|DD:HH:MM:SS",
        help="also stop after this wall time (minutes, or Lightning's DD:HH:MM:SS); the run ends with "
        "a checkpoint and an export as at max_steps",
    )
    opt.add_argument("--accumulate_grad_batches", type=int, default=None, help="gradient accumulation (default 1)")
    opt.add_argument(
        "--gradient_clip_val", type=float, default=None, help="gradient norm clip (default: config, else 1.0)"
    )
    opt.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep an EMA of the weights (exported instead of the live ones); default: config use_ema",
    )
    opt.add_argument(
        "--timestep_sampler",
        choices=("uniform", "logit_normal"),
        default=None,
        help="training time distribution (default: config, else uniform)",
    )
    opt.add_argument("--seed", type=int, default=0, help="seed for crops, LR filters, noise and init (default 0)")

    val = p.add_argument_group("validation")
    val.add_argument("--val_every", type=int, default=1000, help="validate every N optimiser steps (default 1000)")
    val.add_argument(
        "--val_steps",
        "--val_num_steps",
        dest="val_steps",
        type=int,
        default=100,
        help="Euler steps when sampling in validation (default 100)",
    )
    val.add_argument(
        "--max_val_items",
        type=int,
        default=8,
        help="validation items sampled and scored (per device) each validation (default 8)",
    )
    val.add_argument("--val_examples", type=int, default=2, help="examples saved as audio + PNG per validation")
    val.add_argument(
        "--disable_val_lowfreq_replace",
        action="store_true",
        help="score validation samples without low-frequency replacement",
    )

    run = p.add_argument_group("run")
    run.add_argument("--output_dir", default="runs/saga_sr", help="run folder (default runs/saga_sr)")
    run.add_argument(
        "--resume",
        nargs="?",
        const="last",
        default=None,
        metavar="CKPT",
        help="continue a run: a .ckpt, or (no value) the newest valid checkpoint in OUTPUT_DIR",
    )
    run.add_argument(
        "--checkpoint_every",
        type=int,
        default=None,
        help="save OUT/checkpoints/step=N.ckpt every N steps (default: --val_every)",
    )
    run.add_argument("--log_every", type=int, default=10, help="log train metrics every N steps (default 10)")
    run.add_argument(
        "--precision",
        default="auto",
        help="Lightning precision: auto (bf16-mixed on GPU, 32-true on CPU), 32-true, bf16-mixed, 16-mixed",
    )
    run.add_argument("--accelerator", default="auto", help="auto, cpu, gpu ...")
    run.add_argument("--devices", default="auto", help="devices per node: auto, N or a list such as 0,1")
    run.add_argument("--num_nodes", type=int, default=1, help="nodes (default 1)")
    run.add_argument("--strategy", default="auto", help="auto, ddp, ddp_spawn, fsdp, deepspeed ...")
    run.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the DiT (faster steps on GPU after a compilation at the start)",
    )
    run.add_argument(
        "--activation_checkpointing",
        action="store_true",
        help="recompute DiT block activations in the backward pass (less memory, ~30%% more compute; "
        "for the full model)",
    )
    run.add_argument("--no_progress_bar", action="store_true", help="disable the progress bar")
    return p


SEED = Scalar("int", minimum=0, maximum=2**32 - 1)  # the range numpy and Lightning take as a seed


def check_train_args(ns: argparse.Namespace) -> None:
    """ConfigError listing every bad numeric flag, by the same rules (saga_sr.config.schema) that `config check`
    applies to the config's `training` section: finite, learning rate > 0, counts >= 1."""
    own = {
        "val_every": POS_INT,
        "val_steps": POS_INT,
        "max_val_items": POS_INT,
        "val_examples": NONNEG_INT,
        "checkpoint_every": POS_INT,
        "log_every": POS_INT,
        "num_workers": NONNEG_INT,
        "sample_size": POS_INT,
        "num_nodes": POS_INT,
        "seed": SEED,
    }
    specs = {
        k: TRAINING.fields[k][0]
        for k in ("learning_rate", "batch_size", "max_steps", "accumulate_grad_batches", "gradient_clip_val")
    } | own
    problems = [
        p
        for key, spec in specs.items()
        if getattr(ns, key, None) is not None
        for p in validate(getattr(ns, key), spec, f"--{key}")
    ]
    if problems:
        raise ConfigError(problems)


def build_parser(prog: str = "train_saga_sr.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Train SAGA-SR (rectified-flow DiT on latents) with Lightning.")
    return add_train_arguments(p)


def namespace(args: argparse.Namespace | dict | None = None, **kwargs) -> argparse.Namespace:
    """A complete Namespace from a parsed one, a dict or keyword arguments (missing keys get the CLI defaults)."""
    values = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args or {})
    values.update(kwargs)
    parser = build_parser()
    defaults = {a.dest: a.default for a in parser._actions if a.dest != "help"}
    unknown = set(values) - set(defaults) - {"command", "func"}
    if unknown:
        raise TypeError(f"unknown training arguments: {sorted(unknown)}")
    for key in ("train_dir", "val_dir", "manifest"):
        if isinstance(values.get(key), (str, bytes)) or hasattr(values.get(key), "__fspath__"):
            values[key] = [values[key]]
    return argparse.Namespace(**{**defaults, **values})
