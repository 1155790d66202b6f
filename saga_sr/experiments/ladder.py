"""The capacity ladder as one resumable run: check, train and evaluate each rung the same way.

Layout under OUT:
  ladder.json                       the settings (data, budget, seeds, scale) of the last process started
  eval_set/<domain>/                links to the val manifest's files when --val_dir is a manifest
  runs/<rung>/seed<S>/config.json   the resolved config the rung trains
  runs/<rung>/seed<S>/train/        the training run (metrics.csv, checkpoints/last.ckpt, model/)
  runs/<rung>/seed<S>/trained.json  written once training reached max_steps (with step time, peak memory)
  runs/<rung>/seed<S>/eval/         the evaluation (per_clip.csv, tables, WAVs)
  runs/<rung>/seed<S>/record.json   the finished record the report reads
  ladder_report.md, ladder_metrics.csv, loss_curves.png

Resume: a run with record.json is skipped; one with trained.json is only evaluated; one with
train/checkpoints/last.ckpt resumes training from it (same step, same optimizer state). A rung whose
config violates a dimension rule is recorded as invalid with every violated relation, and the ladder
goes on with the others.

Budget: `max_steps` and/or `minutes` of training wall time per run (Lightning's max_time; its Timer state is
in the checkpoint, so a resumed run continues the same budget). Under a time budget bigger rungs reach fewer
steps: trained.json records the steps reached and the torch thread count. Several processes may share one
OUT with disjoint rungs / seeds (each run has its own folder); the report is written from every finished
record in OUT with the same budget, so the last process to finish (or `report_only`) reports them all.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

from saga_sr.config import RUNGS, check_config, derive_rung, load_config
from saga_sr.config.typed import ModelSettings
from saga_sr.errors import ConfigError, SagaError
from saga_sr.evaluation.evaluate import EvalSettings, load_systems, run_evaluation
from saga_sr.experiments.measure import PeakMemory, benchmark_step, count_parameters
from saga_sr.experiments.report import budget_text, write_report
from saga_sr.outputs import write_text_atomic
from saga_sr.training.metrics_csv import read_metrics
from saga_sr.training.run import checkpoint_step, find_resume_checkpoint, train

SEEDS_BASES = {"A": "saga_model_config_small", "B": "saga_model_config_small", "F": "saga_model_config"}
_STEP = re.compile(r"step=(\d+)\.ckpt$")
_CHUNK = re.compile(r"_\d{3}$")  # mini_data's chunk suffix
SCALE_BASES = {"mini": "mini"}  # a scale with its own base: every rung is mapped onto it (config/rungs.py)
FLAG_NAMES = ("compute_rolloff", "disable_caption", "disable_val_lowfreq_replace")


@dataclass
class RungSpec:
    """A rung ready to train (`config`), or refused (`problems`: every violated relation)."""

    name: str
    source: str
    config: dict | None
    problems: list[str]
    flags: dict[str, bool]


@dataclass(frozen=True)
class TrainRequest:
    """What the ladder asks of training: identical for every rung except `config_path` and `flags`."""

    config_path: Path
    train_dir: Path
    val_dir: Path
    out_dir: Path
    max_steps: int | None
    seed: int
    batch_size: int
    flags: dict
    resume: Path | None
    extra: dict = field(default_factory=dict)
    minutes: float | None = None  # wall-time budget (None: steps only)
    val_every: int | None = None  # validation / checkpoint interval in steps (None: a fifth of max_steps)


@dataclass(frozen=True)
class LadderSettings:
    train_dir: str
    val_dir: str
    rungs: tuple[str, ...]
    max_steps: int | None = 200  # None: no step limit (a `minutes` budget then ends each run)
    seeds: tuple[int, ...] = (0,)
    scale: str = "full"
    base: str | None = None  # base config for named rungs (default: the small / full config)
    batch_size: int = 2
    eval_cutoffs: tuple[float, ...] = (4000.0, 8000.0)
    eval_steps: int = 8
    eval_max_files: int | None = 4
    eval_seconds: float | None = None  # score only the first seconds of each evaluation file (None: all)
    perceptual: str = "mel"
    val_lowfreq_replace: bool = False  # the ladder trains with --disable_val_lowfreq_replace by default
    device: str = "cpu"
    bench_steps: int = 3  # timed synthetic training steps per rung (0: skip)
    text_encoder_path: str | None = None  # local T5 folder for full-scale rungs (offline)
    train_extra: dict = field(default_factory=dict)
    minutes: float | None = None  # training wall time per run (equal CPU budget); None: steps only
    threads: int | None = None  # torch threads the ladder process was given (recorded; set by the CLI)
    eval_dir: str | None = None  # evaluation folder (default: val_dir, or links to a val manifest's files)
    val_every: int | None = None  # validation interval in steps (default: a fifth of max_steps, else 100)

    def budget(self) -> dict:
        """What makes two runs comparable: the same steps and time limits."""
        return {"max_steps": self.max_steps, "minutes": self.minutes}


TrainFn = Callable[[TrainRequest], Path]
EvalFn = Callable[[Path, Path, Path, LadderSettings, int], object]


def rung_flags(name: str, config: dict | None, settings: LadderSettings) -> dict[str, bool]:
    """The training CLI flags for a rung: roll-off features iff it has a roll-off conditioner, captions iff text."""
    if name in RUNGS:
        spec = RUNGS[name]
        rolloff, text = spec.rolloff, "prompt" in spec.cross_attention_cond_ids
    else:
        ms = ModelSettings.from_config(config) if config is not None else None
        reads = set(ms.cross_attn_cond_ids) | set(ms.global_cond_ids) if ms else set()
        rolloff = bool(ms and ms.rolloff_conditioner) or bool(reads & {"input_rolloff", "target_rolloff"})
        text = bool(ms) and "prompt" in ms.cross_attn_cond_ids
    return {
        "compute_rolloff": bool(rolloff),
        "disable_caption": not text,
        "disable_val_lowfreq_replace": not settings.val_lowfreq_replace,
    }


def resolve_rung(name: str, settings: LadderSettings) -> RungSpec:
    """Derive (named rung) or load (config file) a rung's config and run the dimension checks on it."""
    try:
        if name in RUNGS:
            base_name = (
                settings.base or SCALE_BASES.get(settings.scale) or SEEDS_BASES.get(name[0], "saga_model_config_small")
            )
            cfg = derive_rung(load_config(base_name), name, scale=settings.scale)
            source = f"derive_rung({base_name}, {name}, scale={settings.scale})"
        elif Path(name).is_file() or name.endswith(".json"):
            cfg, source = load_config(name), str(name)
        else:
            raise ConfigError([f"'{name}' is neither a rung ({', '.join(RUNGS)}) nor a config file"])
        problems = check_config(cfg)
    except ConfigError as exc:
        return RungSpec(_rung_id(name), name, None, list(exc.problems), rung_flags(name, None, settings))
    return RungSpec(_rung_id(name), source, cfg, problems, rung_flags(name, cfg, settings))


