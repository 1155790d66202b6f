"""Training from pre-encoded latent shards (`--train_latents`): the Lightning data module and its checks.

The streaming dataset is built in `train_dataloader`, i.e. after Lightning has set up the process group, so
litdata sees the real rank and world size (each rank then reads a disjoint, equally long part of every epoch).
The `StreamingDataLoader` is stateful: Lightning saves its state in every checkpoint and a resumed run continues
mid-epoch (`LatentDataModule.fix_loader_state` makes the saved position the number of batches actually trained,
not the number the trainer had already prefetched).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L

from saga_sr.config.typed import ModelSettings
from saga_sr.data.latents import check_compatible, latent_collate, make_latent_dataset, read_info
from saga_sr.errors import DataError


def check_shards(source: str, model) -> dict:
    """The shards' prepare_info.json (local folders), checked against this run's model (its settings and VAE
    weights)."""
    from saga_sr.data.prepare import pretransform_fingerprint

    info = read_info(source)
    check_compatible(info, model.settings, source)
    want = info.get("pretransform_fingerprint")
    if want and want != pretransform_fingerprint(model.pretransform):
        raise DataError(
            f"--train_latents {source}: the shards were encoded with other VAE weights than this "
            "run's (prepare with the same --pretrained_ckpt / --seed as training)"
        )
    return info


class LatentDataModule(L.LightningDataModule):
    """Train loader from latent shards (litdata), optional validation loader over audio."""

    def __init__(
        self,
        source: str,
        settings: ModelSettings,
        *,
        downsampling_ratio: int,
        batch_size: int,
        num_workers: int,
        use_caption: bool,
        seed: int,
        val_loader=None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        ratio = int(downsampling_ratio)
        if settings.sample_size % ratio:
            raise DataError(
                f"sample_size {settings.sample_size} is not a whole number of latent frames "
                f"(downsampling ratio {ratio})"
            )
        self.kwargs = dict(
            segment_frames=settings.sample_size // ratio,
            sample_rate=settings.sample_rate,
            downsampling_ratio=ratio,
            use_caption=use_caption,
            seed=seed,
        )
        self.source, self.batch_size, self.num_workers = str(source), int(batch_size), int(num_workers)
        self.val_loader, self.pin_memory = val_loader, pin_memory
        self.loader = None

    def dataset(self, *, shuffle: bool = True):
        return make_latent_dataset(self.source, shuffle=shuffle, **self.kwargs)

    def train_dataloader(self):
        self.loader = _resumable_loader_class()(
            self.dataset(),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=latent_collate,
            drop_last=True,
            pin_memory=self.pin_memory,
        )
        if len(self.loader) == 0:
            raise DataError(
                f"--train_latents {self.source}: fewer items per device than one batch of {self.batch_size}"
            )
        return self.loader

    def val_dataloader(self):
        return self.val_loader if self.val_loader is not None else []

    @staticmethod
    def fix_loader_state(checkpoint: dict, batches_trained: int) -> None:
        """Lightning fetches one batch ahead, so the loader has yielded one more batch than was trained when
        a checkpoint is written: record the trained count, so that the resumed run starts at the next batch."""
        loops = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
        for state in loops.get("combined_loader", []) or []:
            if "num_samples_yielded" in state and isinstance(state.get("dataset"), dict):
                batch = int(state["dataset"].get("batch_size", 1))
                workers = max(1, int(state["dataset"].get("num_workers", 1)))
                state["num_samples_yielded"] = batches_trained * batch
                state["dataset"]["num_samples_yielded"] = batches_trained * batch
                state["latest_worker_idx"] = (batches_trained - 1) % workers


def _resumable_loader_class():
    """litdata's StreamingDataLoader, resuming only the first epoch after `load_state_dict`.

    Lightning ends an epoch after len(loader) batches without exhausting the iterator, so litdata never clears
    its `restore` flag and would replay the old position at the next epoch too. Workers are not persistent, so
    each epoch's workers start from the main process's (cleared) state."""
    from litdata import StreamingDataLoader

    class ResumableStreamingDataLoader(StreamingDataLoader):
        _resuming = False

        def load_state_dict(self, obj: dict) -> None:
            super().load_state_dict(obj)
            self._resuming = self.restore

        def __iter__(self):
            if self.restore and not self._resuming:
                self.restore = False
            self._resuming = False
            return super().__iter__()

    return ResumableStreamingDataLoader


def shard_source(value: str) -> str:
    """A local shard folder (must exist) or a shard URL (s3:// checked up front: bucket and index.json)."""
    from saga_sr.data.remote import check_source, looks_like_url

    if looks_like_url(value):
        return check_source(value)
    path = Path(value).expanduser()
    if path.is_file():
        raise DataError(
            f"--train_latents {path}: is a file, not a shard folder (give the folder that `saga-sr prepare -o` wrote)"
        )
    if not path.is_dir():
        raise DataError(f"--train_latents {path}: no such folder")
    return str(path)
