"""Test set -> per-clip metrics, per-domain tables and spectrogram grids, for the model and three baselines.

Protocol (one pass per test file and cutoff):
1. The HR file is read at 44.1 kHz; its LR version is simulated deterministically with the given filter
   and order, seeded from (relative path, cutoff, seed) so a rerun or an independent checker gets the same
   input.
2. Systems: `unprocessed` (the LR input itself), `ours` (the model through the inference pipeline, then
   low-frequency replacement at the known cutoff), `ours_no_lfr` (the same sample before LFR: shows what
   LFR adds),
   `vae_lfr` (HR encoded and decoded by the model's pretransform, then LFR with the LR: the paper's
   "VAE" row, an upper bound for anything decoded by that pretransform) and `dsp_bwe`
   (saga_sr.audio.bwe: noise above the cutoff shaped to continue the top octave below it; a no-learning
   baseline that LSD alone cannot tell apart from real detail).
3. The model systems run once per target roll-off setting (saga_sr.inference.targets: `default`, `reference`
   = each clip's own HR roll-off, an oracle, or a fixed value); the baselines take no target roll-off and
   run once per clip and cutoff (their rows say "n/a" in the target column).
4. Metrics against the HR reference: lsd, lsd_ssr, lsd_hf, lsd_lf, si_sdr (saga_sr.audio.metrics)
   and a perceptual score (ViSQOL, or a labelled log-mel distance; see perceptual.py). A reference whose own
   band edge (saga_sr.audio.bandedge) lies below FULL_BAND_HZ is no high-resolution reference above that
   edge: it is warned about per file and named in the notes, since its scores reward adding nothing there.

Every array that is scored is first written as a float32 44.1 kHz WAV under OUT/audio/, and scored as
written, so the numbers can be recomputed from those files alone. Subfolders of the test folder are
domains: tables are per domain and cutoff (plus "all"), mean ± 95 % t-interval over clips, written with
the CSVs by saga_sr.evaluation.tables (each file atomically: a reader sees the old file or the new one).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import soundfile as sf

from saga_sr.audio.bandedge import band_edge
from saga_sr.audio.bwe import dsp_bandwidth_extension
from saga_sr.audio.io import find_audio_files_relative, load_audio, save_audio, sf_name
from saga_sr.audio.lfr import low_frequency_replace
from saga_sr.audio.lr_sim import simulate_lr
from saga_sr.audio.metrics import all_metrics
from saga_sr.audio.plots import spectrogram_grid
from saga_sr.audio.spectral import rolloff
from saga_sr.errors import AudioError, DataError
from saga_sr.evaluation.perceptual import make_scorer
from saga_sr.evaluation.stats import mean_ci
from saga_sr.evaluation.tables import SYSTEM_LABELS, write_csv, write_tables
from saga_sr.inference.adapters import ModelFn, RoundTripFn, model_functions
from saga_sr.inference.targets import DEFAULT, NOT_USED, TargetSetting, unique_settings
from saga_sr.models.checkpoint import load_model
from saga_sr.outputs import write_text_atomic
from saga_sr.seeding import Stream, derive_seed, text_key

SAMPLE_RATE = 44100
SYSTEMS = ("unprocessed", "ours", "ours_no_lfr", "vae_lfr", "dsp_bwe")
METRICS = ("lsd", "lsd_ssr", "lsd_hf", "lsd_lf", "si_sdr")
ALL_DOMAINS = "all"
# A reference band edge below 0.9 x the 22.05 kHz Nyquist (19.8 kHz) marks a band-limited reference: a
# 44.1 kHz recording's own anti-alias filter lies above it, a lower-rate or codec-low-passed file below.
FULL_BAND_HZ = 0.9 * SAMPLE_RATE / 2


@dataclass(frozen=True)
class EvalSettings:
    """Everything that defines the protocol; saved to OUT/eval.json."""

    cutoffs: tuple[float, ...] = (4000.0, 8000.0)
    filter_type: str = "cheby1"
    order: int = 8
    seed: int = 0
    max_files: int | None = None  # per domain, in sorted order
    max_seconds: float | None = None  # score only the first seconds of each file (None: all of it)
    perceptual: str = "auto"
    n_plot: int = 3
    target_rolloffs: tuple = ("default",)  # TargetSetting or its text (saga_sr.inference.targets)
    extra: dict = field(default_factory=dict)  # e.g. model path, sampling steps (recorded only)


@dataclass
class EvalResult:
    out_dir: Path
    rows: list[dict]
    summary: list[dict]
    tables: list[Path]
    figures: list[Path]
    notes: list[str]


def clip_seed(rel_path: str, cutoff_hz: float, seed: int) -> int:
    """A stable per-(file, cutoff) seed (saga_sr.seeding; the path enters as its crc32, the cutoff in 0.1 Hz)."""
    return derive_seed(seed, Stream.EVAL_CLIP, text_key(rel_path), round(float(cutoff_hz) * 10))


def _domain(rel: Path) -> str:
    return rel.parent.as_posix() if rel.parent.as_posix() not in ("", ".") else ALL_DOMAINS


def list_test_files(test_dir: str | Path, max_files: int | None = None) -> list[tuple[Path, Path]]:
    """(file, path relative to test_dir) sorted, at most `max_files` per domain (subfolder)."""
    test_dir = Path(test_dir)
    if not test_dir.is_dir():
        raise DataError(f"{test_dir}: test folder does not exist")
    files = find_audio_files_relative([test_dir])
    if not files:
        raise DataError(f"{test_dir}: no audio files found")
    if max_files is None:
        return files
    kept, per_domain = [], {}
    for path, rel in files:
        d = _domain(rel)
        if per_domain.get(d, 0) < max_files:
            kept.append((path, rel))
            per_domain[d] = per_domain.get(d, 0) + 1
    return kept


def _fit(wav: np.ndarray, like: np.ndarray) -> np.ndarray:
    """`wav` as float32 with `like`'s channel count and length (trim / zero-pad; mono broadcast)."""
    w = np.asarray(wav, dtype=np.float32)
    w = w[None] if w.ndim == 1 else w
    if w.shape[0] != like.shape[0]:
        w = np.repeat(w[:1] if w.shape[0] == 1 else w.mean(0, keepdims=True), like.shape[0], 0)
    n = like.shape[-1]
    w = w[:, :n] if w.shape[-1] >= n else np.pad(w, ((0, 0), (0, n - w.shape[-1])))
    return np.ascontiguousarray(w)