def _rung_id(name: str) -> str:
    return Path(name).stem if name.endswith(".json") else name


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=2, default=str))  # a per-process temporary: OUT may be shared


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---- one run ----------------------------------------------------------------------------------------------
def _run_dir(out: Path, rung: str, seed: int) -> Path:
    return out / "runs" / rung / f"seed{seed}"


def _same_budget(saved: dict, settings: LadderSettings) -> bool:
    """A saved record / trained.json was made under this budget (files from before `minutes` have none)."""
    return all(saved.get(k) == v for k, v in settings.budget().items())


def _torch_threads() -> int | None:
    try:
        import torch  # lazy: the bookkeeping works without it

        return int(torch.get_num_threads())
    except ImportError:
        return None


def steps_reached(train_dir: Path, max_steps: int | None) -> int:
    """Optimiser steps a run reached: its final step=N.ckpt (training always saves one; read from the name, no
    checkpoint is loaded), or the last step its metrics.csv logged if later; max_steps when neither exists."""
    table = read_metrics(train_dir / "metrics.csv", finite_only=False)
    logged = [max(steps) for steps, _values in table.values() if steps]
    logged += [int(m.group(1)) for p in (train_dir / "checkpoints").glob("step=*.ckpt") if (m := _STEP.match(p.name))]
    if not logged:
        return int(max_steps or 0)
    return int(max(logged) if max_steps is None else min(max(logged), max_steps))


