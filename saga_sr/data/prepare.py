"""`saga-sr prepare`: one pass over a training set that writes litdata shards of pre-encoded latents.

Per usable recording (whole file, resampled and channel-matched exactly as training reads it, zero-padded to at
least one training segment and to a whole number of latent frames) one record with:
- `hr_mean`, `hr_std` [Z, T]: the HR latent posterior (std absent for a deterministic pretransform), so training
  still samples z = mean + std * eps as the on-the-fly path does;
- K LR versions drawn with the paper's degradation (`audio.lr_sim.simulate_lr`: cutoff 2-16 kHz capped at
  0.94 x the HR roll-off, cheby1 / butter / bessel / ellip of order 2-10, resampled to 2 x cutoff and back):
  `lr_mean`, `lr_std` [K, Z, T], `lr_cutoff_hz`, `lr_rolloff_hz`, `lr_order` [K], `lr_filter` ("a,b,...");
- `hr_rolloff_hz`, `frames` (real latent frames), `samples`, `seconds_total`, `path`, `caption`, `transcript`,
  `domain`; with `t5_embeddings`, `t5` = {conditioner id: {hidden [L, D], mask [L], text}} (the frozen T5
  output for that text; its trainable projection still runs in training).
Randomness: file i's LR versions come from `numpy_rng(seed, Stream.LR_SIM, i)`, whatever rank or resume processes it.

Work is split into parts of `files_per_part` consecutive candidates; part p belongs to rank p % world_size, so
ranks (processes, GPUs, nodes) write disjoint parts. A part is written to a temporary folder and becomes
final when its marker `.parts/part-PPPPP.json` is written (after its chunks are renamed into place); a killed
run redoes only unfinished parts. When every marker exists, the rank that notices writes `index.json`
(litdata's), `prepare_info.json` and `skipped_files.txt` (files skipped, with the training skip reasons, or
failing to encode). Writes are atomic, so concurrent mergers produce the same files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from saga_sr.data.dataset import _rolloff, compose_prompt
from saga_sr.data.index import AudioEntry, checked_entry, first_reasons, list_candidates, write_skipped_report
from saga_sr.data.latents import FORMAT_VERSION, INFO_FILE
from saga_sr.data.remote import looks_like_url
from saga_sr.data.segment import read_segment
from saga_sr.errors import ConfigError, DataError, OutputError, SagaError
from saga_sr.outputs import check_writable
from saga_sr.seeding import Stream, numpy_rng

log = logging.getLogger(__name__)

PARTS = ".parts"
PLAN_FILE = "prepare_plan.json"
LATENT_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class PrepareResult:
    """What one call did: files written and skipped by this rank, and whether the set is complete (merged)."""

    written: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    parts_done: int = 0
    parts_total: int = 0
    merged: bool = False


def pretransform_fingerprint(pretransform: torch.nn.Module) -> str:
    """A hash of the pretransform's weights, so training refuses shards encoded by another VAE."""
    h = hashlib.blake2b(digest_size=16)
    for key, value in sorted(pretransform.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _atomic_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def text_encoders(model) -> dict[str, tuple[torch.nn.Module, str]]:
    """{conditioner id: (T5Conditioner, the metadata field it falls back to)} for the T5 conditioners the DiT
    uses (MultiConditioner reads the field named like the id, else its default key)."""
    from saga_sr.models.conditioners import T5Conditioner

    multi = model.conditioner
    used = set(model.cross_attn_cond_ids) | set(model.global_cond_ids)
    return {
        cid: (c, multi.default_keys.get(cid, cid))
        for cid, c in multi.conditioners.items()
        if isinstance(c, T5Conditioner) and cid in used
    }


def encode_texts(entry: AudioEntry, encoders: dict, device, dtype: torch.dtype) -> dict:
    """{id: {hidden [L, D], mask [L], text}}: the frozen T5 output for the text training will give that id
    (the prompt as caption + transcript); training uses it only while its own text is the same."""
    item = {
        "prompt": compose_prompt(entry.caption, entry.transcript, True),
        "caption": entry.caption,
        "transcript": entry.transcript,
        "domain": entry.domain,
    }
    out = {}
    for cid, (conditioner, fallback) in encoders.items():
        text = str(item.get(cid if cid in item else fallback, ""))
        hidden, mask = conditioner.encode_text([text], device)
        out[cid] = {
            "hidden": hidden[0].to(dtype).cpu().contiguous(),
            "mask": mask[0].cpu().to(torch.uint8),
            "text": text,
        }
    return out


def encode_record(
    entry: AudioEntry,
    pretransform,
    *,
    sample_size: int,
    sample_rate: int,
    channels: int,
    num_lr: int,
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
    latent_dtype: torch.dtype = torch.float32,
    encode_batch: int = 0,
    encoders: dict | None = None,
) -> dict:
    """The shard record of one recording (see the module docstring); `encoders` (see `text_encoders`) adds the
    frozen T5 outputs under `t5`."""
    from saga_sr.audio.lr_sim import simulate_lr

    ratio = int(pretransform.downsampling_ratio)
    total = int(round(entry.frames * sample_rate / entry.sample_rate))
    length = math.ceil(max(total, sample_size) / ratio) * ratio
    seg = read_segment(entry, length, sample_rate, channels, None)
    valid = seg.valid
    hr = seg.audio[:, :valid]
    _, hr_hz = _rolloff(hr, sample_rate)
    signals, cutoffs, rolloffs, orders, filters = [seg.audio], [], [], [], []
    for _ in range(num_lr):
        res = simulate_lr(hr, sample_rate, rng=rng, hr_rolloff_hz=hr_hz if hr_hz > 0 else None)
        lr = np.zeros_like(seg.audio)
        lr[:, :valid] = np.asarray(res.audio, dtype=np.float32)[:, :valid]
        signals.append(lr)
        cutoffs.append(res.cutoff_hz)
        rolloffs.append(_rolloff(lr[:, :valid], sample_rate)[1])
        orders.append(res.order)
        filters.append(res.filter_type)
    audio = torch.from_numpy(np.stack(signals))
    step = encode_batch if encode_batch > 0 else len(signals)
    means, stds = [], []
    with torch.no_grad():
        for i in range(0, len(signals), step):
            mean, std = pretransform.posterior(audio[i : i + step].to(device))
            means.append(mean.float().cpu())
            stds.append(None if std is None else std.float().cpu())
    mean = torch.cat(means).to(latent_dtype)
    record = {
        "hr_mean": mean[0].contiguous(),
        "lr_mean": mean[1:].contiguous(),
        "lr_cutoff_hz": torch.tensor(cutoffs, dtype=torch.float64),
        "lr_rolloff_hz": torch.tensor(rolloffs, dtype=torch.float64),
        "lr_order": torch.tensor(orders, dtype=torch.int64),
        "lr_filter": ",".join(filters),
        "hr_rolloff_hz": float(hr_hz),
        "frames": int(math.ceil(valid / ratio)),
        "samples": int(valid),
        "seconds_total": float(entry.seconds),
        "path": str(entry.path).encode("utf-8"),  # bytes: litdata would pickle a str naming an existing file
        "caption": entry.caption,
        "transcript": entry.transcript,
        "domain": entry.domain,
    }
    if stds[0] is not None:
        std = torch.cat(stds).to(latent_dtype)
        record["hr_std"], record["lr_std"] = std[0].contiguous(), std[1:].contiguous()
    if encoders:
        record["t5"] = encode_texts(entry, encoders, device, latent_dtype)
    return record


def _plan(rows: list[dict], settings: dict) -> dict:
    names = hashlib.blake2b("\n".join(str(r["path"]) for r in rows).encode(), digest_size=16).hexdigest()
    return {**settings, "files": len(rows), "files_hash": names, "format_version": FORMAT_VERSION}


def _check_plan(out: Path, plan: dict, name: str | None = None) -> None:
    """The plan of a folder being resumed must be this one (same inputs and settings); `name` is how errors
    call the output (the URL when `out` stages a bucket)."""
    path = out / PLAN_FILE
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(old) | set(plan) if old.get(k) != plan.get(k))
        if diff:
            raise DataError(
                f"{name or out}: holds a prepare with other inputs or settings ({', '.join(diff)} differ); "
                "use a new output folder or the same flags"
            )
    else:
        _atomic_json(path, plan)