def _score(ref: np.ndarray, est: np.ndarray, cutoff: float, scorer) -> dict[str, float]:
    metrics = all_metrics(ref, est, SAMPLE_RATE, cutoff)
    values = {k: (float("nan") if v is None else float(v)) for k, v in metrics.items()}
    if scorer.fn is not None:
        values[scorer.name] = scorer(ref, est, SAMPLE_RATE)
    return values


SystemKey = tuple[str, str]  # (system, target setting name; NOT_USED for the baselines)


def _clip_systems(
    hr: np.ndarray,
    lr: np.ndarray,
    cutoff: float,
    seed: int,
    model_fn: ModelFn | None,
    roundtrip: tuple[np.ndarray, float] | None,
    targets: Mapping[str, float] | None = None,
) -> tuple[dict[SystemKey, np.ndarray], dict[SystemKey, float]]:
    """Every system's output for one clip (fitted to the reference) and the seconds each took.

    The model runs once per entry of `targets` (setting name -> normalised target roll-off given); the
    baselines, which take no target roll-off, run once."""
    outs: dict[SystemKey, np.ndarray] = {("unprocessed", NOT_USED): lr}
    secs: dict[SystemKey, float] = {("unprocessed", NOT_USED): 0.0}
    for setting, target in (targets or {}).items() if model_fn is not None else ():
        t0 = time.perf_counter()
        produced = model_fn(lr, SAMPLE_RATE, cutoff, target_rolloff=target)
        elapsed = time.perf_counter() - t0
        for name in ("ours", "ours_no_lfr"):
            if name in produced:
                outs[(name, setting)] = _fit(produced[name], hr)
                secs[(name, setting)] = elapsed
    if roundtrip is not None:
        t0 = time.perf_counter()
        decoded, roundtrip_seconds = roundtrip
        outs[("vae_lfr", NOT_USED)] = _fit(
            low_frequency_replace(_fit(decoded, hr), lr, SAMPLE_RATE, cutoff_hz=cutoff), hr
        )
        secs[("vae_lfr", NOT_USED)] = roundtrip_seconds + time.perf_counter() - t0
    t0 = time.perf_counter()
    outs[("dsp_bwe", NOT_USED)] = _fit(dsp_bandwidth_extension(lr, SAMPLE_RATE, cutoff, seed), hr)
    secs[("dsp_bwe", NOT_USED)] = time.perf_counter() - t0
    return outs, secs


