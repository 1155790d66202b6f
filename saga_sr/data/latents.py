"""Training items from pre-encoded latent shards (written by `saga-sr prepare`, read through litdata).

A shard record holds one whole recording: the HR latent posterior, K simulated LR versions with their latent
posteriors, cutoffs and roll-offs, the HR roll-off and the text (see `saga_sr.data.prepare.RECORD_KEYS`).
`LatentShardDataset` turns a record into one training item the way `SAGASRDataset` turns a file into one:
a random crop of `segment_frames` latent frames (uniform start, zero-padded with a mask when the recording is
shorter) and one of the K LR versions drawn uniformly, plus the metadata the conditioners read (same keys as
`SAGASRDataset`, with `latent_mask` in place of `padding_mask`). The VAE is not run: training samples
z = mean + std * eps from the stored posterior with the step's generator (`LatentPair.sample`).

Randomness: the crop and the LR draw come from `seeding.numpy_rng(seed, Stream.LATENT_CROP, epoch, index)`, so a resumed
run draws the same crops as the run it continues.

litdata does the streaming: local folders or `s3://` URLs, each DDP rank / worker a disjoint part of the
chunks, equal item counts per rank (`drop_last`), and mid-epoch resume through `StreamingDataLoader.state_dict`
(Lightning stores it in the checkpoint). Build the dataset after the process group exists (see
`saga_sr.training.latent_data`), because litdata reads the rank and world size when it is constructed.

Shapes: mean / std [Z, T]; LR versions [K, Z, T]; a batch `LatentPair` [B, Z, segment_frames].
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from saga_sr.audio.spectral import hz_to_normalized
from saga_sr.config.typed import ModelSettings
from saga_sr.data.dataset import compose_prompt
from saga_sr.errors import DataError
from saga_sr.seeding import Stream, numpy_rng

INFO_FILE = "prepare_info.json"  # written by prepare beside litdata's index.json
FORMAT_VERSION = 1


@dataclass
class LatentPair:
    """A batch of HR and LR latent posteriors; std is None for a deterministic pretransform."""

    hr_mean: torch.Tensor
    hr_std: torch.Tensor | None
    lr_mean: torch.Tensor
    lr_std: torch.Tensor | None

    def sample(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_hr, z_lr) = mean + std * eps, eps drawn from `generator` (HR first, then LR)."""
        return _draw(self.hr_mean, self.hr_std, generator), _draw(self.lr_mean, self.lr_std, generator)

    def float(self) -> LatentPair:
        return LatentPair(
            *(None if x is None else x.float() for x in (self.hr_mean, self.hr_std, self.lr_mean, self.lr_std))
        )

    @property
    def shape(self) -> torch.Size:
        return self.hr_mean.shape