def run_one(
    spec: RungSpec,
    seed: int,
    out: Path,
    settings: LadderSettings,
    train_fn: TrainFn,
    eval_fn: EvalFn,
    log: Callable[[str], None],
) -> dict:
    """Check, train (or resume) and evaluate one rung at one seed; returns (and saves) its record."""
    run_dir = _run_dir(out, spec.name, seed)
    record_path = run_dir / "record.json"
    done = _read_json(record_path)
    if done and _same_budget(done, settings) and done.get("status") in ("done", "invalid"):
        log(f"{spec.name} seed {seed}: already done, skipped")
        return done
    record = {
        "rung": spec.name,
        "seed": seed,
        "source": spec.source,
        "flags": spec.flags,
        **settings.budget(),
        "problems": spec.problems,
    }
    spec = _config_of_started_run(spec, run_dir, record, log)
    if spec.config is None or spec.problems:
        log(f"{spec.name}: refused before training:\n  - " + "\n  - ".join(spec.problems))
        return _finish(record, record_path, "invalid")
    try:
        record.update(count_parameters(spec.config))
    except Exception as exc:  # a config that passes the checks but does not build is a finding, not a crash
        return _finish(
            record, record_path, "invalid", f"build_model failed: {type(exc).__name__}: {exc}", log, spec.name
        )
    record["bench_step_s"] = _bench(spec, settings, seed, log)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        _write_json(config_path, spec.config)
    train_dir = run_dir / "train"
    trained = _read_json(run_dir / "trained.json")
    if not trained or not _same_budget(trained, settings):
        last = train_dir / "checkpoints" / "last.ckpt"
        resume = last if last.is_file() else None
        log(f"{spec.name} seed {seed}: training {budget_text(settings)}" + (f" (resuming {resume})" if resume else ""))
        request = _train_request(spec, seed, config_path, train_dir, resume, settings)
        first = start_step(train_dir, resume is not None)
        with PeakMemory(settings.device) as mem:
            t0 = time.perf_counter()
            try:
                train_fn(request)
            except Exception as exc:  # one rung crashing (OOM, data) must not end the ladder; rerun retries it
                return _finish(
                    record,
                    record_path,
                    "failed",
                    f"training failed: {type(exc).__name__}: {exc}",
                    log,
                    f"{spec.name} seed {seed}",
                )
            wall = time.perf_counter() - t0
        reached = steps_reached(train_dir, settings.max_steps)
        trained = {
            **settings.budget(),
            "wall_s": wall,
            "resumed_from": str(resume) if resume else None,
            "start_step": first,
            "steps_reached": reached,
            "threads": _torch_threads(),
            "step_time_s": wall / max(1, reached - first),
            "step_time_kind": "wall time of the training call / its steps (includes setup and validation)",
            "peak_memory_mb": mem.peak_mb,
            "peak_memory_kind": mem.kind,
        }
        _write_json(run_dir / "trained.json", trained)
    record.update(trained=trained, **_training_log_facts(train_dir, trained))
    log(f"{spec.name} seed {seed}: evaluating")
    eval_dir = run_dir / "eval"
    try:
        eval_fn(train_dir / "model", Path(settings.eval_dir or settings.val_dir), eval_dir, settings, seed)
    except Exception as exc:  # recorded like a training failure; a rerun evaluates again without retraining
        return _finish(
            record,
            record_path,
            "failed",
            f"evaluation failed: {type(exc).__name__}: {exc}",
            log,
            f"{spec.name} seed {seed}",
        )
    return _finish(record, record_path, "done", eval_dir=str(eval_dir.relative_to(out)))


def _finish(
    record: dict,
    record_path: Path,
    status: str,
    problem: str | None = None,
    log: Callable[[str], None] | None = None,
    who: str = "",
    **fields,
) -> dict:
    """End a run: set its status, `fields` and its one problem (logged as "WHO: PROBLEM"); save and return it."""
    record.update(status=status, **fields)
    if problem is not None:
        record["problems"] = [problem]
        log(f"{who}: {problem}")
    _write_json(record_path, record)
    return record


def _train_request(
    spec: RungSpec, seed: int, config_path: Path, train_dir: Path, resume: Path | None, settings: LadderSettings
) -> TrainRequest:
    """What training is asked for one rung at one seed (the ladder's extra flags and the local T5 included)."""
    extra = dict(settings.train_extra)
    if settings.text_encoder_path:
        extra.setdefault("text_encoder_path", settings.text_encoder_path)
    return TrainRequest(
        config_path,
        Path(settings.train_dir),
        Path(settings.val_dir),
        train_dir,
        settings.max_steps,
        seed,
        settings.batch_size,
        dict(spec.flags),
        resume,
        extra,
        minutes=settings.minutes,
        val_every=settings.val_every,
    )