def reference_edge_hz(path: str | Path, hr: np.ndarray) -> float:
    """The band edge of a reference read from `path` and resampled to 44.1 kHz as `hr`: never above the
    file's own Nyquist, which bounds its content whatever its spectrum shows (as `upsample` measures inputs)."""
    native = sf.info(sf_name(path)).samplerate
    return band_edge(hr, SAMPLE_RATE, max_hz=min(native, SAMPLE_RATE) / 2).hz


def load_systems(
    model_path: str | Path, *, device: str = "cpu", text_encoder_path: str | None = None, **kwargs
) -> tuple[ModelFn, RoundTripFn]:
    """`model_functions` for an exported model folder or checkpoint (ModelLoadError if it is missing)."""
    model = load_model(model_path, device=device, text_encoder_path=text_encoder_path)
    return model_functions(model, device=device, **kwargs)


def run_evaluation(
    test_dir: str | Path,
    out_dir: str | Path,
    *,
    model_fn: ModelFn | None,
    roundtrip_fn: RoundTripFn | None = None,
    settings: EvalSettings = EvalSettings(),
    log: Callable[[str], None] | None = None,
) -> EvalResult:
    """Evaluate `model_fn` and the baselines on every file of `test_dir`; write CSV, tables, WAVs and PNGs."""
    log = log or (lambda _msg: None)
    out, files = prepare_evaluation(test_dir, out_dir, settings)
    scorer = make_scorer(settings.perceptual)
    clips = []
    for i, (path, rel) in enumerate(files):
        clip, line = evaluate_file(out, path, rel, settings, scorer, model_fn, roundtrip_fn, log)
        clips.append(clip)
        log(f"[{i + 1}/{len(files)}] {line}")
    return finish_evaluation(test_dir, out, files, clips, settings, scorer, model_fn, roundtrip_fn is not None)


def prepare_evaluation(
    test_dir: str | Path, out_dir: str | Path, settings: EvalSettings
) -> tuple[Path, list[tuple[Path, Path]]]:
    """(the output folder, created; the sorted test files) after checking the settings: a bad setting or a
    missing or empty test set creates nothing."""
    if settings.max_seconds is not None and not (math.isfinite(settings.max_seconds) and settings.max_seconds > 0):
        raise ValueError(
            f"max_seconds must be a positive number of seconds (None: whole files), got {settings.max_seconds}"
        )
    unique_settings(settings.target_rolloffs)
    files = list_test_files(test_dir, settings.max_files)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out, files


