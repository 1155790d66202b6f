"""`saga-sr prepare`: pre-encode a training set into latent shards (see saga_sr.data.prepare)."""

from __future__ import annotations

import argparse
import os

from saga_sr.cli.options import nonnegative_int, seed


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="pre-encode training audio into latent shards for train --train_latents",
        description="One pass over a training set (folders or manifests, as `train` takes them): per file the HR "
        "latent posterior and NUM_LR simulated LR versions with their latents, cutoffs and roll-offs, "
        "written as litdata shards to OUT. Resumable (rerun the same command), parallel over processes "
        "or GPUs (--processes, or --rank/--world_size, or torchrun), skipped files in "
        "OUT/skipped_files.txt.",
    )
    p.add_argument("sources", nargs="+", metavar="PATH", help="audio folders (recursive), files or manifests")
    p.add_argument(
        "-o",
        "--out",
        required=True,
        metavar="DIR_OR_URL",
        help="shard folder (created; resumed if present) or s3://BUCKET/PREFIX (endpoint and credentials "
        "from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...; see README)",
    )
    p.add_argument(
        "--model_config",
        required=True,
        metavar="PATH_OR_NAME",
        help="the model config training will use (its pretransform encodes; sample rate, channels)",
    )
    p.add_argument(
        "--pretrained_ckpt",
        default=None,
        metavar="FILE",
        help="SAO checkpoint whose VAE encodes (as train --pretrained_ckpt); else the seeded random init",
    )
    p.add_argument(
        "--text_encoder_path",
        default=None,
        metavar="DIR",
        help="local T5 folder (only if the config needs one to build)",
    )
    p.add_argument(
        "--num_lr",
        type=int,
        default=8,
        help="LR versions per file (default 8); training draws one per item (see README: K vs diversity)",
    )
    p.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="seed for the LR draws and the random model init (use training's --seed; default 0)",
    )
    p.add_argument("--files_per_part", type=int, default=32, help="files per resumable unit of work (default 32)")
    p.add_argument(
        "--latent_dtype",
        choices=("float32", "float16", "bfloat16"),
        default="float32",
        help="storage type of the latents (default float32; float16 halves the shards)",
    )
    p.add_argument(
        "--t5_embeddings",
        action="store_true",
        help="also store the frozen T5 output of each file's prompt (training then skips T5 for it)",
    )
    p.add_argument(
        "--encode_batch",
        type=nonnegative_int,
        default=0,
        help="signals per VAE call (default 0: the HR and all its LR versions at once)",
    )
    p.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK when available, else cpu), cpu, cuda:N")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="local processes, each a rank (default 1; GPUs are shared out round robin)",
    )
    p.add_argument("--rank", type=int, default=None, help="this process's rank (default $RANK or 0)")
    p.add_argument("--world_size", type=int, default=None, help="number of ranks (default $WORLD_SIZE or 1)")
    p.add_argument("--no_progress_bar", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _device(name: str, rank: int) -> str:
    import torch

    if name != "auto":
        return name
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        return f"cuda:{local % torch.cuda.device_count()}"
    return "cpu"


def run_rank(args: argparse.Namespace, rank: int, world_size: int, threads: int | None = None):
    """Build the model as training does and encode this rank's parts."""
    import torch

    from saga_sr.data.prepare import check_options, prepare_shards
    from saga_sr.data.remote import check_output

    check_options(
        args.sources,
        num_lr=args.num_lr,
        rank=rank,
        world_size=world_size,
        files_per_part=args.files_per_part,
        latent_dtype=args.latent_dtype,
        out=args.out,
        seed=args.seed,
        encode_batch=args.encode_batch,
    )  # before the model is built
    check_output(args.out)
    if threads:
        torch.set_num_threads(threads)
    if args.pretrained_ckpt:
        from saga_sr.models.sao import build_from_sao

        model, _ = build_from_sao(
            args.model_config, args.pretrained_ckpt, text_encoder_path=args.text_encoder_path, seed=args.seed
        )
    else:
        from saga_sr.models.build import build_model

        model = build_model(args.model_config, text_encoder_path=args.text_encoder_path, seed=args.seed)
    return prepare_shards(
        args.sources,
        args.out,
        model,
        num_lr=args.num_lr,
        seed=args.seed,
        rank=rank,
        world_size=world_size,
        files_per_part=args.files_per_part,
        device=_device(args.device, rank),
        latent_dtype=args.latent_dtype,
        encode_batch=args.encode_batch,
        t5_embeddings=args.t5_embeddings,
        config_source=str(args.model_config),
        progress=not args.no_progress_bar,
    )


def _child(args: argparse.Namespace, rank: int, world_size: int, threads: int) -> None:
    """One local rank; a user-caused error is its one line (exit code 2), as in the parent."""
    import sys

    from saga_sr.errors import SagaError

    try:
        run_rank(args, rank, world_size, threads)
    except SagaError as exc:
        print(f"saga-sr prepare: error: rank {rank}: {exc}", file=sys.stderr)
        sys.exit(2)


def _run(args: argparse.Namespace) -> int:
    from saga_sr.errors import DataError

    rank = args.rank if args.rank is not None else int(os.environ.get("RANK", 0))
    world = args.world_size if args.world_size is not None else int(os.environ.get("WORLD_SIZE", 1))
    if args.processes < 1:
        raise DataError(f"--processes {args.processes}: must be >= 1")
    if args.processes > 1:
        if world != 1:
            raise DataError("--processes cannot be combined with --world_size / $WORLD_SIZE > 1")
        import multiprocessing as mp

        from saga_sr.data.prepare import check_options
        from saga_sr.data.remote import check_output

        check_options(
            args.sources,
            num_lr=args.num_lr,
            rank=0,
            world_size=args.processes,
            files_per_part=args.files_per_part,
            latent_dtype=args.latent_dtype,
            out=args.out,
            seed=args.seed,
            encode_batch=args.encode_batch,
        )
        check_output(args.out)
        threads = max(1, (os.cpu_count() or 1) // args.processes)
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_child, args=(args, r, args.processes, threads)) for r in range(args.processes)]
        for proc in procs:
            proc.start()
        failed = [r for r, proc in enumerate(procs) if (proc.join() or proc.exitcode) != 0]
        if failed:
            raise DataError(f"prepare ranks {failed} failed (see their messages above); rerun to resume")
        return _report(args.out, None)
    return _report(args.out, run_rank(args, rank, world))


def _report(out: str, result) -> int:
    """Print what was written and whether the shard set is complete."""
    import json
    from pathlib import Path

    from saga_sr.data.remote import looks_like_url, read_json

    if result is not None:
        print(
            f"this rank: {result.written} files written, {len(result.skipped)} skipped; "
            f"parts {result.parts_done}/{result.parts_total} of its share done"
        )
    if looks_like_url(out):
        out = out.rstrip("/")
        info, report = read_json(out, "prepare_info.json", "-o"), f"{out}/skipped_files.txt"
    else:
        info_path, report = Path(out) / "prepare_info.json", Path(out) / "skipped_files.txt"
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else None
    if info is not None:
        print(
            f"shards complete: {out} ({info['records']} records, {info['skipped']} skipped, see "
            f"{report}); train with --train_latents {out}"
        )
    else:
        print(f"shards incomplete: other ranks' parts are still missing in {out}; the last rank to finish merges")
    return 0
