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

from saga_sr.cli import CliError
from saga_sr.errors import AudioError

FILTERS = ("cheby1", "butter", "bessel", "ellip")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("degrade", help="make low-resolution versions of audio files (LR simulation)",
                              description="Low-pass + resample audio files or folders to a band limit, as training does. "
                              "Outputs are 44.1 kHz, same relative names under OUT; one JSON line per file "
                              "(also written to OUT/degrade.jsonl).")
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files or folders (searched recursively)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="output folder")
    p.add_argument("--cutoff", type=float, help="cutoff in Hz (default: drawn per file as in training)")
    p.add_argument("--cutoff-range", type=float, nargs=2, default=(2000, 16000), metavar=("LO", "HI"),
                   help="range for drawn cutoffs (default 2000 16000); capped at 0.94 x each file's roll-off")
    p.add_argument("--filter", choices=FILTERS, help="filter type (default: drawn per file)")
    p.add_argument("--order", type=int, help="filter order 2-10 (default: drawn per file)")
    p.add_argument("--seed", type=int, default=0, help="random seed (per file: seed + name hash); default 0")
    p.add_argument("--subtype", help="soundfile subtype (default: FLOAT for WAV, PCM_24 for FLAC)")
    p.add_argument("--downmix", action="store_true", help="average files with more than 2 channels to mono")
    p.set_defaults(func=run_degrade)

    p = subparsers.add_parser("rolloff", help="spectral roll-off (98.5 %%) of audio files as JSON lines",
                              description="The paper's spectral roll-off (Hann 2048 / hop 512, time-summed magnitude, "
                              "98.5 %%), one JSON line per file: path, rolloff_hz, rolloff_normalized, bin, sample_rate.")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files or folders")
    p.add_argument("--sample-rate", type=int, default=44100,
                   help="analysis rate; files are resampled to it (default 44100, the model's; 0 = file's own)")
    p.set_defaults(func=run_rolloff)

    p = subparsers.add_parser("metrics", help="LSD (two variants), LSD-HF/LF, SI-SDR of estimates vs references",
                              description="Compare REF and EST (two files, or two folders matched by relative name "
                              "without extension). Both are read at 44.1 kHz. Folder mode prints one JSON line per "
                              "pair and a final summary line with means and counts.")
    p.add_argument("ref", type=Path, metavar="REF")
    p.add_argument("est", type=Path, metavar="EST")
    p.add_argument("--cutoff", type=float, help="LR cutoff in Hz for lsd_hf / lsd_lf (null without it)")
    p.set_defaults(func=run_metrics)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _file_seed(seed: int, rel: Path) -> list[int]:
    """A per-file seed that does not change when other files are added to the batch."""
    return [seed, zlib.crc32(rel.as_posix().encode())]


def run_degrade(args: argparse.Namespace) -> int:
    import numpy as np  # lazy: keeps `saga-sr --help` fast

    from saga_sr.audio.io import find_audio_files_relative, load_audio, save_audio
    from saga_sr.audio.lr_sim import simulate_lr

    if args.order is not None and not 2 <= args.order <= 10:
        raise CliError(f"--order must be 2..10, not {args.order}")
    if args.cutoff is not None and not 0 < args.cutoff < 22050:
        raise CliError(f"--cutoff must lie in (0, 22050) Hz, not {args.cutoff}")
    out_root = args.output
    # when OUT is a subfolder of an input folder, files already in it are earlier outputs, not inputs
    out_abs = out_root.resolve()

    def earlier_output(f: Path, rel: Path) -> bool:
        root = f.resolve().parents[len(rel.parts) - 1]
        return out_abs != root and out_abs.is_relative_to(root) and f.resolve().is_relative_to(out_abs)

    files = [(f, rel) for f, rel in find_audio_files_relative(args.inputs) if not earlier_output(f, rel)]
    if not files:
        raise CliError("no audio files found in " + ", ".join(args.inputs))
    inputs = {f.resolve() for f, _ in files}
    failed = 0
    records = []
    for src, rel in files:
        dst = out_root / rel
        if dst.resolve() in inputs:
            _err(f"saga-sr degrade: {src}: output {dst} would overwrite an input; skipped")
            failed += 1
            continue
        try:
            wav, sr = load_audio(src, target_sr=44100, downmix=args.downmix)
            res = simulate_lr(wav, sr, rng=np.random.default_rng(_file_seed(args.seed, rel)), cutoff=args.cutoff,
                              filter_type=args.filter, order=args.order, cutoff_range=tuple(args.cutoff_range))
            save_audio(dst, res.audio, sr, subtype=args.subtype)
        except (AudioError, ValueError) as exc:
            _err(f"saga-sr degrade: {src}: {exc}" if str(src) not in str(exc) else f"saga-sr degrade: {exc}")
            failed += 1
            continue
        record = {"input": str(src), "output": str(dst), "cutoff_hz": res.cutoff_hz, "filter": res.filter_type,
                  "order": res.order, "sample_rate": sr}
        records.append(record)
        print(json.dumps(record), flush=True)
    if records:
        out_root.mkdir(parents=True, exist_ok=True)
        (out_root / "degrade.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if failed:
        _err(f"saga-sr degrade: {failed} of {len(files)} file(s) failed")
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
        print(json.dumps({"path": str(path), "rolloff_hz": r.hz, "rolloff_normalized": r.normalized, "bin": r.bin,
                          "sample_rate": sr}), flush=True)
    return 1 if failed else 0


def _pair_metrics(ref: Path, est: Path, cutoff: float | None) -> dict:
    from saga_sr.audio.io import load_audio  # lazy: keeps `saga-sr --help` fast
    from saga_sr.audio.metrics import all_metrics

    r, sr = load_audio(ref, target_sr=44100, allow_silent=True)
    e, _ = load_audio(est, target_sr=44100, allow_silent=True)
    return {"ref": str(ref), "est": str(est), **all_metrics(r, e, sr, cutoff)}


def _match(ref_dir: Path, est_dir: Path) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """Pairs matched by relative path without extension; refs without estimate; estimates without ref."""
    from saga_sr.audio.io import find_audio_files_relative  # lazy: keeps `saga-sr --help` fast

    def index(root: Path) -> dict[str, Path]:
        return {rel.with_suffix("").as_posix(): f for f, rel in find_audio_files_relative([root])}

    refs, ests = index(ref_dir), index(est_dir)
    pairs = [(refs[k], ests[k]) for k in sorted(refs) if k in ests]
    return pairs, [refs[k] for k in sorted(refs) if k not in ests], [ests[k] for k in sorted(ests) if k not in refs]


def run_metrics(args: argparse.Namespace) -> int:
    if args.ref.is_file() and args.est.is_file():
        print(json.dumps(_pair_metrics(args.ref, args.est, args.cutoff)))
        return 0
    if not (args.ref.is_dir() and args.est.is_dir()):
        raise CliError(f"REF and EST must both be files or both be folders ({args.ref}, {args.est})")
    pairs, missing, unmatched = _match(args.ref, args.est)
    for path in missing:
        _err(f"saga-sr metrics: {path}: no estimate with this name in {args.est}")
    rows, failed = [], 0
    for ref, est in pairs:
        try:
            row = _pair_metrics(ref, est, args.cutoff)
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
    print(json.dumps({"summary": True, "count": len(rows), "means": means, "failed": failed,
                      "missing_estimates": len(missing), "unmatched_estimates": len(unmatched)}))
    return 1 if (failed or missing or not rows) else 0
