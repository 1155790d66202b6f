"""`saga-sr caption AUDIO... --model PATH [--overwrite]`: Qwen2-Audio captions as NAME.caption.txt sidecars.

Uses the SAGA-SR authors' prompt and settings (see saga_sr.data.caption). Each caption is written
atomically beside its audio file; existing sidecars are kept unless --overwrite. A file that cannot be
read fails alone with its reason; the exit code is 1 when any file failed, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys

from saga_sr.cli import CliError
from saga_sr.errors import AudioError
from saga_sr.outputs import write_text_atomic


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "caption",
        help="caption audio files with Qwen2-Audio (NAME.caption.txt sidecars)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="AUDIO", help="audio files or folders (searched recursively)")
    p.add_argument("--model", required=True, metavar="PATH", help="local Qwen2-Audio folder (e.g. Qwen2-Audio-7B)")
    p.add_argument("--overwrite", action="store_true", help="replace existing NAME.caption.txt files")
    p.add_argument("--batch-size", type=int, default=4, help="clips per generate call (default %(default)s)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="model weights dtype (default: as saved)",
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        metavar="N",
        help="generation budget (default: 256 minus the prompt's tokens, the authors' max_length 256)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saga_sr.audio.io import find_audio_files  # lazy: keeps `saga-sr --help` fast
    from saga_sr.data.caption import CAPTION_SR, Captioner, sidecar_path

    if args.batch_size < 1:
        raise CliError("--batch-size must be at least 1")
    try:
        files = find_audio_files(args.inputs)
    except AudioError as exc:
        raise CliError(str(exc)) from exc
    todo = [f for f in files if args.overwrite or not sidecar_path(f).exists()]
    skipped = len(files) - len(todo)
    if not files:
        raise CliError(f"no audio files found in {', '.join(args.inputs)}")
    device = args.device
    if device == "auto":
        import torch  # lazy: keeps `saga-sr --help` fast

        device = "cuda" if torch.cuda.is_available() else "cpu"
    captioner = Captioner(args.model, device, args.dtype, max_new_tokens=args.max_new_tokens) if todo else None

    from saga_sr.audio.io import load_audio  # lazy: keeps `saga-sr --help` fast

    ok, failed = 0, []
    for start in range(0, len(todo), args.batch_size):
        batch, waves = [], []
        for f in todo[start : start + args.batch_size]:
            try:
                wav, _ = load_audio(f, target_sr=CAPTION_SR, channels=1, downmix=True)
            except Exception as exc:  # noqa: BLE001 -- a bad file fails alone
                failed.append(f)
                print(f"FAILED {f}: {exc}", file=sys.stderr)
                continue
            batch.append(f)
            waves.append(wav[0])
        if not batch:
            continue
        try:
            texts = captioner.caption(waves)
        except Exception as exc:  # noqa: BLE001
            failed.extend(batch)
            print(f"FAILED {', '.join(map(str, batch))}: {exc}", file=sys.stderr)
            continue
        for f, text in zip(batch, texts):
            write_text_atomic(sidecar_path(f), text + "\n")
            ok += 1
            print(f"{sidecar_path(f)}: {text[:80]}", file=sys.stderr)
    print(f"caption: {ok} ok, {len(failed)} failed, {skipped} kept (existing sidecars)")
    return 1 if failed else 0