def evaluate_file(
    out: Path,
    path: Path,
    rel: Path,
    settings: EvalSettings,
    scorer,
    model_fn: ModelFn | None,
    roundtrip_fn: RoundTripFn | None,
    log: Callable[[str], None],
) -> tuple[dict, str]:
    """One test file at every cutoff: its WAVs written under `out`, and (its record, its progress line).

    The record holds JSON values only, so that it can travel between processes: "rows" (per_clip.csv rows),
    "skipped" (the note for an unreadable file, which is skipped, else None), "band_limited" and "lossless"
    (whether the pretransform round trip reproduced this reference)."""
    targets = unique_settings(settings.target_rolloffs)
    try:
        hr = _load_reference(path, settings.max_seconds)
    except AudioError as exc:  # a bad test file is skipped with its reason; the others are scored
        return (
            {"rows": [], "skipped": f"skipped {rel.as_posix()}: {exc}", "band_limited": [], "lossless": True},
            f"{rel.as_posix()}: skipped ({exc})",
        )
    band_limited = _band_limited(path, rel, hr, log)
    roundtrip, lossless = None, True
    if roundtrip_fn is not None:
        t0 = time.perf_counter()
        roundtrip = (roundtrip_fn(hr, SAMPLE_RATE), time.perf_counter() - t0)
        lossless = float(np.max(np.abs(_fit(roundtrip[0], hr) - hr))) < 1e-6
    ref_hz = rolloff(hr, SAMPLE_RATE).hz
    given = {t.name: t.resolve(ref_hz, SAMPLE_RATE) for t in targets}  # name -> (normalised, Hz)
    rows = []
    for cutoff in settings.cutoffs:
        rows += _evaluate_clip(out, rel, hr, cutoff, settings, scorer, model_fn, roundtrip, given, ref_hz)
    return {"rows": rows, "skipped": None, "band_limited": band_limited, "lossless": lossless}, rel.as_posix()


def finish_evaluation(
    test_dir: str | Path,
    out: Path,
    files: Sequence[tuple[Path, Path]],
    clips: Sequence[dict],
    settings: EvalSettings,
    scorer,
    model_fn: ModelFn | None,
    roundtrip: bool,
) -> EvalResult:
    """per_clip.csv, summary.csv, the tables, the spectrogram grids and eval.json from every file's record
    (`clips`, in the order of `files`); the grids read the first clips' WAVs back from `out`."""
    targets = unique_settings(settings.target_rolloffs)
    notes = [scorer.note] + ([target_note(targets, model_fn)] if model_fn is not None else [])
    notes += [c["skipped"] for c in clips if c["skipped"]]
    rows = [row for c in clips for row in c["rows"]]
    lossless = roundtrip and all(c["lossless"] for c in clips)
    notes += _closing_notes([b for c in clips for b in c["band_limited"]], lossless)
    if not rows:
        skipped = "; ".join(n for n in notes if n.startswith("skipped"))
        raise DataError(f"{test_dir}: no test file could be read ({skipped})")
    notes += _unscored_notes(rows, scorer)
    metric_names = [m for m in (*METRICS, scorer.name) if any(m in r for r in rows)]
    summary = summarize(rows, metric_names)
    write_csv(out / "per_clip.csv", rows)
    write_csv(out / "summary.csv", summary)
    tables = write_tables(
        out, summary, metric_names, scorer.label, notes, {t.name: t.describe(SAMPLE_RATE) for t in targets}
    )
    figures = _write_figures(out, _plot_rows(out, rows, settings, targets))
    meta = {
        "settings": {**asdict(settings), "target_rolloffs": [asdict(t) for t in targets]},
        "sample_rate": SAMPLE_RATE,
        "systems": SYSTEM_LABELS,
        "perceptual": {"name": scorer.name, "label": scorer.label, "note": scorer.note},
        "files": [rel.as_posix() for _, rel in files],
    }
    write_text_atomic(out / "eval.json", json.dumps(meta, indent=2, default=str))
    return EvalResult(out, rows, summary, tables, figures, notes)


def _plot_rows(
    out: Path, rows: Sequence[dict], settings: EvalSettings, targets: Sequence[TargetSetting]
) -> dict[float, list]:
    """The spectrogram grids' rows: the first `n_plot` scored clips per cutoff, read back from their WAVs (the
    signals as scored, float32 written exactly)."""
    by_clip: dict[tuple[float, str], list[dict]] = {}
    for r in rows:
        by_clip.setdefault((r["cutoff_hz"], r["file"]), []).append(r)
    grids: dict[float, list] = {float(c): [] for c in settings.cutoffs}
    for (cutoff, file), members in by_clip.items():
        if len(grids[cutoff]) >= settings.n_plot:
            continue
        outs = {
            (r["system"], r["target_setting"]): _read_scored(out / r["wav"])
            for r in members
            if r["system"] in ("unprocessed", "ours", "dsp_bwe")
        }
        hr = _read_scored(out / members[0]["reference"])
        grids[cutoff].append((Path(file).stem, _plot_cells(outs, targets, hr)))
    return grids


