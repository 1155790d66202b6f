"""A training run: check config and data (before any training), build the model, wire the Lightning Trainer
(checkpoints, CSV/TensorBoard logs, validation, export), fit, draw the loss curve.

`train(args_namespace_or_kwargs) -> Path` (the output folder) is the Python API; the CLI calls `main(args)`.
Output layout: OUT/checkpoints/{last.ckpt -> step=N.ckpt, step=N.ckpt}, OUT/metrics.csv, OUT/model/{config.json,
model.safetensors}, OUT/val/step=N/ (audio + PNG), OUT/loss_curve.png, OUT/skipped_files.txt, OUT/run_config.json,
OUT/index_cache.json. metrics.csv follows Lightning: `train/loss` rows carry the 0-based index of the optimiser step
that produced them; a validation after N optimiser steps logs its `val/*` row (loss at fixed t, lsd, lsd_hf, si_sdr)
as step N - 1 during training (N for the closing validation after fit) and saves examples in OUT/val/step=N/.
A run with a val set always ends with a validation.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader

from saga_sr.config import model_identity, prepare_config, resume_identity, uses_rolloff
from saga_sr.config.typed import ModelSettings, TrainingSettings
from saga_sr.data import SAGASRDataset, build_index, collate, write_skipped_report
from saga_sr.data.index import MANIFEST_SUFFIXES, first_reasons, read_manifest, write_index_cache
from saga_sr.data.sampler import EpochSampler
from saga_sr.errors import ConfigError, DataError, ModelLoadError
from saga_sr.models.build import build_model
from saga_sr.models.checkpoint import CONFIG_KEY
from saga_sr.models.sao import build_from_sao, write_report
from saga_sr.outputs import check_writable
from saga_sr.training.args import check_train_args, namespace
from saga_sr.training.callbacks import ExportCallback, StepBanner
from saga_sr.training.csvlog import ResumableCSVLogger
from saga_sr.training.module import SAGASRTrainer, used_conditioner
from saga_sr.training.plots import loss_curve

log = logging.getLogger(__name__)


def is_rank_zero() -> bool:
    """Whether this process is the (global) rank-0 process; Lightning's launcher sets the rank of the others."""
    return getattr(rank_zero_only, "rank", 0) == 0


# ---- data --------------------------------------------------------------------------------------------------
def _sources(paths, flag: str) -> list[Path]:
    """The data paths of `flag`; a missing one or a malformed manifest is a DataError before anything is written."""
    out = []
    for raw in paths or []:
        p = Path(raw).expanduser()
        if not p.exists():
            raise DataError(f"{flag} {p}: no such folder or manifest")
        if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES:
            read_manifest(p)
        out.append(p)
    return out


def make_dataset(
    sources: list[Path], cfg: dict, ns: argparse.Namespace, *, deterministic: bool, title: str, cache: Path
):
    """Index `sources` (reading, not writing, the check cache `cache`) and build the dataset; DataError naming
    the first skipped files when none is usable. Returns (dataset, index): `write_data_records` writes the
    skipped-files report and the cache once the run is accepted."""
    index = build_index(sources, cache_path=cache, update_cache=False)
    names = ", ".join(map(str, sources))
    if not index.entries:
        raise DataError(
            f"{title} data {names}: no usable audio files"
            + (f" ({len(index.skipped)} skipped{first_reasons(index.skipped)})" if index.skipped else "")
        )
    log.info("%s: %d audio files, %d skipped", title, len(index.entries), len(index.skipped))
    s = ModelSettings.from_config(cfg)
    lowpass = 0.0 if deterministic else TrainingSettings.from_config(cfg).target_lowpass_prob  # training only
    dataset = SAGASRDataset(
        sources,
        s.sample_size,
        s.sample_rate,
        s.audio_channels,
        compute_rolloff=ns.compute_rolloff or uses_rolloff(cfg),
        use_caption=not ns.disable_caption,
        deterministic=deterministic,
        seed=ns.seed,
        index=index,
        target_lowpass_prob=lowpass,
    )
    return dataset, index


