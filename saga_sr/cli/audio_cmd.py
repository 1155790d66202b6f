"""`saga-sr degrade`, `saga-sr rolloff`, `saga-sr metrics`: thin CLIs over saga_sr.audio (metrics included).

Batch behaviour (all three): a bad file is reported on stderr with its name, gets no output, and the
others are still processed; the exit code is 1 when any file failed (2 for usage errors).
Results go to stdout as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

from saga_sr.audio.filters import FILTER_TYPES
from saga_sr.cli import CliError
from saga_sr.cli.options import add_output_policy, downmix_hint, filter_order, nonnegative_int, positive_float, seed
from saga_sr.errors import AudioError
from saga_sr.outputs import (
    apply_existing_policy,
    check_writable,
    names_a_file,
    plan_outputs,
    prepare_folders,
    write_text_atomic,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "degrade",
        help="make low-resolution versions of audio files (LR simulation)",
        description="Low-pass + resample audio files or folders to a band limit, as training does. "
        "Outputs are 44.1 kHz 32-bit float WAV (a simulated LR may exceed full scale, which only "
        "a float format keeps), same relative names under OUT with the extension of --format; "
        "-o NAME.wav (or .flac) with one input file writes exactly that file. One JSON line per "
        "file (also merged into OUT/degrade.jsonl in folder mode). Integer formats (--format flac, "
        "--subtype PCM_16/PCM_24) never clip: a file whose peak exceeds full scale fails with its "
        "peak, unless --scale-to-fit scales it down (the gain is in its JSON line).",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files or folders (searched recursively)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="OUT",
        help="output folder, or the output file when there is one input file",
    )
    p.add_argument("--cutoff", type=positive_float, help="cutoff in Hz (default: drawn per file as in training)")
    p.add_argument(
        "--cutoff-range",
        type=positive_float,
        nargs=2,
        default=(2000, 16000),
        metavar=("LO", "HI"),
        help="range for drawn cutoffs (default 2000 16000); capped at 0.94 x each file's roll-off",
    )
    p.add_argument("--filter", choices=FILTER_TYPES, help="filter type (default: drawn per file)")
    p.add_argument("--order", type=filter_order, help="filter order 2-10 (default: drawn per file)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (per file: seed + name hash); default 0")
    p.add_argument(
        "--format",
        choices=("wav", "flac"),
        default="wav",
        help="output container in folder mode (default wav: 32-bit float; flac is 24-bit integer)",
    )
    p.add_argument("--subtype", help="soundfile subtype (default: FLOAT for WAV, PCM_24 for FLAC)")
    p.add_argument(
        "--scale-to-fit",
        action="store_true",
        help="integer formats: scale a file that exceeds full scale down to fit, reporting the gain "
        "(default: such a file fails)",
    )
    p.add_argument("--downmix", action="store_true", help="average files with more than 2 channels to mono")
    add_output_policy(p)
    p.set_defaults(func=run_degrade)

    p = subparsers.add_parser(
        "rolloff",
        help="spectral roll-off (98.5 %%) of audio files as JSON lines",
        description="The paper's spectral roll-off (Hann 2048 / hop 512, time-summed magnitude, "
        "98.5 %%), one JSON line per file: path, rolloff_hz, rolloff_normalized, bin, sample_rate.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files or folders")
    p.add_argument(
        "--sample-rate",
        type=nonnegative_int,
        default=44100,
        help="analysis rate; files are resampled to it (default 44100, the model's; 0 = file's own)",
    )
    p.set_defaults(func=run_rolloff)

    p = subparsers.add_parser(
        "metrics",
        help="LSD (two variants), LSD-HF/LF, SI-SDR of estimates vs references",
        description="Compare REF and EST (two files, or two folders matched by relative name "
        "without extension). Both are read at 44.1 kHz. A pair must have the same sample rate, "
        "channel count and length (within one 512-sample hop): anything else is an error unless "
        "--align. Folder mode prints one JSON line per pair and a final summary line with means "
        "and counts.",
    )
    p.add_argument("ref", type=Path, metavar="REF")
    p.add_argument("est", type=Path, metavar="EST")
    p.add_argument(
        "--cutoff", type=positive_float, help="LR cutoff in Hz for lsd_hf / lsd_lf, in (0, 22050) (null without it)"
    )
    p.add_argument(
        "--align",
        action="store_true",
        help="score pairs that differ in rate, length or mono/multi-channel: both resampled to 44.1 kHz, "
        "trimmed to the shorter, mono compared with each channel",
    )
    p.set_defaults(func=run_metrics)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _file_seed(seed: int, rel: Path) -> list[int]:
    """A per-file seed that does not change when other files are added to the batch."""
    return [seed, zlib.crc32(rel.as_posix().encode())]


def _degrade_plan(args: argparse.Namespace) -> tuple[list[tuple[Path, Path, Path]], list[Path], bool]:
    """(input, relative name, output) to do, existing outputs kept, and whether -o is one file."""
    from saga_sr.audio.io import AUDIO_EXTENSIONS, find_audio_files_relative  # lazy: --help

    out_abs = args.output.resolve()
    if any(Path(i).is_dir() and Path(i).resolve() == out_abs for i in args.inputs):
        raise CliError(f"-o {args.output} is an input folder; outputs would mix with the inputs")

    def earlier_output(f: Path, rel: Path) -> bool:
        # when OUT is a subfolder of an input folder, files already in it are earlier outputs, not inputs
        root = f.resolve().parents[len(rel.parts) - 1]
        return (
            out_abs not in (root, f.resolve()) and out_abs.is_relative_to(root) and f.resolve().is_relative_to(out_abs)
        )

    found = [(f, rel) for f, rel in find_audio_files_relative(args.inputs) if not earlier_output(f, rel)]
    if not found:
        raise CliError("no audio files found in " + ", ".join(args.inputs))
    single = len(args.inputs) == 1 and Path(args.inputs[0]).is_file()
    pairs = plan_outputs(
        found, args.output, suffix="." + args.format, file_extensions=AUDIO_EXTENSIONS, single_input_file=single
    )
    check_subtype(pairs[0][1], args.subtype)  # an unwritable format fails before any work
    todo, kept = apply_existing_policy(pairs, overwrite=args.overwrite, skip_existing=args.skip_existing)
    check_writable(dst for _, dst in todo)
    rels = dict(found)
    return [(src, rels[src], dst) for src, dst in todo], kept, names_a_file(args.output, AUDIO_EXTENSIONS)


def check_subtype(path: Path, subtype: str | None) -> None:
    """CliError naming --subtype unless the output container of `path` can hold it."""
    import soundfile as sf  # lazy: --help

    from saga_sr.audio.io import _container, output_subtype

    fmt = _container(path)
    if subtype is not None and not sf.check_format(fmt, subtype.upper()):
        raise CliError(
            f"--subtype {subtype}: {fmt} cannot hold it; use one of {', '.join(sorted(sf.available_subtypes(fmt)))}"
        )
    output_subtype(path, subtype)


def _merge_records(path: Path, records: list[dict]) -> None:
    """OUT/degrade.jsonl: earlier records (a resumed batch) with this run's replacing those of the same output."""

    merged: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                old = json.loads(line)
                merged[old["output"]] = old
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    merged.update({r["output"]: r for r in records})
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in merged.values()))