def _config_of_started_run(spec: RungSpec, run_dir: Path, record: dict, log: Callable[[str], None]) -> RungSpec:
    """A run that has started (checkpoint or trained.json) continues with the config it started with, even if
    the rung's definition changed since; a run that has not started takes the current definition."""
    saved = _read_json(run_dir / "config.json")
    started = (run_dir / "trained.json").is_file() or any((run_dir / "train" / "checkpoints").glob("*.ckpt"))
    if saved is None or not started or saved == spec.config:
        if saved is not None and not started:
            (run_dir / "config.json").unlink()
        return spec
    record["config_note"] = (
        "the rung's current definition differs from the config this run started with; "
        "continuing with the saved runs/.../config.json (use a new --out for the new one)"
    )
    log(f"{spec.name}: {record['config_note']}")
    return RungSpec(spec.name, spec.source + " (as saved when the run started)", saved, [], spec.flags)


def _bench(spec: RungSpec, settings: LadderSettings, seed: int, log: Callable[[str], None]) -> float | None:
    """benchmark_step for the rung, or None (skipped for full-scale rungs on CPU, or when it fails)."""
    if settings.bench_steps < 1 or (settings.scale == "full" and not settings.device.startswith("cuda")):
        return None
    try:
        return benchmark_step(spec.config, settings.batch_size, settings.device, steps=settings.bench_steps, seed=seed)
    except Exception as exc:  # a benchmark failure must not stop the ladder; training will show the real problem
        log(f"{spec.name}: step benchmark failed ({type(exc).__name__}: {exc})")
        return None


def _training_log_facts(train_dir: Path, trained: dict) -> dict:
    """Step time, steps reached, threads (from trained.json) and the last logged values of the run's metrics.csv."""
    table = read_metrics(train_dir / "metrics.csv", finite_only=False)
    facts: dict = {
        "metrics_csv": str(train_dir / "metrics.csv"),
        "step_time_s": trained.get("step_time_s"),
        "step_time_kind": trained.get("step_time_kind"),
        "steps_reached": trained.get("steps_reached"),
        "threads": trained.get("threads"),
    }
    for key in ("val/lsd", "val/si_sdr", "val/loss", "train/loss"):
        if table.get(key, ([], []))[1]:
            facts[f"last_{key}"] = table[key][1][-1]
    return facts


