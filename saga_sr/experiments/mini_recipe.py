"""`saga-sr recipe mini`: the whole saga-sr-mini recipe in one call: fetch -> prepare -> train -> export.

1. fetch: `apt-get download` + `dpkg -x` of the allowed Debian packages (saga_sr.experiments.mini_data);
2. prepare: decode, mono 44.1 kHz, measure each file's bandwidth, split by file / language, write manifests;
   the demo's held-out clips (saga_sr/assets/demo/test) are excluded so the demo scores unseen audio;
3. train, in two phases, with the project's trainer (saga_sr.training.run.train), validating on the held-out val
   split (val/lsd at 8 Euler steps: the metric-vs-time curve in each phase's metrics.csv):
   a. configs/mini.json without its `lr_bridge` (the flow starts from noise) for a wall-time budget, in OUT;
   b. configs/mini.json itself (the flow starts from the DSP-prefilled LR latent plus noise), warm-started from
      phase a's EMA weights, for BRIDGE_STEPS steps, in OUT/bridge;
   rerunning resumes the phase that was running (phase a only until phase b has started);
4. export: phase b's EMA weights in half precision (model.safetensors + config.json) to `export_to`
   (`--install` = the package's saga_sr/assets/models/mini, the shipped default model).
Each stage is skipped when its output exists, so an interrupted recipe continues where it stopped.
Why two phases: the bridge pays off as a short fine-tune, not as a whole run. Fine-tuned from v1's weights its
val/lsd is best after about 150 steps and rises after that; trained from scratch it rose from the start (model
card, "How v2 was made and chosen"). saga-sr-mini v2 was made this way, and the recipe reproduces it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CONFIG = "mini"
BRIDGE_STEPS = 150  # phase b's training steps: the shipped v2 weights are its EMA at step 150 (model card)
# trainer settings of the shipped run (batch and learning rate come from configs/mini.json)
TRAIN_SETTINGS = dict(
    val_every=150,
    val_steps=8,
    max_val_items=16,
    val_examples=1,
    num_workers=0,
    log_every=10,
    checkpoint_every=150,
    no_progress_bar=True,
)


@dataclass
class RecipeResult:
    data_dir: Path
    run_dir: Path
    export_dir: Path
    train_steps: int
    seconds: dict


def demo_test_names() -> set[str]:
    """Stems of the demo's held-out clips: never trained on, so `saga-sr demo` scores unseen audio."""
    from saga_sr.experiments.demo import assets_dir

    return {p.stem for p in (assets_dir() / "test").rglob("*.flac")}


def export_half(src: Path, dst: Path) -> Path:
    """Copy an exported model folder with its floating-point tensors in float16 (loading casts them back)."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(src / "model.safetensors"))
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    dst.mkdir(parents=True, exist_ok=True)
    for name, write in (
        ("model.safetensors", lambda p: save_file(half, str(p))),
        ("config.json", lambda p: p.write_text((src / "config.json").read_text())),
    ):
        tmp = dst / f".{name}.tmp{os.getpid()}"
        write(tmp)
        os.chmod(tmp, 0o644)  # ordinary permissions, not the temporary file's
        os.replace(tmp, dst / name)
    return dst


def run_recipe(
    data_dir: str | Path,
    run_dir: str | Path,
    *,
    minutes: float,
    export_to: str | Path | None = None,
    freesound: str | Path | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> RecipeResult:
    """Fetch, prepare, train for `minutes` of wall time (this call; a rerun resumes and adds), export."""
    from saga_sr.experiments.mini_data import fetch, prepare
    from saga_sr.training.run import checkpoint_step, find_resume_checkpoint, train

    data, run = Path(data_dir), Path(run_dir)
    secs: dict = {}
    t0 = time.perf_counter()
    root = fetch(data / "debs", data / "extracted")
    secs["fetch"] = time.perf_counter() - t0
    prepared = data / "prepared"
    t0 = time.perf_counter()
    if not (prepared / "prepare_report.json").is_file():
        log(f"[2/4] preparing {root} -> {prepared}")
        report = prepare(
            root, prepared, freesound=Path(freesound) if freesound else None, exclude_names=demo_test_names()
        )
        log(f"      kept {report['kept']}, skipped {report['skipped']} (see {prepared / 'prepare_report.json'})")
    secs["prepare"] = time.perf_counter() - t0
    data_args = dict(train_dir=[str(prepared / "train.csv")], val_dir=[str(prepared / "val.csv")], seed=seed)
    bridge = run / "bridge"
    t0 = time.perf_counter()
    if not _started(bridge):
        resume = "last" if _started(run) else None
        log(f"[3/4] a: training {CONFIG}.json without lr_bridge for {minutes:g} min -> {run}" + _resuming(resume))
        train(
            **data_args,
            model_config=str(phase_a_config(run)),
            output_dir=str(run),
            max_steps=10**7,
            max_time=minutes,
            resume=resume,
            **TRAIN_SETTINGS,
        )
    secs["train_a"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    resume = "last" if _started(bridge) else None
    log(f"[3/4] b: training {CONFIG}.json for {BRIDGE_STEPS} steps from phase a -> {bridge}" + _resuming(resume))
    train(
        **data_args,
        model_config=CONFIG,
        output_dir=str(bridge),
        max_steps=BRIDGE_STEPS,
        pretrained_ckpt=None if resume else str(run / "model" / "model.safetensors"),
        resume=resume,
        **TRAIN_SETTINGS,
    )
    secs["train_b"] = time.perf_counter() - t0
    steps = checkpoint_step(find_resume_checkpoint("last", run)) + checkpoint_step(
        find_resume_checkpoint("last", bridge)
    )
    dst = Path(export_to) if export_to else run / "model_fp16"
    log(f"[4/4] exporting {bridge / 'model'} ({steps} steps in all) in float16 -> {dst}")
    export_half(bridge / "model", dst)
    (run / "recipe_times.json").write_text(json.dumps({"steps": steps, "seconds": secs}, indent=1))
    return RecipeResult(data, run, dst, steps, secs)


def phase_a_config(run: Path) -> Path:
    """configs/mini.json without `model.diffusion.lr_bridge`, written into the run folder: phase a's config."""
    from saga_sr.config import drop_lr_bridge, load_config

    cfg = drop_lr_bridge(load_config(CONFIG))
    path = run / "phase_a_config.json"
    run.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg, indent=1))
    return path


