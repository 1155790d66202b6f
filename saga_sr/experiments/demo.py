"""`saga-sr demo`: the main job end to end on a fresh machine, with the CC0 clips shipped in saga_sr/assets.

1. takes the shipped model (saga-sr-mini, trained by `saga-sr recipe mini`; its held-out split excludes the
   demo's test clips), or with `train=True` trains tiny.json on assets/demo/train for a wall-time budget on CPU
   (the trainer's max_time);
2. evaluates on the held-out assets/demo/test/<domain>/ clips at 4 and 8 kHz cutoffs (saga_sr.evaluation:
   the model, the unprocessed input, the pretransform round trip + LFR and the DSP extension), giving the model
   the `default` target roll-off (0.9, about 19.9 kHz: what `saga-sr upsample` uses) unless other settings are
   asked for (saga_sr.inference.targets; the table's target column and notes say which);
3. upsamples one held-out clip from an 8 kHz-band input (a 16 kHz file, as a user would have it) with
   upsample's default target roll-off and saves input / output / reference WAVs and their spectrograms.
The numbers are whatever the run gives: minutes of CPU training on under a minute of audio (`train=True`) do
not make a good model, and the table says so next to the baselines.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from saga_sr.audio.io import load_audio, save_audio
from saga_sr.audio.lr_sim import simulate_lr
from saga_sr.audio.plots import spectrogram_grid
from saga_sr.audio.resample import resample
from saga_sr.errors import ModelLoadError
from saga_sr.evaluation.evaluate import EvalSettings, model_functions, run_evaluation
from saga_sr.inference.pipeline import Upsampler
from saga_sr.models.checkpoint import load_model
from saga_sr.models.shipped import default_model_path
from saga_sr.training.run import checkpoint_step, find_resume_checkpoint, train

SHOWCASE = "music/loop_mika.flac"
SHOWCASE_RATE = 16000  # an 8 kHz band: what `saga-sr upsample` gets from a 16 kHz recording


def assets_dir() -> Path:
    """The shipped demo clips (train/ and test/<domain>/, with SOURCES.txt)."""
    return Path(str(resources.files("saga_sr") / "assets" / "demo"))


@dataclass
class DemoResult:
    out_dir: Path
    model_dir: Path
    steps: int
    train_seconds: float
    results_md: Path
    figures: list[Path]
    showcase: dict[str, Path]
    notes: list[str]


def train_for(out: Path, seconds: float, *, seed: int = 0, quick: bool = False) -> tuple[int, float]:
    """Train tiny.json for about `seconds` of wall time (Lightning's max_time; quick: 2 steps); returns
    (steps, wall s)."""
    t0 = time.perf_counter()
    train(
        train_dir=[str(assets_dir() / "train")],
        model_config="tiny",
        output_dir=str(out),
        max_steps=2 if quick else 10**6,
        max_time=None if quick else seconds / 60.0,
        seed=seed,
        batch_size=2 if quick else 4,
        num_workers=0,
        no_progress_bar=True,
        log_every=1 if quick else 10,
        checkpoint_every=10**6,
    )
    return checkpoint_step(find_resume_checkpoint("last", out)), time.perf_counter() - t0


def showcase(model, out: Path, *, steps: int, seed: int, max_seconds: float | None = None) -> dict[str, Path]:
    """Upsample the held-out showcase clip from a 16 kHz (8 kHz-band) file; WAVs + a 3-panel spectrogram."""
    hr, sr = load_audio(assets_dir() / "test" / SHOWCASE, target_sr=44100)
    hr = hr[:, : int(max_seconds * sr)] if max_seconds else hr
    band = simulate_lr(hr, sr, seed=seed, cutoff=SHOWCASE_RATE / 2 * 0.98, filter_type="cheby1", order=8).audio
    low = resample(band, sr, SHOWCASE_RATE).astype("float32")
    paths = {
        "input_16k": save_audio(out / "showcase" / "input_16k.wav", low, SHOWCASE_RATE),
        "reference": save_audio(out / "showcase" / "reference.wav", hr, sr),
    }
    up = Upsampler(model, "cpu").upsample(low, SHOWCASE_RATE, steps=steps, seed=seed)  # band detected, as the CLI
    paths["upsampled"] = save_audio(out / "showcase" / "upsampled_44k.wav", up, 44100)
    input_44k = resample(low, SHOWCASE_RATE, sr)
    paths["spectrogram"] = spectrogram_grid(
        [(Path(SHOWCASE).stem, {"input (16 kHz file)": input_44k, "upsampled": up, "reference": hr})],
        sr,
        out / "showcase" / "spectrogram.png",
        title="held-out clip: 8 kHz band -> 44.1 kHz",
        cutoffs=[SHOWCASE_RATE / 2],
    )
    return paths


def run_demo(
    out_dir: str | Path = "saga_sr_demo",
    *,
    minutes: float = 3.0,
    quick: bool = False,
    seed: int = 0,
    perceptual: str = "auto",
    eval_steps: int | None = None,
    target_rolloffs: tuple = ("default",),
    train: bool = False,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """(Train,) evaluate, showcase; returns where everything went (see the module docstring)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if train:
        run = out / "train"
        if (run / "run_config.json").is_file():  # a previous demo's run: start afresh, not from its checkpoints
            log(f"removing the previous demo run {run}")
            shutil.rmtree(run)
        budget = 1.0 if quick else minutes * 60.0
        log(f"[1/3] training tiny.json on {assets_dir() / 'train'} for ~{budget:.0f} s on CPU -> {run}")
        steps, wall = train_for(run, budget, seed=seed, quick=quick)
        log(f"      {steps} steps in {wall:.0f} s")
        model_dir = run / "model"
    else:
        model_dir = default_model_path()
        if model_dir is None:
            raise ModelLoadError(
                "this install has no shipped model (saga_sr/assets/models/mini); run the demo with --train"
            )
        steps, wall = 0, 0.0
        log(f"[1/3] using the shipped model {model_dir}")
    model = load_model(model_dir)
    n_steps = eval_steps or (2 if quick else (model.default_steps or 8))
    model_fn, roundtrip_fn = model_functions(model, steps=n_steps, seed=seed)
    crop = 1.0 if quick else None  # quick: score / show only the first second
    settings = EvalSettings(
        cutoffs=(4000.0, 8000.0),
        seed=seed,
        perceptual="mel" if quick else perceptual,
        max_files=1,
        max_seconds=crop,
        n_plot=4,
        target_rolloffs=tuple(target_rolloffs),
        extra={"model": str(model_dir), "steps": n_steps, "train_steps": steps},
    )
    log(f"[2/3] evaluating at 4 and 8 kHz on the held-out clips ({n_steps} sampling steps) -> {out / 'eval'}")
    result = run_evaluation(
        assets_dir() / "test",
        out / "eval",
        model_fn=model_fn,
        roundtrip_fn=roundtrip_fn,
        settings=settings,
        log=lambda m: log("      " + m),
    )
    log(f"[3/3] upsampling {SHOWCASE} from an 8 kHz-band (16 kHz) file -> {out / 'showcase'}")
    shown = showcase(model, out, steps=n_steps, seed=seed, max_seconds=crop)
    notes = list(result.notes) + ["showcase: upsampled with upsample's default target roll-off (0.9, ~19.9 kHz)"]
    if train:
        n_train = len(list((assets_dir() / "train").glob("*.flac")))
        notes.append(
            f"trained {steps} steps ({wall:.0f} s) on {n_train} clips: a smoke-scale model, "
            "expect it to lose to the DSP baseline"
        )
    return DemoResult(out, model_dir, steps, wall, out / "eval" / "results.md", result.figures, shown, notes)