def _read_scored(path: Path) -> np.ndarray:
    """A scored signal read back as written: float32 [C, L]."""
    wav, _ = sf.read(sf_name(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(wav.T)


def _load_reference(path: Path, max_seconds: float | None) -> np.ndarray:
    """The HR reference at 44.1 kHz, cut to its first `max_seconds` (AudioError for an unreadable file)."""
    hr, _ = load_audio(path, target_sr=SAMPLE_RATE)
    if max_seconds is not None:
        hr = np.ascontiguousarray(hr[:, : max(1, int(max_seconds * SAMPLE_RATE))])
    return hr


def _band_limited(path: Path, rel: Path, hr: np.ndarray, log: Callable[[str], None]) -> list[str]:
    """["FILE (EDGE kHz)"] with a warning when the reference holds nothing above its band edge, else []."""
    edge_hz = reference_edge_hz(path, hr)
    if edge_hz >= FULL_BAND_HZ:
        return []
    log(
        f"warning: {rel.as_posix()}: the reference is itself band-limited (band edge {edge_hz / 1000:.1f} "
        f"kHz, below {FULL_BAND_HZ / 1000:.1f} kHz): above its edge it holds nothing to score against"
    )
    return [f"{rel.as_posix()} ({edge_hz / 1000:.1f} kHz)"]


def _evaluate_clip(
    out: Path,
    rel: Path,
    hr: np.ndarray,
    cutoff: float,
    settings: EvalSettings,
    scorer,
    model_fn: ModelFn | None,
    roundtrip: tuple[np.ndarray, float] | None,
    given: Mapping[str, tuple[float, float]],
    ref_hz: float,
) -> list[dict]:
    """One clip at one cutoff: simulate the LR input, run every system, save each output as a WAV and score
    it as saved. `given`: target setting name -> (normalised, Hz). Returns the rows."""
    cseed = clip_seed(rel.as_posix(), cutoff, settings.seed)
    lr = simulate_lr(
        hr, SAMPLE_RATE, seed=cseed, cutoff=float(cutoff), filter_type=settings.filter_type, order=settings.order
    ).audio
    outs, secs = _clip_systems(
        hr,
        _fit(lr, hr),
        float(cutoff),
        cseed,
        model_fn,
        roundtrip,
        {
            name: None if name == DEFAULT else norm  # default: as `upsample` without one
            for name, (norm, _) in given.items()
        },
    )
    clip_dir = out / "audio" / f"{int(cutoff)}hz" / rel.with_suffix("")
    ref_path = save_audio(clip_dir / "reference.wav", hr, SAMPLE_RATE, subtype="FLOAT")
    rows = []
    for (name, setting), wav in outs.items():
        stem = name if setting == NOT_USED else f"{name}.target_{setting}"
        wav_path = save_audio(clip_dir / f"{stem}.wav", wav, SAMPLE_RATE, subtype="FLOAT")
        norm, hz = given.get(setting, (None, None))
        row = {
            "domain": _domain(rel),
            "file": rel.as_posix(),
            "cutoff_hz": float(cutoff),
            "system": name,
            "target_setting": setting,
            "target_rolloff": norm,
            "target_rolloff_hz": None if hz is None else round(hz, 1),
            "reference_rolloff_hz": round(ref_hz, 1),
            "seed": cseed,
            "seconds": round(secs.get((name, setting), float("nan")), 4),
            **_score(hr, wav, float(cutoff), scorer),
            "wav": wav_path.relative_to(out).as_posix(),
            "reference": ref_path.relative_to(out).as_posix(),
        }
        rows.append(row)
    return rows


def _plot_cells(
    outs: Mapping[SystemKey, np.ndarray], targets: Sequence[TargetSetting], hr: np.ndarray
) -> dict[str, np.ndarray]:
    """One row of the spectrogram grid: input, the model per target setting, DSP, reference."""
    ours = {("ours" if len(targets) == 1 else f"ours ({t.name})"): outs.get(("ours", t.name)) for t in targets}
    cells = {"input": outs[("unprocessed", NOT_USED)], **ours, "DSP": outs[("dsp_bwe", NOT_USED)], "reference": hr}
    return {k: v for k, v in cells.items() if v is not None}


def _closing_notes(band_limited: Sequence[str], lossless: bool) -> list[str]:
    """The notes on the whole test set: band-limited references, and a lossless round trip."""
    notes = []
    if band_limited:
        notes.append(
            f"{len(band_limited)} reference(s) are themselves band-limited (band edge below "
            f"{FULL_BAND_HZ / 1000:.1f} kHz): above their edge they hold nothing, so scores there reward "
            f"outputs that add nothing (the unprocessed input) over any restoration: " + ", ".join(band_limited)
        )
    if lossless:
        notes.append(
            "the pretransform round trip is lossless here (a parameter-free pretransform: patched or "
            "spectrogram), so the 'round trip + LFR' row measures what LFR alone costs against the reference"
        )
    return notes


def _unscored_notes(rows: Sequence[dict], scorer) -> list[str]:
    """A note naming the files the perceptual scorer could not score (too short), if any."""
    unscored = sorted(
        {r["file"] for r in rows if scorer.fn is not None and not math.isfinite(r.get(scorer.name, float("nan")))}
    )
    if not unscored:
        return []
    return [
        f"{scorer.name} could not score {len(unscored)} file(s) (too short for its analysis "
        f"patches): {', '.join(unscored)}; their {scorer.name} cells are empty and the means use "
        "other clips only"
    ]


def summarize(rows: Sequence[dict], metric_names: Sequence[str]) -> list[dict]:
    """One row per (domain incl. "all", cutoff, system, target setting, metric): mean, 95 % half-width, n."""
    groups: dict[tuple, list[dict]] = {}
    settings: dict[str, int] = {}  # target settings in first-seen order
    for r in rows:
        setting = r.get("target_setting", NOT_USED)
        settings.setdefault(setting, len(settings))
        for domain in {r["domain"], ALL_DOMAINS}:
            groups.setdefault((domain, r["cutoff_hz"], r["system"], setting), []).append(r)
    out = []
    order = {s: i for i, s in enumerate(SYSTEMS)}

    def key(item):  # "all" first, then domains alphabetically; cutoffs ascending; SYSTEMS order; settings as given
        domain, cutoff, system, setting = item[0]
        return domain != ALL_DOMAINS, domain, cutoff, order.get(system, len(order)), settings[setting]

    for (domain, cutoff, system, setting), members in sorted(groups.items(), key=key):
        for m in metric_names:
            s = mean_ci(r.get(m) for r in members)
            out.append(
                {
                    "domain": domain,
                    "cutoff_hz": cutoff,
                    "system": system,
                    "target_setting": setting,
                    "metric": m,
                    "mean": s.mean,
                    "ci95": s.half_width,
                    "n": s.n,
                }
            )
    return out


def target_note(targets: Sequence[TargetSetting], model_fn=None) -> str:
    """The results' line saying which target roll-off the model was given, and that baselines take none."""
    text = (
        "target roll-off given to the model: "
        + "; ".join(t.describe(SAMPLE_RATE) for t in targets)
        + ". The model rows are one per setting; the baselines take no target roll-off, so they are computed "
        "once per clip and listed once, with n/a in the target column"
    )
    if model_fn is not None and not getattr(model_fn, "takes_target_rolloff", True):
        text += ". This model does not condition on a target roll-off: every setting gives the same output"
    return text


def _write_figures(out: Path, plot_rows: Mapping[float, list]) -> list[Path]:
    paths = []
    for cutoff, rows in plot_rows.items():
        if rows:
            columns = list(dict.fromkeys(name for _, cells in rows for name in cells))
            paths.append(
                spectrogram_grid(
                    rows,
                    SAMPLE_RATE,
                    out / f"spectrograms_{int(cutoff)}hz.png",
                    columns=columns,
                    title=f"LR cutoff {int(cutoff)} Hz",
                    cutoffs=[cutoff] * len(rows),
                )
            )
    return paths