def _started(run: Path) -> bool:
    return any((run / "checkpoints").glob("*.ckpt"))


def _resuming(resume: str | None) -> str:
    return " (resuming)" if resume else ""


__all__ = [
    "CONFIG",
    "RecipeResult",
    "demo_test_names",
    "export_half",
    "plot_curves",
    "run_recipe",
    "training_curve",
    "val_baselines",
]


def training_curve(run_dir: str | Path) -> list[dict]:
    """The run's validation metrics against wall time: one row per validation with `step`, `minutes` (from the
    run's start, run_config.json, to the step=N.ckpt written right after that validation) and every val/*
    metric logged for it. Validations without a checkpoint (the closing one) take the run's last file time."""
    from saga_sr.training.plots import read_metrics

    run = Path(run_dir)
    start = (run / "run_config.json").stat().st_mtime
    stamps = {
        int(p.stem.split("=", 1)[1]): p.stat().st_mtime
        for p in (run / "checkpoints").glob("step=*.ckpt")
        if p.stem.split("=", 1)[1].isdigit()
    }
    end = max([start, *stamps.values(), (run / "metrics.csv").stat().st_mtime])
    rows: dict[int, dict] = {}
    for key, (steps, values) in read_metrics(run / "metrics.csv").items():
        if not key.startswith("val/"):
            continue
        for step, value in zip(steps, values):
            rows.setdefault(step, {"step": step})[key] = value
    out = []
    for step in sorted(rows):
        done = step + 1 if step + 1 in stamps else step  # val after N steps is logged as N - 1 while training
        out.append({**rows[step], "step": done, "minutes": (stamps.get(done, end) - start) / 60.0})
    return out


def plot_curves(
    curves: dict[str, list[dict]],
    png: str | Path,
    *,
    metric: str = "val/lsd",
    baselines: dict[str, float] | None = None,
) -> Path:
    """`metric` against training minutes for each named run (and horizontal baseline lines), as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for i, (name, rows) in enumerate(curves.items()):
        pts = [(r["minutes"], r[metric]) for r in rows if metric in r]
        if pts:
            ax.plot(*zip(*pts), "o-", color=f"C{i}", ms=3, label=name)
    for j, (name, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, ls="--", color=f"C{len(curves) + j}", label=name)
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    return png


def val_baselines(manifest: str | Path, n_items: int = TRAIN_SETTINGS["max_val_items"], seed: int = 0) -> dict:
    """Mean LSD of the unprocessed LR input and of the DSP extension on the items the trainer validates on
    (the first `n_items` of the deterministic val set), so the val/lsd curve has its baselines beside it."""
    from saga_sr.audio.bwe import dsp_bandwidth_extension
    from saga_sr.audio.metrics import lsd
    from saga_sr.config import load_config
    from saga_sr.config.typed import ModelSettings
    from saga_sr.data import SAGASRDataset

    ms = ModelSettings.from_config(load_config(CONFIG))
    ds = SAGASRDataset(
        manifest, ms.sample_size, ms.sample_rate, ms.audio_channels, compute_rolloff=True, deterministic=True, seed=seed
    )
    scores: dict[str, list[float]] = {"unprocessed": [], "dsp_bwe": []}
    for i in range(min(n_items, len(ds))):
        audio, md = ds[i]
        valid = int(md["padding_mask"].sum())
        hr, lr = audio[:, :valid].numpy(), md["lr_audio"][:, :valid].numpy()
        scores["unprocessed"].append(lsd(hr, lr, ms.sample_rate))
        dsp = dsp_bandwidth_extension(lr, ms.sample_rate, md["lr_cutoff_hz"], seed)
        scores["dsp_bwe"].append(lsd(hr, dsp, ms.sample_rate))
    return {k: float(sum(v) / len(v)) for k, v in scores.items()}