# ---- the ladder -------------------------------------------------------------------------------------------
def run_ladder(
    settings: LadderSettings,
    out_dir: str | Path,
    *,
    train_fn: TrainFn | None = None,
    eval_fn: EvalFn | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Run every rung x seed (resuming what is there), then write the report; returns the report path."""
    log = log or (lambda _m: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = replace(settings, eval_dir=str(eval_folder(settings, out)))
    previous = _read_json(out / "ladder.json")
    current = json.loads(json.dumps(asdict(settings), default=str))
    if previous and {k: previous.get(k) for k in ("train_dir", "val_dir", "scale", "batch_size")} != {
        k: current.get(k) for k in ("train_dir", "val_dir", "scale", "batch_size")
    }:
        raise SagaError(
            f"{out}: holds a ladder with other data/scale/batch settings ({out / 'ladder.json'}); "
            "use another --out to start a new ladder"
        )
    _write_json(out / "ladder.json", current)
    specs = [resolve_rung(name, settings) for name in settings.rungs]
    for spec in specs:
        state = "ok" if not spec.problems and spec.config is not None else f"{len(spec.problems)} problem(s)"
        log(f"check {spec.name} ({spec.source}): {state}")
    records = []
    for seed in settings.seeds:
        for spec in specs:
            records.append(
                run_one(spec, seed, out, settings, train_fn or train_with_api, eval_fn or evaluate_with_api, log)
            )
    return write_report(out, finished_records(out, settings, records), settings)


def finished_records(out: Path, settings: LadderSettings, own: list[dict] | None = None) -> list[dict]:
    """Every run record in OUT made under this budget (other processes' included; `own` win on a clash),
    in rung order (RUNGS, then other names) and seed order."""
    found: dict[tuple, dict] = {}
    for path in sorted((out / "runs").glob("*/seed*/record.json")):
        rec = _read_json(path)
        if rec and "rung" in rec and "seed" in rec and _same_budget(rec, settings):
            found[(rec["rung"], rec["seed"])] = rec
    for rec in own or []:
        found[(rec["rung"], rec["seed"])] = rec
    order = {name: i for i, name in enumerate(RUNGS)}
    return sorted(found.values(), key=lambda r: (order.get(r["rung"], len(order)), r["rung"], r["seed"]))


def load_settings(out: Path) -> LadderSettings:
    """The settings OUT/ladder.json holds (written by the last ladder process started there)."""
    saved = _read_json(Path(out) / "ladder.json")
    if saved is None:
        raise SagaError(f"{Path(out) / 'ladder.json'}: missing or unreadable; run the ladder into {out} first")
    known = {f.name for f in fields(LadderSettings)}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in known}
    return LadderSettings(**kwargs)


def report_only(out_dir: str | Path, settings: LadderSettings | None = None) -> Path:
    """Rewrite the report from every finished record in OUT (e.g. after two processes shared it)."""
    out = Path(out_dir)
    settings = settings or load_settings(out)
    records = finished_records(out, settings)
    if not records:
        raise SagaError(f"{out / 'runs'}: no run records with the budget {budget_text(settings)}")
    return write_report(out, records, settings)


def eval_folder(settings: LadderSettings, out: Path) -> Path:
    """The evaluation folder: --eval_dir, else the val folder, else OUT/eval_set/<domain>/ linking the val
    manifest's files (evaluation reads folders; subfolders are domains). Where the manifest names a `source`,
    only the first chunk of each recording is linked (mini_data cuts recordings into NAME_000, NAME_001, ...;
    an SF2 file's instruments are separate recordings): the clips the intervals resample are then different
    recordings, not neighbouring chunks of one."""
    if settings.eval_dir:
        return Path(settings.eval_dir)
    val = Path(settings.val_dir)
    if val.is_dir() or not val.is_file():
        return val
    from saga_sr.data.index import read_manifest

    target = out / "eval_set"
    used: set[Path] = set()
    recordings: set[tuple[str, str]] = set()
    for row in read_manifest(val):
        src = Path(row["path"]).resolve()
        if row.get("source"):
            recording = (row["source"], _CHUNK.sub("", src.stem))
            if recording in recordings:
                continue
            recordings.add(recording)
        link = target / (row.get("domain") or "all") / src.name
        k = 1
        while link in used:
            link = link.with_name(f"{src.stem}_{k}{src.suffix}")
            k += 1
        used.add(link)
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(src, link)
        except FileExistsError:  # made by an earlier (or a concurrent) ladder process
            pass
    return target


# ---- default training / evaluation through the package's APIs --------------------------------------------
def train_with_api(req: TrainRequest) -> Path:
    """Train one rung through saga_sr.training.run.train with the rung's flags (validation every fifth of the run)."""
    kwargs = dict(
        train_dir=[str(req.train_dir)],
        val_dir=[str(req.val_dir)],
        model_config=str(req.config_path),
        output_dir=str(req.out_dir),
        max_steps=req.max_steps or 10**9,
        max_time=req.minutes,
        seed=req.seed,
        batch_size=req.batch_size,
        # the run folder, not last.ckpt itself: training then takes its newest *readable* checkpoint
        resume=str(req.out_dir) if req.resume else None,
        no_progress_bar=True,
        val_every=req.val_every or (max(1, req.max_steps // 5) if req.max_steps else 100),
        val_steps=8,
        max_val_items=2,
        val_examples=0,
        num_workers=0,
        log_every=max(1, min(10, req.max_steps // 20)) if req.max_steps else 10,
    )
    kwargs.update({name: bool(req.flags.get(name)) for name in FLAG_NAMES})
    kwargs.update(req.extra)
    return Path(train(**kwargs))


def start_step(train_dir: Path, resuming: bool) -> int:
    """The optimiser step a resumed run starts from: its newest readable checkpoint's (0 if fresh or unreadable)."""
    if not resuming:
        return 0

    try:
        return int(checkpoint_step(find_resume_checkpoint("last", train_dir)))
    except Exception:  # unreadable: training decides what to do; the step time is then a lower bound
        return 0


def evaluate_with_api(model_dir: Path, val_dir: Path, out_dir: Path, settings: LadderSettings, seed: int):
    """The same evaluation protocol for every rung: LR at each cutoff, model + baselines, per-clip CSV."""
    model_fn, roundtrip_fn = load_systems(
        model_dir,
        steps=settings.eval_steps,
        seed=seed,
        device=settings.device,
        text_encoder_path=settings.text_encoder_path,
    )
    # the LR inputs (seed 0) are the same clips for every rung and seed; only the sampler seed follows the run
    eval_settings = EvalSettings(
        cutoffs=tuple(settings.eval_cutoffs),
        seed=0,
        max_files=settings.eval_max_files,
        max_seconds=settings.eval_seconds,
        perceptual=settings.perceptual,
        n_plot=2,
        extra={"model": str(model_dir), "steps": settings.eval_steps},
    )
    return run_evaluation(val_dir, out_dir, model_fn=model_fn, roundtrip_fn=roundtrip_fn, settings=eval_settings)


def parse_list(text: str) -> list[str]:
    """ "A0,A1, B1" -> ["A0", "A1", "B1"] (empty items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]
