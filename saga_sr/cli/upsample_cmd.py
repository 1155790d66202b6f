"""`saga-sr upsample INPUT... -o OUT --model DIR`: band-limited audio files -> 44.1 kHz WAV files.

Outputs: `-o NAME.wav` with one input file writes exactly that file (another audio extension such as
.flac writes that format; an integer format fails a file whose output peaks above full scale); otherwise -o is a
folder and each input keeps its path relative to the argument it came from (a named file: its own name; a folder:
the path below it) with the extension replaced by `.wav` (32-bit float, 44.1 kHz, same channels and duration).
Existing outputs are refused unless --overwrite (replace) or --skip-existing (keep: resume a batch); an
output that would replace an input is refused; every output folder is checked writable before the model
loads. Outputs are written atomically with ordinary permissions. A file that cannot be read or processed
fails alone with its reason; the exit code is 1 when any file failed, 2 for usage errors (nothing is
written then).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from saga_sr.cli import CliError
from saga_sr.cli.options import (
    add_batch_options,
    add_output_policy,
    batch_layout,
    downmix_hint,
    finite_float,
    model_or_shipped,
    positive_float,
    positive_int,
    seed,
    target_rolloff,
    torch_device,
)
from saga_sr.outputs import apply_existing_policy, check_writable, plan_outputs, prepare_folders

DESCRIPTION = __doc__.split("\n\n", 1)[1] if __doc__ else ""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "upsample",
        help="super-resolve audio files to 44.1 kHz",
        description="Super-resolve band-limited audio (any libsndfile format, 4-48 kHz input rate) to 44.1 kHz.\n\n"
        + DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders (searched recursively)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output folder, or the output file (NAME.wav) when there is one input file",
    )
    p.add_argument(
        "--model",
        metavar="DIR",
        help="exported model folder (config.json + model.safetensors) or a training .ckpt "
        "(default: the shipped saga-sr-mini)",
    )
    p.add_argument(
        "--input-cutoff",
        type=positive_float,
        metavar="HZ",
        help="input band edge in Hz: the input is kept exactly below it (default: detected per file, "
        "where its spectrum falls to the noise floor). The model's input roll-off f_l is always "
        "the measured 98.5%% roll-off, as in training",
    )
    p.add_argument(
        "--target-rolloff",
        type=target_rolloff,
        default=None,
        metavar="X",
        help="target roll-off: 0-1 normalised (bin/1025) or Hz from 1000 to 22050; a model with "
        "target_band_limit (saga-sr-mini) also removes what it generates above it, never the "
        "input's own band (default, or 'default': conditioned on 0.9, ~19.9 kHz, nothing removed)",
    )
    p.add_argument(
        "--prompt",
        metavar="TEXT",
        help="caption for every input (default: NAME.caption.txt beside each input, else empty)",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="Euler steps (default: the model config's default_steps, else 100)",
    )
    p.add_argument(
        "--schedule",
        default="linear_quadratic",
        choices=["linear_quadratic", "logsnr_linear"],
        help="time grid (default %(default)s, the paper's)",
    )
    p.add_argument(
        "--cfg-audio",
        type=finite_float,
        default=None,
        help="acoustic (LR) guidance scale s_a (default: the model config's cfg_scales, else 1.4)",
    )
    p.add_argument(
        "--cfg-text",
        type=finite_float,
        default=None,
        help="text guidance scale s_t (default: the model config's cfg_scales, else 1.2)",
    )
    p.add_argument("--seed", type=seed, default=0, help="noise seed, 0 to 2^32 - 1 (default %(default)s)")
    p.add_argument("--no-lfr", action="store_true", help="skip low-frequency replacement")
    p.add_argument("--batch-size", type=positive_int, default=4, help="windows per DiT batch (default %(default)s)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)")
    add_batch_options(p)
    p.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16", "fp16"],
        help="DiT autocast precision (default %(default)s; bf16 recommended on GPUs)",
    )
    p.add_argument("--text-encoder-path", metavar="PATH", help="local T5 folder for pretrained-T5 configs")
    p.add_argument("--downmix", action="store_true", help="average inputs with more than 2 channels to mono")
    add_output_policy(p)
    p.add_argument(
        "--report",
        action="store_true",
        help="write NAME.report.json beside each output: band edge, roll-off f_l, target, steps, cfg, timing",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _plan_outputs(args: argparse.Namespace) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(input, output) pairs to run and existing outputs kept, under saga_sr.outputs' contract (OutputError)."""
    from saga_sr.audio.io import AUDIO_EXTENSIONS, find_audio_files_relative, output_subtype  # lazy: --help

    found = find_audio_files_relative(args.inputs)
    if not found:
        raise CliError(f"no audio files found in {', '.join(args.inputs)}")
    single = len(args.inputs) == 1 and Path(args.inputs[0]).is_file()
    pairs = plan_outputs(found, args.output, suffix=".wav", file_extensions=AUDIO_EXTENSIONS, single_input_file=single)
    output_subtype(pairs[0][1])  # a format libsndfile cannot write fails now, not after inference
    todo, kept = apply_existing_policy(pairs, overwrite=args.overwrite, skip_existing=args.skip_existing)
    check_writable(dst for _, dst in todo)
    return todo, kept