def write_data_records(out: Path, indexes: dict) -> None:
    """OUT/skipped_files.txt (one section per data set) and OUT/index_cache.json, for {title: IndexResult}."""
    report = out / "skipped_files.txt"
    report.write_text("", encoding="utf-8")
    cache: dict = {}
    for title, index in indexes.items():
        if index is not None:
            write_skipped_report(report, index.skipped, title=title)
            if index.skipped:
                log.info("%s: %d skipped files listed in %s", title, len(index.skipped), report)
            cache.update(index.cache)
    if cache:
        write_index_cache(out / "index_cache.json", cache)


def _loader(ds, batch_size: int, num_workers: int, *, train: bool, pin: bool):
    """Training order and draws come from an EpochSampler (a function of seed and epoch: resumable)."""
    sampler = EpochSampler(len(ds), ds.seed) if train else None
    return DataLoader(
        ds,
        batch_size=min(batch_size, len(ds)),
        sampler=sampler,
        drop_last=train,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=pin,
        persistent_workers=num_workers > 0,
    )


# ---- checkpoints -------------------------------------------------------------------------------------------
def _valid_checkpoint(path: Path) -> bool:
    """A torch zip checkpoint whose central directory can be read (a SIGKILL mid-write leaves a truncated one)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return bool(zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _step_of(path: Path) -> int:
    try:
        return int(path.stem.split("=", 1)[1])
    except (IndexError, ValueError):
        return -1


def find_resume_checkpoint(resume: str, out: Path) -> Path:
    """The checkpoint `--resume` names: a file, or the newest valid one in a run folder (OUT by default)."""
    target = Path(resume) if resume != "last" else out
    if target.is_file():
        if not _valid_checkpoint(target):
            raise DataError(f"--resume {target}: not a readable checkpoint")
        return target
    folder = target / "checkpoints" if (target / "checkpoints").is_dir() else target
    candidates = []
    if (folder / "last.ckpt").exists():
        candidates.append(folder / "last.ckpt")
    candidates += sorted(folder.glob("step=*.ckpt"), key=_step_of, reverse=True) if folder.is_dir() else []
    for c in candidates:
        if _valid_checkpoint(c):
            return c
        log.warning("skipping unreadable checkpoint %s", c)
    raise DataError(f"--resume: no readable checkpoint in {folder}")


def _first_difference(a, b, path: str = "") -> str | None:
    """The first JSON path where `a` and `b` differ, with both values (None when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                return f"{sub} ({'missing' if key not in a else a[key]!r} vs {'missing' if key not in b else b[key]!r})"
            found = _first_difference(a[key], b[key], sub)
            if found:
                return found
        return None
    return None if a == b else f"{path} ({a!r} vs {b!r})"


def check_resume_fits(path: Path, cfg: dict) -> None:
    """DataError unless `path` is a saga-sr training checkpoint (read with weights_only=True) of this run's model
    (same `model` section, rate and channels), checked before the run writes anything."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 -- any unpickling failure: not a checkpoint we can trust
        raise DataError(
            f"--resume {path}: not a saga-sr training checkpoint ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''})"
        ) from None
    saved = ckpt.get(CONFIG_KEY) if isinstance(ckpt, dict) else None
    if not isinstance(saved, dict) or "state_dict" not in ckpt:
        raise DataError(f"--resume {path}: not a saga-sr training checkpoint (no '{CONFIG_KEY}')")
    diff = _first_difference(model_identity(saved), model_identity(cfg))
    if diff:
        raise DataError(
            f"--resume {path}: the checkpoint was trained with a different model config; first "
            f"difference at {diff} (checkpoint vs --model_config); nothing was changed"
        )


# flags that define what is trained, compared on resume with the run's record; the others (--max_steps,
# --max_time, validation, logging, checkpoint, hardware and speed flags) may change when a run is resumed
RUN_FLAGS = (
    "train_dir",
    "manifest",
    "train_latents",
    "seed",
    "learning_rate",
    "ema",
    "timestep_sampler",
    "compute_rolloff",
    "disable_caption",
)


def run_facts(args: dict, cfg: dict) -> dict:
    """What a run trains, as JSON values: the effective batch, accumulation, clip and segment, the data and the
    other RUN_FLAGS, and the model config (its `training.max_steps` aside, which a resume may raise)."""
    training = TrainingSettings.from_flags(cfg, args)
    facts = {
        "batch_size": training.batch_size,
        "accumulate_grad_batches": training.accumulate_grad_batches,
        "gradient_clip_val": training.gradient_clip_val,
        "sample_size": ModelSettings.from_config(cfg).sample_size,
        **{k: args.get(k) for k in RUN_FLAGS},
        "model_config": resume_identity(cfg),
    }
    # not given: the config's, so giving that same value changes nothing
    facts["learning_rate"] = training.learning_rate
    return json.loads(json.dumps(facts, default=str))


def check_resume_run(resume: Path, out: Path, ns: argparse.Namespace, cfg: dict) -> None:
    """DataError naming the first difference when this resume would train something else than the run it
    continues (its OUT/run_config.json, else the one beside the checkpoint's folder); nothing is changed."""
    record_path = next(
        (p for p in (out / "run_config.json", resume.parent.parent / "run_config.json") if p.is_file()), None
    )
    if record_path is None:
        return
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        old = run_facts(record["args"], record["model_config"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ConfigError):
        raise DataError(f"{record_path}: unreadable run record; resume into a new --output_dir") from None
    diff = _first_difference(old, run_facts(vars(ns), cfg))
    if diff:
        raise DataError(
            f"--resume {resume}: this run differs from the one it continues ({record_path}) at {diff} "
            "(recorded vs now); only --max_steps, --max_time and the validation, logging, checkpoint, "
            "hardware and speed flags may change on resume; nothing was changed"
        )


def checkpoint_step(path: Path) -> int:
    """The global step a checkpoint was saved at (from its step=N name, else read lazily from the file)."""
    step = _step_of(path.resolve())
    if step >= 0:
        return step

    return int(torch.load(str(path), map_location="cpu", weights_only=True, mmap=True).get("global_step", 0))


def _save_final_checkpoint(trainer, ckpt_dir: Path) -> None:
    """Save step=N.ckpt for the final step (if the periodic saver did not) and point last.ckpt at it."""
    final = ckpt_dir / f"step={trainer.global_step}.ckpt"
    if not trainer.strategy.broadcast(final.exists(), src=0):  # every rank takes the same branch
        trainer.save_checkpoint(final, weights_only=False)
    if trainer.is_global_zero:
        last = ckpt_dir / "last.ckpt"
        if last.is_symlink() or last.exists():
            last.unlink()
        os.symlink(final.name, last)


# ---- the run -----------------------------------------------------------------------------------------------
def _precision(ns: argparse.Namespace) -> str:
    if ns.precision != "auto":
        return ns.precision

    gpu = torch.cuda.is_available() and ns.accelerator not in ("cpu",)
    return "bf16-mixed" if gpu else "32-true"


def _devices(value):
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, str) and "," in value:
        return [int(v) for v in value.split(",") if v.strip()]
    return value


def _strategy(ns: argparse.Namespace):
    """DDP that tolerates parameters without gradients (e.g. a prepend projection a config does not feed), also
    when `auto` would pick plain DDP for several devices or nodes; any other choice goes to Lightning as is."""
    name = str(ns.strategy)
    multi = ns.num_nodes > 1
    if name == "auto" and not multi:
        devices = _devices(ns.devices)
        count = len(devices) if isinstance(devices, list) else devices
        gpus = torch.cuda.device_count() if ns.accelerator != "cpu" else 0
        multi = (count == "auto" and gpus > 1) or (isinstance(count, int) and count > 1)
    if name == "ddp" or (name == "auto" and multi):
        return DDPStrategy(find_unused_parameters=True)
    return name


def preflight(model, dataset) -> None:
    """Condition one item before training, so that a missing text encoder fails now, clearly (and a lazily
    loaded T5 exists before the EMA copy is made, which then shares it)."""
    metadata = [dataset[0][1]]
    with torch.no_grad():
        used_conditioner(model)(metadata, "cpu")


def apply_speed_flags(model, ns: argparse.Namespace) -> None:
    """--activation_checkpointing (recompute DiT block activations in the backward pass) and --compile
    (torch.compile of the DiT's forward; the first steps pay the compilation)."""
    if ns.activation_checkpointing:
        model.dit.transformer.use_checkpointing = True
    if ns.compile:
        model.dit.compile()  # in place: parameter names (checkpoints, export) stay the same


def _build_model(cfg: dict, ns: argparse.Namespace):
    """(model, the pretrained load report or None); the report is written once the run is accepted."""
    if ns.pretrained_ckpt:
        model, report = build_from_sao(cfg, ns.pretrained_ckpt, text_encoder_path=ns.text_encoder_path, seed=ns.seed)
        log.info("pretrained weights: %s", report.text().splitlines()[0])
        return model, report

    return build_model(cfg, text_encoder_path=ns.text_encoder_path, seed=ns.seed), None


def train(args: argparse.Namespace | dict | None = None, **kwargs) -> Path:
    """Run one training (fresh or resumed) and return the output folder. Raises SagaError subclasses for
    problems a user can fix (missing data, empty data set, bad config) before anything is trained."""
    ns = namespace(args, **kwargs)
    run = check_inputs(ns)
    out, cfg, training, resume = run.out, run.cfg, run.training, run.resume
    train_ds, train_index, val_ds, val_index = build_data(run, ns)
    model, load_report = _build_model(cfg, ns)
    batch = training.batch_size
    pin = _precision(ns) != "32-true"
    data = _latent_data(run.latents, cfg, model, training, ns, batch, pin)
    if data is not None:
        train_ds = data.dataset(shuffle=False)
    preflight(model, train_ds)
    # every refusal is above: nothing in OUT was created or rewritten before this line
    write_run_records(out, ns, cfg, resume, train_index, val_index, load_report)
    module = build_module(model, ns, out, training)
    trainer = _make_trainer(
        ns, out, training, validate=val_ds is not None, resume_step=checkpoint_step(resume) if resume else None
    )
    loaders, val_loader = _fit_loaders(data, train_ds, val_ds, batch, ns, pin)
    fit(trainer, module, loaders, val_loader, resume)
    finish_run(trainer, out)
    return out


@dataclass(frozen=True)
class CheckedRun:
    """What `check_inputs` accepted: the output folder, the resolved config and its training block with the
    flags applied, the checkpoint to resume (or None) and the data sources (audio, or latent shards)."""

    out: Path
    cfg: dict
    training: TrainingSettings
    resume: Path | None
    train_sources: list[Path]
    val_sources: list[Path]
    latents: object | None


def check_inputs(ns: argparse.Namespace) -> CheckedRun:
    """Every check that needs neither indexing nor a model: flags, output folder, data paths, config, resume."""
    check_train_args(ns)  # bad values stop here, before any indexing or writing
    parse_max_time(ns.max_time)
    out = Path(ns.output_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise DataError(f"--output_dir {out}: exists and is not a folder")
    check_writable([out / "run_config.json"])
    train_sources = _sources(ns.train_dir, "--train_dir") + _sources(ns.manifest, "--manifest")
    latents = None
    if ns.train_latents:
        from saga_sr.training.latent_data import shard_source

        if train_sources:
            raise DataError("give either --train_latents or --train_dir / --manifest, not both")
        latents = shard_source(ns.train_latents)
    elif not train_sources:
        raise DataError("no training data: give --train_dir and/or --manifest (or --train_latents)")
    val_sources = _sources(ns.val_dir, "--val_dir")
    cfg = prepare_config(ns.model_config, compute_rolloff=ns.compute_rolloff, sample_size=ns.sample_size)
    training = TrainingSettings.from_flags(cfg, vars(ns))  # TrainingSettings holds every default
    resume = find_resume_checkpoint(ns.resume, out) if ns.resume else None
    if resume is not None:
        check_resume_fits(resume, cfg)
        check_resume_run(resume, out, ns, cfg)
    return CheckedRun(out, cfg, training, resume, train_sources, val_sources, latents)


def build_data(run: CheckedRun, ns: argparse.Namespace):
    """(train dataset, its index, val dataset, its index) of the audio sources; (None, None) for training
    from latent shards and for a run without val data."""
    out, cfg, latents, train_sources, val_sources = run.out, run.cfg, run.latents, run.train_sources, run.val_sources
    cache = out / "index_cache.json"
    train_ds, train_index = (
        make_dataset(train_sources, cfg, ns, deterministic=False, title="train", cache=cache)
        if not latents
        else (None, None)
    )
    val_ds, val_index = (
        make_dataset(val_sources, cfg, ns, deterministic=True, title="val", cache=cache)
        if val_sources
        else (None, None)
    )
    return train_ds, train_index, val_ds, val_index


def _latent_data(latents, cfg: dict, model, training: TrainingSettings, ns: argparse.Namespace, batch: int, pin: bool):
    """The data module of --train_latents shards, checked against the model (None when training from audio)."""
    data = None
    if latents:
        from saga_sr.training.latent_data import LatentDataModule, check_shards

        check_shards(latents, model)
        if training.target_lowpass_prob > 0:
            raise ConfigError(
                [
                    f"training.target_lowpass_prob: {training.target_lowpass_prob} needs audio training "
                    "data (it low-passes the HR audio); --train_latents shards hold the HR latent as "
                    "encoded. Set it to 0 or train from audio"
                ]
            )
        data = LatentDataModule(
            latents,
            model.settings,
            downsampling_ratio=model.downsampling_ratio,
            batch_size=batch,
            num_workers=ns.num_workers,
            use_caption=not ns.disable_caption,
            seed=ns.seed,
            pin_memory=pin,
        )
    return data


def write_run_records(
    out: Path, ns: argparse.Namespace, cfg: dict, resume: Path | None, train_index, val_index, load_report
) -> None:
    """Accept the run: create OUT and (rank 0) write the data records, the pretrained load report and
    run_config.json, the record a resume is checked against."""
    out.mkdir(parents=True, exist_ok=True)
    if is_rank_zero():
        write_data_records(out, {"train": train_index, "val": val_index})
        if load_report is not None:
            write_report(load_report, out / "pretrained_load_report.json")
        record = {
            "args": {k: v for k, v in vars(ns).items() if k != "func"},
            "model_config": cfg,
            "resumed_from": str(resume.resolve()) if resume else None,
        }
        (out / "run_config.json").write_text(json.dumps(record, indent=1, default=str) + "\n")


def build_module(model, ns: argparse.Namespace, out: Path, training: TrainingSettings) -> SAGASRTrainer:
    """The Lightning module around `model` (EMA off under FSDP), then the speed flags applied to the model."""
    use_ema = training.use_ema
    if "fsdp" in str(ns.strategy) and use_ema:
        log.warning("EMA is not supported with FSDP (the EMA copy would need the full weights); training without it")
        use_ema = False
    module = SAGASRTrainer(
        model,
        learning_rate=training.learning_rate,
        use_ema=use_ema,
        timestep_sampler=training.timestep_sampler,
        val_steps=ns.val_steps,
        lowfreq_replace=not ns.disable_val_lowfreq_replace,
        max_val_items=ns.max_val_items,
        val_examples=ns.val_examples,
        val_dir=str(out / "val"),
        seed=ns.seed,
    )
    apply_speed_flags(model, ns)  # after the EMA copy, which must not share a compiled forward
    return module


def _fit_loaders(data, train_ds, val_ds, batch: int, ns: argparse.Namespace, pin: bool):
    """(the loaders' arguments to `trainer.fit`, the val loader or None): the latent data module, else loaders."""
    val_loader = _loader(val_ds, batch, ns.num_workers, train=False, pin=pin) if val_ds else None
    if data is not None:
        data.val_loader = val_loader
        loaders = {"datamodule": data}
    else:
        loaders = {
            "train_dataloaders": _loader(train_ds, batch, ns.num_workers, train=True, pin=pin),
            "val_dataloaders": val_loader,
        }
    return loaders, val_loader


def fit(trainer, module, loaders: dict, val_loader, resume: Path | None) -> None:
    """trainer.fit, with a worker's or a resume's error made one line; a run with a val set ends validated."""
    try:
        trainer.fit(module, **loaders, ckpt_path=str(resume) if resume else None, weights_only=True)
    except DataError as exc:  # from a loader worker, the message carries the worker's traceback: keep its line
        raise DataError(worker_message(exc)) from exc
    except RuntimeError as exc:
        if resume and "state_dict" in str(exc):
            raise ModelLoadError(
                f"--resume {resume}: the checkpoint does not fit this config: {str(exc).splitlines()[0][:300]}"
            ) from exc
        raise
    if val_loader is not None and module.last_val_step != trainer.global_step:
        trainer.validate(module, dataloaders=val_loader, verbose=False)  # always end with a validation


def finish_run(trainer, out: Path) -> None:
    """The final checkpoint (last.ckpt points at it) and, on rank 0, the loss curve; the model itself is
    exported by ExportCallback."""
    _save_final_checkpoint(trainer, out / "checkpoints")
    if trainer.is_global_zero:
        loss_curve(out / "metrics.csv", out / "loss_curve.png")


def worker_message(exc: Exception) -> str:
    """The one-line message of an error re-raised from a DataLoader worker (whose text is the worker's whole
    traceback ending in 'module.Class: message'); the message itself otherwise."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    if len(lines) <= 1:
        return str(exc)
    last = lines[-1]
    prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
    return last[len(prefix) :] if last.startswith(prefix) else last


def parse_max_time(value: str | float | None) -> dict | str | None:
    """`--max_time`: minutes (a number) or Lightning's "DD:HH:MM:SS"; None = no time limit."""
    if value is None:
        return None
    text = str(value).strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            raise DataError(f"--max_time {value!r}: expected minutes or DD:HH:MM:SS")
        return text
    try:
        minutes = float(text)
    except ValueError:
        raise DataError(f"--max_time {value!r}: expected minutes or DD:HH:MM:SS") from None
    if not 0 < minutes < float("inf"):
        raise DataError(f"--max_time {value!r}: must be a finite number of minutes > 0")
    return {"seconds": minutes * 60.0}


def _make_trainer(
    ns: argparse.Namespace, out: Path, training: TrainingSettings, *, validate: bool, resume_step: int | None
):
    accumulate, max_steps = training.accumulate_grad_batches, training.max_steps
    every = ns.checkpoint_every or ns.val_every
    loggers = [ResumableCSVLogger(str(out), keep_before_step=resume_step)]
    try:
        import tensorboard  # noqa: F401  (lazy: optional; without it there is no TensorBoard logger)
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(out), name="tensorboard", version=""))
    except ImportError:
        pass
    checkpoint = ModelCheckpoint(
        dirpath=out / "checkpoints",
        filename="step={step}",
        auto_insert_metric_name=False,
        every_n_train_steps=every,
        save_top_k=-1,
        save_last="link",
    )
    clip = training.gradient_clip_val
    return L.Trainer(
        accelerator=ns.accelerator,
        devices=_devices(ns.devices),
        num_nodes=ns.num_nodes,
        strategy=_strategy(ns),
        precision=_precision(ns),
        max_steps=max_steps,
        max_epochs=-1,
        max_time=parse_max_time(ns.max_time),
        accumulate_grad_batches=accumulate,
        gradient_clip_val=clip or None,
        val_check_interval=ns.val_every * accumulate if validate else None,
        check_val_every_n_epoch=None,
        limit_val_batches=1.0 if validate else 0,
        num_sanity_val_steps=0,
        callbacks=[checkpoint, ExportCallback(out / "model"), StepBanner()],
        logger=loggers,
        log_every_n_steps=ns.log_every,
        enable_progress_bar=not ns.no_progress_bar,
        default_root_dir=str(out),
        use_distributed_sampler=True,
        enable_model_summary=True,
    )


def main(args: argparse.Namespace) -> int:
    """CLI entry: configure logging for this process, train, print where the run went."""
    pkg = logging.getLogger("saga_sr")
    if not pkg.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        pkg.addHandler(handler)
        pkg.setLevel(logging.INFO)
    out = train(args)
    print(f"run folder: {out}  (model: {out / 'model'}, {_metrics_note(out, args)})")
    return 0


def _metrics_note(out: Path, args: argparse.Namespace) -> str:
    """Where the metrics are, or why there are none: rows are written every --log_every steps."""
    if (out / "metrics.csv").is_file():
        return f"metrics: {out / 'metrics.csv'}"
    return f"no metrics.csv: the run logged no row (it was shorter than --log_every {args.log_every})"