def _draw(mean: torch.Tensor, std: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    if std is None:
        return mean
    eps = torch.randn(mean.shape, generator=generator, device=generator.device).to(mean)
    return mean + std * eps


def read_info(source: str | Path) -> dict:
    """prepare_info.json of a shard folder or s3:// URL ({} where absent, and for the other URL schemes)."""
    if str(source).startswith("s3://"):
        from saga_sr.data.remote import read_json

        return read_json(str(source), INFO_FILE) or {}
    if "://" in str(source):
        return {}
    path = Path(source).expanduser()
    if not (path / "index.json").is_file():
        raise DataError(f"--train_latents {path}: no index.json (run `saga-sr prepare` to completion first)")
    check_shard_files(path)
    info = path / INFO_FILE
    if not info.is_file():
        return {}
    try:
        return json.loads(info.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{info}: unreadable ({exc})") from exc


def check_shard_files(path: Path) -> None:
    """DataError naming the shard folder and what is wrong unless index.json parses and every chunk it lists
    exists with the size it states (uncompressed shards); checked before training, at the cost of a stat each."""
    where = f"--train_latents {path}"
    try:
        index = json.loads((path / "index.json").read_text(encoding="utf-8"))
        chunks = index["chunks"]
        compressed = bool((index.get("config") or {}).get("compression"))
        listed = [(str(c["filename"]), int(c["chunk_bytes"])) for c in chunks]
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(
            f"{where}: index.json is unreadable ({str(exc).splitlines()[0][:200]}); run `saga-sr prepare` again"
        ) from None
    except (KeyError, TypeError, AttributeError):
        raise DataError(
            f"{where}: index.json is not a shard index (no chunk list with file names and sizes); "
            "run `saga-sr prepare` again"
        ) from None
    if not listed:
        raise DataError(f"{where}: index.json lists no chunks")
    for name, size in listed:
        chunk = path / name
        if Path(name).name != name or not chunk.is_file():
            raise DataError(f"{where}: chunk {name} listed in index.json is missing")
        actual = chunk.stat().st_size
        if not compressed and actual != size:
            raise DataError(
                f"{where}: chunk {name} has {actual} bytes, index.json says {size} (truncated or "
                "replaced); run `saga-sr prepare` again in a new folder"
            )


def check_compatible(info: dict, settings: ModelSettings, source) -> None:
    """Shards must come from a pretransform with this config's latent size, rate and channels."""
    if not info:
        return
    want = {"sample_rate": settings.sample_rate, "audio_channels": settings.audio_channels}
    for key, value in want.items():
        if key in info and int(info[key]) != int(value):
            raise DataError(f"--train_latents {source}: shards have {key} {info[key]}, the model config {value}")
    if "pretransform" in info and info["pretransform"] != settings.pretransform:
        raise DataError(
            f"--train_latents {source}: the shards were encoded with a different pretransform "
            f"({info.get('config_source', '?')}); prepare them with this config"
        )


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _no_pickle():
    """A litdata serializer that refuses to unpickle: shard fields must be tensors, numbers, strings or bytes."""
    from litdata.streaming.serializers import PickleSerializer

    class NoPickle(PickleSerializer):
        def deserialize(self, data: bytes):
            raise DataError(
                "latent shards: a field is stored as a pickle; refusing to unpickle it "
                "(prepare the shards again with `saga-sr prepare`)"
            )

    return NoPickle()


def crop_record(
    record: dict,
    segment_frames: int,
    rng: np.random.Generator,
    *,
    sample_rate: int,
    downsampling_ratio: int,
    use_caption: bool = True,
) -> tuple[dict, dict]:
    """One training item from a shard record: ({hr_mean, hr_std, lr_mean, lr_std} [Z, segment_frames] tensors
    (std None when absent), metadata). See the module docstring."""
    valid = int(record["frames"])
    start = int(rng.integers(0, valid - segment_frames + 1)) if valid > segment_frames else 0
    k = int(rng.integers(record["lr_mean"].shape[0]))
    stop = start + segment_frames

    def crop(x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        x = x[..., start:stop].float()
        if x.shape[-1] < segment_frames:
            x = torch.nn.functional.pad(x, (0, segment_frames - x.shape[-1]))
        return x

    latents = {
        "hr_mean": crop(record["hr_mean"]),
        "hr_std": crop(record.get("hr_std")),
        "lr_mean": crop(record["lr_mean"][k]),
        "lr_std": crop(record["lr_std"][k]) if "lr_std" in record else None,
    }
    mask = torch.zeros(segment_frames, dtype=torch.bool)
    mask[: max(0, min(segment_frames, valid - start))] = True
    lr_hz, hr_hz = float(record["lr_rolloff_hz"][k]), float(record["hr_rolloff_hz"])
    caption, transcript = str(record.get("caption", "")), str(record.get("transcript", ""))
    metadata = {
        "latent_mask": mask,
        "audio_path": _text(record["path"]),
        "lr_cutoff_hz": float(record["lr_cutoff_hz"][k]),
        "lr_version": k,
        "seconds_start": start * downsampling_ratio / sample_rate,
        "seconds_total": float(record["seconds_total"]),
        "prompt": compose_prompt(caption, transcript, use_caption),
        "caption": caption,
        "transcript": transcript,
        "domain": str(record.get("domain", "")),
        "rolloff_low": lr_hz,
        "rolloff_high": hr_hz,
        "input_rolloff": hz_to_normalized(lr_hz, sample_rate),
        "target_rolloff": hz_to_normalized(hr_hz, sample_rate),
    }
    if "t5" in record:
        metadata["t5_cache"] = {
            cid: (v["hidden"].float(), v["mask"].bool(), _text(v["text"])) for cid, v in record["t5"].items()
        }
    return latents, metadata


def latent_collate(batch: list) -> tuple[LatentPair, list[dict]]:
    """Stack items to a LatentPair [B, Z, T]; metadata stays a list of dicts."""

    def stack(key: str) -> torch.Tensor | None:
        values = [item[0][key] for item in batch]
        return None if values[0] is None else torch.stack(values)

    pair = LatentPair(stack("hr_mean"), stack("hr_std"), stack("lr_mean"), stack("lr_std"))
    return pair, [item[1] for item in batch]


class _Crops:
    """The per-item part of LatentShardDataset (mixed into litdata's StreamingDataset, imported lazily)."""

    def configure(
        self, *, segment_frames: int, sample_rate: int, downsampling_ratio: int, use_caption: bool, crop_seed: int
    ) -> None:
        self.segment_frames, self.sample_rate, self.downsampling_ratio = segment_frames, sample_rate, downsampling_ratio
        self.use_caption, self.crop_seed = use_caption, crop_seed

    def __getitem__(self, index):
        flat = getattr(index, "index", index)
        try:
            record = super().__getitem__(index)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 -- any failure to decode a record: name the shards and the item
            text = (str(exc).strip().splitlines() or [""])[0][:200]
            raise DataError(
                f"latent shards {self.input_dir.path or self.input_dir.url}: cannot read item {flat} "
                f"({type(exc).__name__}: {text}); run `saga-sr prepare` again"
            ) from None
        rng = numpy_rng(self.crop_seed, Stream.LATENT_CROP, int(self.current_epoch), int(flat))
        return crop_record(
            record,
            self.segment_frames,
            rng,
            sample_rate=self.sample_rate,
            downsampling_ratio=self.downsampling_ratio,
            use_caption=self.use_caption,
        )


_CLASS: list = []


def __getattr__(name: str):
    """`LatentShardDataset` is created on first use, so importing this module does not import litdata."""
    if name != "LatentShardDataset":
        raise AttributeError(name)
    if not _CLASS:
        import litdata.streaming.dataset as streaming
        from litdata import StreamingDataset

        # litdata asks PyPI for a newer version of itself in every StreamingDataset (a 30 s timeout on offline
        # nodes); saga-sr never goes to the network at run time
        streaming._check_version_and_prompt_upgrade = lambda *_: None
        from saga_sr.data.s3_stream import install

        install()  # s3:// through saga_sr's bounded client (see saga_sr.data.s3_stream)
        cls = type(
            "LatentShardDataset",
            (_Crops, StreamingDataset),
            {"__module__": __name__, "__doc__": "litdata StreamingDataset of cropped training items."},
        )
        _CLASS.append(cls)
    return _CLASS[0]


def open_records(source: str | Path, cache_dir: str | None = None):
    """The raw shard records (a litdata StreamingDataset without cropping), e.g. to inspect a prepared set."""
    from litdata import StreamingDataset

    __getattr__("LatentShardDataset")  # silences litdata's version check
    return StreamingDataset(
        _resolve(source), cache_dir=cache_dir, serializers={"pickle": _no_pickle()}, item_loader=_item_loader(source)
    )


def _resolve(source: str | Path) -> str:
    src = str(source)
    return src if "://" in src else str(Path(src).expanduser().resolve())


def _item_loader(source):
    """litdata's default loader for folders; for s3:// one that fails at once when a chunk cannot be fetched."""
    if not str(source).startswith("s3://"):
        return None
    from saga_sr.data.s3_stream import FailFastLoader

    return FailFastLoader()


def make_latent_dataset(
    source: str,
    *,
    segment_frames: int,
    sample_rate: int,
    downsampling_ratio: int,
    use_caption: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    cache_dir: str | None = None,
):
    """A LatentShardDataset over the shards at `source` (a folder or an s3:// URL) yielding training items."""
    ds = __getattr__("LatentShardDataset")(
        _resolve(source),
        cache_dir=cache_dir,
        shuffle=shuffle,
        seed=seed,
        max_cache_size="25GB",
        serializers={"pickle": _no_pickle()},
        item_loader=_item_loader(source),
    )
    ds.configure(
        segment_frames=segment_frames,
        sample_rate=sample_rate,
        downsampling_ratio=downsampling_ratio,
        use_caption=use_caption,
        crop_seed=seed,
    )
    return ds