def _write_part(
    out: Path, part: int, rows: list[dict], first_index: int, encode, chunk_bytes: str, progress
) -> tuple[int, list[tuple[Path, str]]]:
    """Encode one part's files into chunks and publish its marker; returns (written, skipped)."""
    from litdata.streaming.writer import BinaryWriter

    tmp = out / PARTS / f"part-{part:05d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writer = BinaryWriter(str(tmp), chunk_bytes=chunk_bytes)
    skipped: list[tuple[Path, str]] = []
    written = 0
    for offset, row in enumerate(rows):
        entry, reason = checked_entry(row)
        if entry is not None:
            try:
                writer.add_item(written, encode(entry, first_index + offset))
                written += 1
            except (SagaError, OSError, RuntimeError, ValueError) as exc:
                reason = f"failed to encode: {(str(exc).splitlines() or [type(exc).__name__])[0][:200]}"
        if reason:
            skipped.append((Path(row["path"]), reason))
            log.info("skipping %s: %s", row["path"], reason)  # listed in skipped_files.txt and counted
        progress.update(1)
    writer.done()
    chunks, config = [], None
    index_files = sorted(tmp.glob("*index.json"))
    if index_files:
        data = json.loads(index_files[0].read_text(encoding="utf-8"))
        config = data["config"]
        for j, chunk in enumerate(data["chunks"]):
            name = f"chunk-{part:05d}-{j:04d}.bin"
            os.replace(tmp / chunk["filename"], out / name)
            chunks.append({**chunk, "filename": name})
    _atomic_json(
        out / PARTS / f"part-{part:05d}.json",
        {"chunks": chunks, "config": config, "written": written, "skipped": [[str(p), r] for p, r in skipped]},
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return written, skipped


class NothingUsable(DataError):
    """Every candidate file was skipped: the run produced nothing, so it leaves nothing behind."""


def _discard(out: Path, created: bool) -> None:
    """Remove what a run that produced nothing wrote: its parts, plan and chunks, and `out` if it made it."""
    shutil.rmtree(out / PARTS, ignore_errors=True)
    (out / PLAN_FILE).unlink(missing_ok=True)
    for chunk in out.glob("chunk-*.bin"):
        chunk.unlink(missing_ok=True)
    if created:
        try:
            out.rmdir()
        except OSError:
            pass  # something else is in it now: not ours to remove


def check_out_folder(out: str | Path, flag: str = "-o") -> Path:
    """The shard folder `out`, refused (OutputError naming `flag`) when it is a file, lies under a file or
    cannot be created or written (outputs.check_writable); nothing is left behind."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {out}: is a file, not a folder")
    try:
        check_writable([path / PLAN_FILE])
    except OutputError as exc:
        raise OutputError(f"{flag} {out}: {str(exc).split(': ', 1)[1]}") from None
    return path


def merge_parts(out: Path, n_parts: int, info: dict) -> bool:
    """Write index.json, prepare_info.json and skipped_files.txt when every part is done; False otherwise."""
    markers = [out / PARTS / f"part-{p:05d}.json" for p in range(n_parts)]
    if not all(m.is_file() for m in markers):
        return False
    chunks, config, written, skipped = [], None, 0, []
    for m in markers:
        part = json.loads(m.read_text(encoding="utf-8"))
        if part["config"] is not None:
            if config is not None and part["config"] != config:
                raise DataError(f"{m}: its record layout differs from the other parts'; prepare again in a new folder")
            config = part["config"]
        chunks += part["chunks"]
        written += part["written"]
        skipped += [(Path(p), r) for p, r in part["skipped"]]
    if not chunks:
        raise NothingUsable(f"{out}: no usable audio files ({len(skipped)} skipped{first_reasons(skipped)})")
    report = out / "skipped_files.txt"
    tmp = report.with_name(f".skipped_files.txt.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    write_skipped_report(tmp, skipped, title="prepare")
    os.replace(tmp, report)
    _atomic_json(out / INFO_FILE, {**info, "records": written, "skipped": len(skipped)})
    _atomic_json(out / "index.json", {"chunks": chunks, "config": config})
    return True


def check_options(
    sources,
    *,
    num_lr: int,
    rank: int,
    world_size: int,
    files_per_part: int,
    latent_dtype: str,
    out: str | Path | None = None,
    seed: int = 0,
    encode_batch: int = 0,
) -> list[dict]:
    """The candidate rows of `sources`, after checking the options and the output folder `out` (DataError or
    OutputError naming the flag otherwise)."""
    if out is not None and not looks_like_url(out):  # a URL is checked by remote.check_output
        check_out_folder(out)
    if not 0 <= seed < 2**32:
        raise DataError(f"--seed {seed}: must be an integer from 0 to {2**32 - 1}")
    if encode_batch < 0:
        raise DataError(f"--encode_batch {encode_batch}: must be >= 0 (0: all signals of a file at once)")
    if num_lr < 1:
        raise DataError(f"--num_lr {num_lr}: must be >= 1")
    if files_per_part < 1:
        raise DataError(f"--files_per_part {files_per_part}: must be >= 1")
    if not 0 <= rank < world_size:
        raise DataError(f"--rank {rank} must lie in [0, --world_size {world_size})")
    if latent_dtype not in LATENT_DTYPES:
        raise DataError(f"--latent_dtype {latent_dtype!r}: expected one of {sorted(LATENT_DTYPES)}")
    rows = list_candidates([Path(s) for s in sources])
    if not rows:
        raise DataError(f"{', '.join(map(str, sources))}: no audio files found")
    return rows


def prepare_shards(
    sources,
    out_dir: str | Path,
    model,
    *,
    num_lr: int = 8,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    files_per_part: int = 32,
    device: str | torch.device = "cpu",
    latent_dtype: str = "float32",
    encode_batch: int = 0,
    chunk_bytes: str = "64MB",
    t5_embeddings: bool = False,
    config_source: str = "",
    progress: bool = True,
) -> PrepareResult:
    """Encode this rank's parts of `sources` (folders / files / manifests) with `model`'s pretransform into
    `out_dir`, then merge if every part is done. `model` is a SagaSRModel (its config and pretransform)."""
    from tqdm.auto import tqdm

    if model.settings.lr_prefill is not None:
        raise ConfigError(
            [
                f"model.diffusion.lr_prefill: '{model.settings.lr_prefill}' is applied to the LR audio "
                "before encoding at training time; pre-encoded shards do not support it yet (train "
                "this config from audio)"
            ]
        )
    rows = check_options(
        sources,
        num_lr=num_lr,
        rank=rank,
        world_size=world_size,
        files_per_part=files_per_part,
        latent_dtype=latent_dtype,
        out=out_dir,
        seed=seed,
        encode_batch=encode_batch,
    )
    from saga_sr.data.remote import open_sink

    sink = open_sink(out_dir, PARTS, PLAN_FILE)  # a folder, or a bucket written through a staging folder
    out = sink.folder
    ms = model.settings
    pretransform = model.pretransform.to(device).eval()
    settings = {
        "num_lr": num_lr,
        "seed": seed,
        "files_per_part": files_per_part,
        "latent_dtype": latent_dtype,
        "sample_rate": ms.sample_rate,
        "audio_channels": ms.audio_channels,
        "sample_size": ms.sample_size,
        "pretransform": ms.pretransform,
        "pretransform_fingerprint": pretransform_fingerprint(pretransform),
        "t5_embeddings": t5_embeddings,
    }
    encoders = text_encoders(model) if t5_embeddings else None
    if t5_embeddings and not encoders:
        raise DataError("--t5_embeddings: the model config has no T5 conditioner the DiT uses")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / PARTS).mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"-o {out_dir}: cannot create the shard folder ({exc.strerror or exc})") from None
    try:
        _check_plan(out, _plan(rows, settings), sink.name)
    except DataError:
        sink.finish(False)  # a refused run leaves no staging folder behind
        raise
    sink.publish(PLAN_FILE)
    n_parts = math.ceil(len(rows) / files_per_part)
    mine = [p for p in range(n_parts) if p % world_size == rank]
    todo = [p for p in mine if not (out / PARTS / f"part-{p:05d}.json").is_file()]
    n_files = sum(len(rows[p * files_per_part : (p + 1) * files_per_part]) for p in mine)
    n_todo = sum(len(rows[p * files_per_part : (p + 1) * files_per_part]) for p in todo)

    def encode(entry: AudioEntry, index: int) -> dict:
        return encode_record(
            entry,
            pretransform,
            sample_size=ms.sample_size,
            sample_rate=ms.sample_rate,
            channels=ms.audio_channels,
            num_lr=num_lr,
            rng=numpy_rng(seed, Stream.LR_SIM, index),
            device=device,
            latent_dtype=LATENT_DTYPES[latent_dtype],
            encode_batch=encode_batch,
            encoders=encoders,
        )

    result = PrepareResult(parts_total=n_parts, parts_done=len(mine) - len(todo))
    bar = tqdm(
        total=n_files,
        initial=n_files - n_todo,
        unit="file",
        disable=not progress,
        position=rank,
        desc=f"prepare rank {rank}/{world_size}",
        dynamic_ncols=True,
    )
    try:
        for p in todo:
            part_rows = rows[p * files_per_part : (p + 1) * files_per_part]
            written, skipped = _write_part(out, p, part_rows, p * files_per_part, encode, chunk_bytes, bar)
            sink.publish_part(p)
            result.written += written
            result.skipped += skipped
            result.parts_done += 1
    finally:
        bar.close()
    info = {
        **settings,
        "config_source": config_source,
        "files": len(rows),
        "format_version": FORMAT_VERSION,
        "latent_channels": int(model.latent_channels),
        "downsampling_ratio": int(model.downsampling_ratio),
    }
    sink.pull_markers()
    try:
        result.merged = merge_parts(out, n_parts, info)
    except NothingUsable:
        _discard(out, created)
        sink.discard()  # nothing usable: the bucket keeps no plan or parts of this run either
        raise
    sink.finish(result.merged)
    return result