def _edge_text(info) -> str:
    if info.band_edge_source == "input_cutoff":
        return f"band edge {info.band_edge_hz:.0f} Hz (--input-cutoff; detected {info.detected_edge_hz:.0f} Hz)"
    how = "detected" if info.edge_cliff else "no cliff found: the input's Nyquist"
    return f"band edge {info.band_edge_hz:.0f} Hz ({how})"


def _write_report(dst: Path, src: Path, model: Path, info) -> Path:
    """NAME.report.json beside the output (atomic, saga_sr.outputs)."""
    import json

    from saga_sr.outputs import write_text_atomic

    report = {"input": str(src), "output": str(dst), "model": str(model), **info.to_json()}
    return write_text_atomic(dst.with_name(dst.stem + ".report.json"), json.dumps(report, indent=1) + "\n")


def _file_step(args: argparse.Namespace, model_path: Path, device):
    """The model on `device` and the per-file step with this run's options: step(src, dst, progress) -> FileResult
    (raises with the reason when the file fails). One process and every rank of a batch run this same step."""
    from saga_sr.data.index import sidecar_path  # lazy: keeps `saga-sr --help` fast
    from saga_sr.inference.files import resolve_prompt, upsample_file
    from saga_sr.inference.pipeline import Upsampler
    from saga_sr.models.checkpoint import load_model

    model = load_model(model_path, device=device, text_encoder_path=args.text_encoder_path)
    up = Upsampler(model, device, args.precision)

    def step(src: Path, dst: Path, progress: bool = False):
        res = upsample_file(
            up,
            src,
            dst,
            prompt=resolve_prompt(args.prompt, sidecar_path(src, "caption")),
            downmix=args.downmix,
            input_cutoff_hz=args.input_cutoff,
            target_rolloff=args.target_rolloff,
            steps=args.steps,
            cfg_audio=args.cfg_audio,
            cfg_text=args.cfg_text,
            seed=args.seed,
            lfr=not args.no_lfr,
            batch_size=args.batch_size,
            progress=progress,
            schedule=args.schedule,
        )
        if args.report:
            _write_report(dst, src, model_path, res.info)
        return res

    return step


def _run_batch(args: argparse.Namespace, pairs, kept, model_path: Path, layout) -> int:
    """The batch over several processes (saga_sr.inference.batch): each rank loads the model on its device."""
    from saga_sr.inference.batch import run_batch

    prepare_folders([dst for _, dst in pairs] + kept)

    def make_step(device):
        step = _file_step(args, model_path, device)
        return lambda src, dst: _file_text(src, dst, step(src, dst))

    return run_batch(pairs, len(kept), layout, make_step=make_step, quiet=args.quiet)


def _file_text(src: Path, dst: Path, res) -> str:
    info = res.info
    return (
        f"{src} -> {dst} ({info.input_seconds:.1f} s audio in {res.elapsed:.1f} s; "
        f"{_edge_text(info)}, roll-off f_l {info.rolloff_hz:.0f} Hz)"
    )


def run(args: argparse.Namespace) -> int:
    pairs, kept = _plan_outputs(args)
    model_path = model_or_shipped(args.model)
    device = torch_device(args.device)
    layout = batch_layout(args, device, "upsample")
    if not pairs:
        print(f"upsample: 0 ok, 0 failed, {len(kept)} kept (existing)")
        return 0
    if layout is not None:
        return _run_batch(args, pairs, kept, model_path, layout)

    from saga_sr.inference.files import failure_line  # lazy: keeps `saga-sr --help` fast

    step = _file_step(args, model_path, device)
    prepare_folders([dst for _, dst in pairs] + kept)
    if kept:
        print(f"upsample: {len(kept)} existing output(s) kept (--skip-existing)", file=sys.stderr)
    ok, failed = 0, []
    show = not args.quiet and sys.stderr.isatty()
    for n, (src, dst) in enumerate(pairs, 1):
        try:
            res = step(src, dst, progress=show)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 -- one bad file must not stop the batch
            failed.append(src)
            print(f"[{n}/{len(pairs)}] FAILED {failure_line(src, downmix_hint(exc))}", file=sys.stderr)
            continue
        ok += 1
        if not args.quiet:
            print(f"[{n}/{len(pairs)}] {_file_text(src, dst, res)}", file=sys.stderr)
    print(
        f"upsample: {ok} ok, {len(failed)} failed, {len(kept)} kept (existing)"
        + (f" ({', '.join(map(str, failed))})" if failed else "")
    )
    return 1 if failed else 0