def run_degrade(args: argparse.Namespace) -> int:
    import numpy as np  # lazy: keeps `saga-sr --help` fast

    from saga_sr.audio.io import fit_gain, load_audio, save_audio
    from saga_sr.audio.lr_sim import MIN_CUTOFF_HZ, simulate_lr

    lo = int(MIN_CUTOFF_HZ)
    if args.cutoff is not None and not lo <= args.cutoff < 22050:
        raise CliError(f"--cutoff {args.cutoff:g}: must lie in [{lo}, 22050) Hz (the LR band SAGA-SR takes)")
    if not all(lo <= c < 22050 for c in args.cutoff_range):
        raise CliError(
            f"--cutoff-range {args.cutoff_range[0]:g} {args.cutoff_range[1]:g}: both ends must lie in [{lo}, 22050) Hz"
        )
    if args.cutoff_range[0] > args.cutoff_range[1]:
        raise CliError(f"--cutoff-range {args.cutoff_range[0]:g} {args.cutoff_range[1]:g}: LO is above HI")
    todo, kept, one_file = _degrade_plan(args)
    prepare_folders([dst for _, _, dst in todo] + kept)
    failed = 0
    records = []
    for src, rel, dst in todo:
        try:
            wav, sr = load_audio(src, target_sr=44100, downmix=args.downmix)
            res = simulate_lr(
                wav,
                sr,
                rng=np.random.default_rng(_file_seed(args.seed, rel)),
                cutoff=args.cutoff,
                filter_type=args.filter,
                order=args.order,
                cutoff_range=tuple(args.cutoff_range),
            )
            audio, peak = res.audio, float(np.max(np.abs(res.audio)))
            gain = fit_gain(audio, dst, args.subtype) if args.scale_to_fit else 1.0
            save_audio(dst, audio * gain if gain != 1.0 else audio, sr, subtype=args.subtype)
        except (AudioError, ValueError) as exc:
            exc = downmix_hint(exc)
            hint = " (pass --scale-to-fit, or use the default float WAV)" if "full scale" in str(exc) else ""
            _err(
                f"saga-sr degrade: {src}: {exc}{hint}" if str(src) not in str(exc) else f"saga-sr degrade: {exc}{hint}"
            )
            failed += 1
            continue
        record = {
            "input": str(src),
            "output": str(dst),
            "cutoff_hz": res.cutoff_hz,
            "filter": res.filter_type,
            "order": res.order,
            "sample_rate": sr,
            "peak": peak,
            "gain": gain,
        }
        if gain != 1.0:
            _err(f"saga-sr degrade: {dst}: peak {peak:.3f} scaled by {gain:.4f} ({20 * np.log10(gain):.2f} dB) to fit")
        records.append(record)
        print(json.dumps(record), flush=True)
    if records and not one_file:
        _merge_records(args.output / "degrade.jsonl", records)
    if kept:
        _err(f"saga-sr degrade: {len(kept)} existing output(s) kept (--skip-existing)")
    if failed:
        _err(f"saga-sr degrade: {failed} of {len(todo)} file(s) failed")
    return 1 if failed else 0


