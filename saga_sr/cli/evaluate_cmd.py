"""`saga-sr evaluate`: a test folder -> per-clip CSV, per-domain tables, spectrogram grids, and the WAVs scored.

A thin wrapper over saga_sr.evaluation.evaluate.run_evaluation (the protocol is documented there).
With --processes / --devices / torchrun the test files are spread over ranks (saga_sr.inference.batch) and
rank 0 writes the tables from every rank's rows, as one process would.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from saga_sr.audio.filters import FILTER_TYPES
from saga_sr.audio.lr_sim import RESAMPLE_ONLY
from saga_sr.cli.options import add_batch_options, batch_layout, filter_order, model_or_shipped, positive_float, seed
from saga_sr.errors import SagaError
from saga_sr.outputs import check_writable

# "resample": no extra low-pass, only the resampler's anti-aliasing (real low-rate files)
FILTERS = (*FILTER_TYPES, RESAMPLE_ONLY)


def target_setting_arg(text: str):
    """argparse type for --target-rolloff (a usage error, exit 2, names the bad value)."""
    from saga_sr.inference.targets import parse_target_setting

    try:
        return parse_target_setting(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a model and three baselines on a test folder (LSD x2, LSD-HF/LF, SI-SDR, ViSQOL)",
        description="Simulate LR inputs deterministically from every HR file under TEST_DIR (subfolders are domains) "
        "at each cutoff, run the model (with and without low-frequency replacement) and three baselines "
        "(unprocessed LR, pretransform round trip + LFR, DSP bandwidth extension), and write OUT/per_clip.csv, "
        "OUT/summary.csv, OUT/results.md (tables per domain and cutoff: mean and 95 %% interval, one model row per "
        "--target-rolloff setting), "
        "OUT/spectrograms_<cutoff>hz.png and every scored signal as a 44.1 kHz float WAV under OUT/audio/ "
        "(so each number can be recomputed from the files).",
    )
    p.add_argument(
        "--model",
        type=Path,
        metavar="DIR",
        help="exported model folder (config.json + model.safetensors) or a checkpoint "
        "(default: the shipped saga-sr-mini)",
    )
    p.add_argument(
        "--test-dir",
        "--test_dir",
        required=True,
        type=Path,
        metavar="D",
        dest="test_dir",
        help="folder of HR test audio; its subfolders are reported as separate domains",
    )
    p.add_argument(
        "--cutoffs",
        type=float,
        nargs="+",
        default=[4000.0, 8000.0],
        metavar="HZ",
        help="LR cutoffs in Hz (default 4000 8000, the paper's)",
    )
    p.add_argument(
        "--filter",
        choices=FILTERS,
        default="cheby1",
        help="LR low-pass filter type (default cheby1); resample: none, only the resampler's anti-aliasing, "
        "i.e. real low-rate files (cutoff 8000 = a 16 kHz file, 11025 = a 22.05 kHz file)",
    )
    p.add_argument("--order", type=filter_order, default=8, help="LR filter order 2-10 (default 8)")
    p.add_argument(
        "--target-rolloff",
        "--target_rolloff",
        type=target_setting_arg,
        action="append",
        dest="target_rolloffs",
        metavar="{default,reference,VALUE}",
        help="target roll-off given to the model; repeat to score several settings in one run (the "
        "baselines, which take none, are computed once). default: what upsample does when none is given "
        "(conditioned on 0.9, ~19.9 kHz, nothing removed); reference: each clip's own HR roll-off (an "
        "oracle, reported as such); a number: the same for every clip, 0-1 normalised or 1000-22050 Hz "
        "(default: default)",
    )
    p.add_argument(
        "--steps", type=int, default=None, help="sampling steps (default: the model config's default_steps, else 100)"
    )
    p.add_argument("--out", type=Path, default=Path("eval_out"), metavar="DIR", help="output folder (default eval_out)")
    p.add_argument(
        "--max-files",
        "--max_files",
        type=int,
        dest="max_files",
        metavar="N",
        help="at most N files per domain (sorted order)",
    )
    p.add_argument(
        "--max-seconds",
        "--max_seconds",
        type=positive_float,
        dest="max_seconds",
        metavar="S",
        help="score only the first S seconds of each file, S > 0 (default: whole files)",
    )
    p.add_argument("--seed", type=seed, default=0, help="seed of the LR simulation, DSP noise and sampler (default 0)")
    p.add_argument(
        "--perceptual",
        choices=("auto", "visqol", "mel", "none"),
        default="auto",
        help="perceptual metric: ViSQOL audio mode (auto falls back to a labelled log-mel distance if "
        "ViSQOL cannot run; visqol makes that an error), mel, or none (default auto)",
    )
    p.add_argument("--plots", type=int, default=3, metavar="N", help="clips per spectrogram grid (default 3)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_batch_options(p)
    p.add_argument(
        "--text-encoder-path",
        "--text_encoder_path",
        dest="text_encoder_path",
        default=None,
        metavar="DIR",
        help="local T5 folder for configs that name a T5 model (offline)",
    )
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32", help="sampling precision")
    p.add_argument("--batch-size", type=int, default=4, dest="batch_size", help="windows per model call (default 4)")
    p.set_defaults(func=run_evaluate)


def _check_cutoffs(cutoffs: list[float]) -> None:
    """The LR cutoffs `degrade` accepts, each once: a repeated cutoff would score every clip twice and count the
    copies as independent samples in the means and confidence intervals."""
    from saga_sr.audio.lr_sim import MIN_CUTOFF_HZ

    lo = int(MIN_CUTOFF_HZ)
    if any(not lo <= c < 22050 for c in cutoffs):
        raise SagaError(
            f"--cutoffs must lie in [{lo}, 22050) Hz (the LR band SAGA-SR takes), got "
            f"{' '.join(f'{c:g}' for c in cutoffs)}"
        )
    if len(set(cutoffs)) != len(cutoffs):
        raise SagaError(
            f"--cutoffs {' '.join(f'{c:g}' for c in cutoffs)}: each cutoff once (a repeat counts every clip twice)"
        )


def run_evaluate(args: argparse.Namespace) -> int:
    # lazy: keeps `saga-sr --help` fast
    from saga_sr.errors import DataError
    from saga_sr.evaluation.evaluate import EvalSettings, list_test_files, run_evaluation

    if (
        (args.steps is not None and args.steps < 1)
        or args.order < 1
        or (args.max_files is not None and args.max_files < 1)
    ):
        raise SagaError("--steps, --order and --max-files must be positive")
    _check_cutoffs(args.cutoffs)
    args.model = model_or_shipped(args.model)
    try:  # a missing or empty --test-dir: refused before the model loads
        list_test_files(args.test_dir, args.max_files)
    except DataError as exc:
        raise DataError(f"--test-dir {exc}") from None
    check_writable([args.out / "results.md"])
    layout = batch_layout(args, args.device, "evaluate")
    settings = EvalSettings(
        cutoffs=tuple(args.cutoffs),
        filter_type=args.filter,
        order=args.order,
        seed=args.seed,
        max_files=args.max_files,
        max_seconds=args.max_seconds,
        perceptual=args.perceptual,
        n_plot=args.plots,
        target_rolloffs=tuple(args.target_rolloffs or ("default",)),
        extra={"model": str(args.model), "steps": args.steps or "model default", "precision": args.precision},
    )
    if layout is not None:
        return _run_batch(args, settings, layout)
    model_fn, roundtrip_fn = _systems(args, args.device)
    result = run_evaluation(
        args.test_dir,
        args.out,
        model_fn=model_fn,
        roundtrip_fn=roundtrip_fn,
        settings=settings,
        log=lambda m: print(m, file=sys.stderr),
    )
    _print_result(result)
    return 0


def _systems(args: argparse.Namespace, device: str):
    """The model's systems on `device` with this run's options (one process and every rank load the same)."""
    from saga_sr.evaluation.evaluate import load_systems

    return load_systems(
        args.model,
        steps=args.steps,
        seed=args.seed,
        device=device,
        precision=args.precision,
        batch_size=args.batch_size,
        text_encoder_path=args.text_encoder_path,
    )


def _run_batch(args: argparse.Namespace, settings, layout) -> int:
    """The test files spread over several processes (saga_sr.inference.batch), each file scored by one rank with
    the single-process step; rank 0 gathers every file's rows and writes the CSVs, tables and figures as one
    process would. A file that fails (not an unreadable one, which is skipped as in one process) leaves the
    tables unwritten, exit code 1."""
    from saga_sr.evaluation.evaluate import evaluate_file, finish_evaluation, prepare_evaluation
    from saga_sr.evaluation.perceptual import make_scorer
    from saga_sr.inference.batch import RankEnded, failures, plan_digest, run_ranks, say

    out, files = prepare_evaluation(args.test_dir, args.out, settings)
    rank_zero = {}  # what finishing needs: this rank's scorer and model function

    def make_step(device):
        model_fn, roundtrip_fn = _systems(args, str(device))
        scorer = make_scorer(settings.perceptual)
        rank_zero.update(model_fn=model_fn, scorer=scorer)

        def step(item):
            record, line = evaluate_file(out, *item, settings, scorer, model_fn, roundtrip_fn, say)
            return line, record

        return step

    try:
        results = run_ranks(
            files,
            layout,
            name=lambda item: str(item[0]),
            digest=plan_digest([(path, out) for path, _ in files]),
            make_step=make_step,
        )
    except RankEnded as exc:
        print(f"evaluate: {exc} before finishing its files; no tables written", file=sys.stderr)
        return 1
    if results is None:  # rank 0 exits with the run's code; a non-zero exit here would make Lightning kill it
        return 0
    failed = failures(results, layout)
    if failed:
        print(
            f"evaluate: {len(failed)} test file(s) failed ({', '.join(src for _, src, _, _ in failed)}); "
            "no tables written",
            file=sys.stderr,
        )
        return 1
    clips: list = [None] * len(files)
    for report in results:
        for index, record in report["done"]:
            clips[index] = record
    result = finish_evaluation(
        args.test_dir, out, files, clips, settings, rank_zero["scorer"], rank_zero["model_fn"], roundtrip=True
    )
    _print_result(result)
    return 0


def _print_result(result) -> None:
    for note in result.notes:
        print(f"note: {note}")
    print((result.out_dir / "results.md").read_text())
    print(f"per-clip metrics: {result.out_dir / 'per_clip.csv'}")
    print(f"tables: {result.out_dir / 'results.md'} (and tables/*.md)")
    for fig in result.figures:
        print(f"spectrograms: {fig}")