def run_rolloff(args: argparse.Namespace) -> int:
    from saga_sr.audio.io import find_audio_files, load_audio  # lazy: keeps `saga-sr --help` fast
    from saga_sr.audio.spectral import rolloff

    failed = 0
    files = find_audio_files(args.files)
    for path in files:
        try:
            wav, sr = load_audio(path, target_sr=args.sample_rate or None, allow_silent=True)
        except AudioError as exc:
            _err(f"saga-sr rolloff: {exc}")
            failed += 1
            continue
        r = rolloff(wav, sr)
        print(
            json.dumps(
                {
                    "path": str(path),
                    "rolloff_hz": r.hz,
                    "rolloff_normalized": r.normalized,
                    "bin": r.bin,
                    "sample_rate": sr,
                }
            ),
            flush=True,
        )
    return 1 if failed else 0


def _pair_metrics(ref: Path, est: Path, cutoff: float | None, aligned: bool = False) -> dict:
    """Metrics of one pair read at 44.1 kHz; ValueError when the pair differs in rate (or shape) unless `aligned`."""
    from saga_sr.audio.io import audio_rate, load_audio  # lazy: keeps `saga-sr --help` fast
    from saga_sr.audio.metrics import align, all_metrics

    rates = audio_rate(ref), audio_rate(est)
    if rates[0] != rates[1] and not aligned:
        raise ValueError(
            f"sample rates differ: {ref} is {rates[0]} Hz, {est} is {rates[1]} Hz (--align resamples both)"
        )
    r, sr = load_audio(ref, target_sr=44100, allow_silent=True)
    e, _ = load_audio(est, target_sr=44100, allow_silent=True)
    if aligned:
        r, e = align(r, e)
    try:
        scores = all_metrics(r, e, sr, cutoff)
    except ValueError as exc:
        raise ValueError(f"{exc}" + ("" if aligned else " (--align trims and broadcasts on purpose)")) from None
    return {"ref": str(ref), "est": str(est), **scores}


def _match(ref_dir: Path, est_dir: Path) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """Pairs matched by relative path without extension; refs without estimate; estimates without ref."""
    from saga_sr.audio.io import find_audio_files_relative  # lazy: keeps `saga-sr --help` fast

    def index(root: Path) -> dict[str, Path]:
        # a pair is matched by name without extension, so two files of one name (a.wav, a.flac) are ambiguous
        found: dict[str, Path] = {}
        for f, rel in find_audio_files_relative([root]):
            key = rel.with_suffix("").as_posix()
            if key in found:
                raise CliError(
                    f"{found[key]} and {f}: one name with two extensions; pairs are matched by name without extension"
                )
            found[key] = f
        if not found:
            raise CliError(f"{root}: no audio files in this folder")
        return found

    refs, ests = index(ref_dir), index(est_dir)
    pairs = [(refs[k], ests[k]) for k in sorted(refs) if k in ests]
    return pairs, [refs[k] for k in sorted(refs) if k not in ests], [ests[k] for k in sorted(ests) if k not in refs]


def run_metrics(args: argparse.Namespace) -> int:
    for name, path in (("REF", args.ref), ("EST", args.est)):
        if not path.exists():
            raise CliError(f"{name} {path}: no such file or folder")
    if args.cutoff is not None and not args.cutoff < 22050:
        raise CliError(f"--cutoff {args.cutoff:g}: must lie in (0, 22050) Hz, the Nyquist frequency at 44.1 kHz")
    if args.ref.is_file() and args.est.is_file():
        try:
            row = _pair_metrics(args.ref, args.est, args.cutoff, args.align)
        except ValueError as exc:
            raise CliError(f"{args.ref} vs {args.est}: {exc}") from exc
        print(json.dumps(row))
        return 0
    if not (args.ref.is_dir() and args.est.is_dir()):
        raise CliError(f"REF and EST must both be files or both be folders ({args.ref}, {args.est})")
    pairs, missing, unmatched = _match(args.ref, args.est)
    for path in missing:
        _err(f"saga-sr metrics: {path}: no estimate with this name in {args.est}")
    rows, failed = [], 0
    for ref, est in pairs:
        try:
            row = _pair_metrics(ref, est, args.cutoff, args.align)
        except (AudioError, ValueError) as exc:
            _err(f"saga-sr metrics: {ref} vs {est}: {exc}")
            failed += 1
            continue
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = ("lsd", "lsd_ssr", "lsd_hf", "lsd_lf", "si_sdr")
    means = {}
    for k in keys:
        vals = [r[k] for r in rows if r[k] is not None]
        means[k] = sum(vals) / len(vals) if vals else None
    print(
        json.dumps(
            {
                "summary": True,
                "count": len(rows),
                "means": means,
                "failed": failed,
                "missing_estimates": len(missing),
                "unmatched_estimates": len(unmatched),
            }
        )
    )
    return 1 if (failed or missing or not rows) else 0
