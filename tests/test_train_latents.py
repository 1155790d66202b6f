"""Training on pre-encoded latents: the same loss as on the fly, no VAE in the step, crops, DDP and resume."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from latent_fixtures import (
    assert_two_ranks_split_and_resumed,
    prepare_ten_clip_shards,
    seen_items,
    tiny_vae_config,
    write_clips,
)

from saga_sr.audio.lr_sim import simulate_lr
from saga_sr.audio.spectral import rolloff
from saga_sr.data.latents import crop_record, latent_collate, make_latent_dataset
from saga_sr.data.prepare import prepare_shards
from saga_sr.errors import DataError
from saga_sr.models.build import build_model
from saga_sr.seeding import Stream, numpy_rng

ROOT = Path(__file__).resolve().parent.parent
SR = 44100


def _module(model):
    from saga_sr.training.module import SAGASRTrainer

    module = SAGASRTrainer(model, use_ema=False)
    module.eval()  # no module dropout (it would draw from the global RNG); CFG dropout still uses the generator
    return module


def test_loss_on_latents_equals_the_on_the_fly_loss(tmp_path: Path):
    cfg = tiny_vae_config(sample_size=4096)
    model = build_model(cfg, seed=0)
    (clip,) = write_clips(tmp_path / "audio", [4096 / SR])  # exactly one segment: the crop is the whole file
    prepare_shards([tmp_path / "audio"], tmp_path / "shards", model, num_lr=1, seed=5, progress=False)
    ds = make_latent_dataset(str(tmp_path / "shards"), segment_frames=512, sample_rate=SR, downsampling_ratio=8)
    pair, md_lat = latent_collate([ds[0]])
    assert pair.hr_std is not None and float(pair.hr_std.min()) > 0  # a real posterior, sampled in the step

    # the on-the-fly batch: the same HR audio and the same LR version (file 0's draws from [seed, 0])
    import soundfile as sf

    hr = sf.read(clip, dtype="float32")[0][None]
    hr_hz = float(rolloff(hr, SR).hz)  # the HR roll-off prepare_shards measures
    lr = simulate_lr(hr, SR, rng=numpy_rng(5, Stream.LR_SIM, 0), hr_rolloff_hz=hr_hz).audio
    assert md_lat[0]["lr_cutoff_hz"] == pytest.approx(
        simulate_lr(hr, SR, rng=numpy_rng(5, Stream.LR_SIM, 0), hr_rolloff_hz=hr_hz).cutoff_hz
    )
    md_audio = [{k: v for k, v in md_lat[0].items() if k != "latent_mask"}]
    md_audio[0].update(lr_audio=torch.from_numpy(lr), padding_mask=torch.ones(4096, dtype=torch.bool))
    audio = torch.from_numpy(hr)[None]

    module = _module(model)
    t = torch.tensor([0.3])
    on_the_fly = module.flow_step(audio, md_audio, torch.Generator().manual_seed(11), t=t)
    pre_encoded = module.flow_step(pair, md_lat, torch.Generator().manual_seed(11), t=t)
    assert torch.isfinite(on_the_fly)
    torch.testing.assert_close(pre_encoded, on_the_fly, rtol=1e-5, atol=1e-6)
    # the comparison can fail: other noise gives another loss
    other = module.flow_step(pair, md_lat, torch.Generator().manual_seed(12), t=t)
    assert abs(other.item() - on_the_fly.item()) > 1e-4


def test_the_latent_step_never_runs_the_vae(tmp_path: Path):
    cfg = tiny_vae_config(sample_size=4096)
    model = build_model(cfg, seed=0)
    write_clips(tmp_path / "audio", [0.2, 0.3])
    prepare_shards([tmp_path / "audio"], tmp_path / "shards", model, num_lr=2, progress=False)
    ds = make_latent_dataset(str(tmp_path / "shards"), segment_frames=512, sample_rate=SR, downsampling_ratio=8)
    pair, md = latent_collate([ds[0], ds[1]])

    def refuse(*_a, **_k):
        raise AssertionError("the VAE ran in a latent training step")

    model.pretransform.posterior = model.pretransform.encode = model.pretransform.forward = refuse
    module = _module(model)
    module.train()
    loss = module.flow_step(pair, md, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)


def _record(frames: int, k: int = 4) -> dict:
    z = torch.arange(frames, dtype=torch.float32)[None].repeat(3, 1)
    return {
        "hr_mean": z,
        "hr_std": z + 0.5,
        "lr_mean": torch.stack([z + 100 * i for i in range(k)]),
        "lr_std": torch.ones(k, 3, frames),
        "lr_cutoff_hz": torch.arange(k) * 1000.0 + 2000,
        "lr_rolloff_hz": torch.arange(k) * 1000.0 + 1900,
        "hr_rolloff_hz": 15000.0,
        "frames": frames,
        "seconds_total": frames * 8 / SR,
        "path": b"a.wav",
        "caption": "cap",
        "transcript": "words",
    }


def test_crops_are_uniform_windows_and_lr_versions_are_drawn_among_k():
    rng = np.random.default_rng(0)
    starts, versions = [], []
    for _ in range(400):
        lat, md = crop_record(_record(50), 16, rng, sample_rate=SR, downsampling_ratio=8)
        start = int(lat["hr_mean"][0, 0])
        assert torch.equal(lat["hr_mean"][0], torch.arange(start, start + 16, dtype=torch.float32))
        k = md["lr_version"]
        assert torch.equal(lat["lr_mean"][0], lat["hr_mean"][0] + 100 * k)  # LR crop aligned with the HR crop
        assert md["lr_cutoff_hz"] == 2000 + 1000 * k and md["rolloff_low"] == 1900 + 1000 * k
        assert md["seconds_start"] == pytest.approx(start * 8 / SR) and bool(md["latent_mask"].all())
        assert md["prompt"] == "cap words" and md["audio_path"] == "a.wav"
        starts.append(start)
        versions.append(k)
    assert min(starts) == 0 and max(starts) == 50 - 16
    assert sorted(set(versions)) == [0, 1, 2, 3]
    # shorter than a segment: from the start, zero-padded, masked
    lat, md = crop_record(_record(10), 16, rng, sample_rate=SR, downsampling_ratio=8, use_caption=False)
    assert md["latent_mask"].tolist() == [True] * 10 + [False] * 6
    assert float(lat["hr_std"][:, 10:].abs().sum()) == 0 and md["prompt"] == "words"


def test_training_refuses_shards_from_another_vae(tmp_path: Path):
    from saga_sr.training.latent_data import check_shards

    cfg = tiny_vae_config()
    write_clips(tmp_path / "audio", [0.2])
    prepare_shards([tmp_path / "audio"], tmp_path / "shards", build_model(cfg, seed=0), num_lr=1, progress=False)
    check_shards(str(tmp_path / "shards"), build_model(cfg, seed=0))
    with pytest.raises(DataError, match="other VAE weights"):
        check_shards(str(tmp_path / "shards"), build_model(cfg, seed=1))
    with pytest.raises(DataError, match="no index.json"):
        check_shards(str(tmp_path / "audio"), build_model(cfg, seed=0))


def _run(shards: Path | str, out: Path, steps: int, devices: int, *extra: str, env: dict | None = None) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "latent_train.py"),
            str(shards),
            str(out),
            str(steps),
            str(devices),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def ten_clip_shards(tmp_path_factory) -> Path:
    return prepare_ten_clip_shards(tmp_path_factory.mktemp("shards10"))


@pytest.fixture(scope="module")
def s3_ten_clip_shards(ten_clip_shards: Path, s3_server) -> tuple[str, dict]:
    """The same ten clips prepared into a bucket of a SeaweedFS server on 127.0.0.1: (URL, its AWS variables)."""
    from unittest import mock

    from saga_sr.training.run import prepare_config

    s3_server.make_bucket("latents")
    model = build_model(prepare_config("tiny", sample_size=4096), seed=1)
    with mock.patch.dict("os.environ", s3_server.env):
        prepare_shards(
            [ten_clip_shards.parent / "audio"],
            "s3://latents/ten",
            model,
            num_lr=2,
            files_per_part=4,
            seed=1,
            progress=False,
        )
    return "s3://latents/ten", s3_server.env


@pytest.mark.slow
def test_a_resumed_run_draws_exactly_what_an_uninterrupted_run_draws(tmp_path: Path, ten_clip_shards: Path):
    """Single process, across an epoch end: 3 steps, resume to 14 == 14 steps straight (files and crops)."""
    _run(ten_clip_shards, tmp_path / "a", 3, 1)
    _run(ten_clip_shards, tmp_path / "a", 14, 1, "--resume")
    _run(ten_clip_shards, tmp_path / "b", 14, 1)
    resumed, straight = seen_items(tmp_path / "a", 0), seen_items(tmp_path / "b", 0)
    assert [r["step"] for r in resumed] == list(range(14))
    key = [(r["step"], r["files"], r["starts"]) for r in resumed]
    assert key == [(r["step"], r["files"], r["starts"]) for r in straight]
    first_epoch = [f for r in straight[:10] for f in r["files"]]
    assert len(set(first_epoch)) == 10  # an epoch covers the set once
    assert (tmp_path / "a" / "model" / "model.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("store", ["folder", "s3"])
def test_ddp_ranks_read_disjoint_items_and_resume_mid_epoch(tmp_path: Path, store: str, request):
    """2 CPU processes, batch 1, 10 items: an epoch is 5 steps per rank covering all 10 items once; a run stopped
    after 3 steps and resumed continues with the 4 items not yet seen, then starts the next epoch. The same from
    a local folder and from S3 (SeaweedFS on 127.0.0.1; litdata's chunk cache in a fresh HOME)."""
    out = tmp_path / "ddp"
    env = None
    if store == "s3":
        shards, aws = request.getfixturevalue("s3_ten_clip_shards")
        env = {**os.environ, **aws, "HOME": str(tmp_path / "home")}
    else:
        shards = request.getfixturevalue("ten_clip_shards")
    _run(shards, out, 3, 2, env=env)
    _run(shards, out, 7, 2, "--resume", env=env)
    assert_two_ranks_split_and_resumed(out)


@pytest.mark.slow
def test_train_cli_on_latents_with_audio_validation(tmp_path: Path, ten_clip_shards: Path):
    from saga_sr.cli import main

    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--train_latents",
            str(ten_clip_shards),
            "--val_dir",
            str(ROOT / "tests" / "data"),
            "--model_config",
            "tiny",
            "--sample_size",
            "4096",
            "--batch_size",
            "2",
            "--max_steps",
            "3",
            "--num_workers",
            "1",
            "--accelerator",
            "cpu",
            "--val_every",
            "2",
            "--val_steps",
            "2",
            "--max_val_items",
            "1",
            "--seed",
            "1",
            "--no_progress_bar",
            "--activation_checkpointing",
            "--output_dir",
            str(out),
        ]
    )
    assert rc == 0
    text = (out / "metrics.csv").read_text()
    assert "val/loss" in text and "val/lsd" in text
    assert (out / "model" / "model.safetensors").is_file()


def test_train_latents_flag_errors(tmp_path: Path):
    from saga_sr.training.run import train

    with pytest.raises(DataError, match="no such folder"):
        train(train_latents=str(tmp_path / "missing"), model_config="tiny", output_dir=str(tmp_path / "o"))
    with pytest.raises(DataError, match="not both"):
        train(
            train_latents=str(tmp_path),
            train_dir=[str(ROOT / "tests" / "data")],
            model_config="tiny",
            output_dir=str(tmp_path / "o"),
        )


def test_stored_t5_outputs_give_the_same_loss_without_running_t5(tmp_path: Path):
    from saga_sr.training.run import prepare_config

    model = build_model(prepare_config("tiny", sample_size=4096), seed=0)
    clips = write_clips(tmp_path / "audio", [0.2, 0.3])
    clips[1].with_name("clip01.caption.txt").write_text("a hiss")
    prepare_shards([tmp_path / "audio"], tmp_path / "sh", model, num_lr=1, t5_embeddings=True, progress=False)
    ds = make_latent_dataset(str(tmp_path / "sh"), segment_frames=64, sample_rate=SR, downsampling_ratio=64)
    pair, md = latent_collate([ds[0], ds[1]])
    assert sorted(m["prompt"] for m in md) == ["", "a hiss"] and all("prompt" in m["t5_cache"] for m in md)
    module = _module(model)
    plain = [{k: v for k, v in m.items() if k != "t5_cache"} for m in md]
    expected = module.flow_step(pair, plain, torch.Generator().manual_seed(3))
    t5 = model.conditioner.conditioners["prompt"]
    t5.encode_text = lambda *a, **k: (_ for _ in ()).throw(AssertionError("T5 ran"))
    torch.testing.assert_close(module.flow_step(pair, md, torch.Generator().manual_seed(3)), expected)
    # another text than the stored one (e.g. --disable_caption) runs T5 again
    md[0]["prompt"] = md[0]["prompt"] + " (changed)"
    with pytest.raises(AssertionError, match="T5 ran"):
        module.flow_step(pair, md, torch.Generator().manual_seed(3))


def test_speed_flags_keep_parameter_names():
    import argparse

    from saga_sr.training.run import apply_speed_flags, prepare_config

    model = build_model(prepare_config("tiny"), seed=0)
    keys = list(model.state_dict())
    apply_speed_flags(model, argparse.Namespace(activation_checkpointing=True, compile=True))
    assert model.dit.transformer.use_checkpointing
    assert model.dit._compiled_call_impl is not None  # compiled lazily, on the first call
    assert list(model.state_dict()) == keys  # checkpoints and exports unchanged


def test_train_latents_given_a_file_says_it_is_a_file(tmp_path: Path):
    from saga_sr.training.run import train

    (tmp_path / "index.json").write_text("{}")
    with pytest.raises(DataError, match="is a file, not a shard folder"):
        train(train_latents=str(tmp_path / "index.json"), model_config="tiny", output_dir=str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("small_shards")
    cfg = tiny_vae_config()
    write_clips(root / "audio", [0.2, 0.3])
    prepare_shards(
        [root / "audio"], root / "shards", build_model(cfg, seed=0), num_lr=1, files_per_part=1, progress=False
    )
    return root / "shards", cfg


def _corrupt(shards: Path, tmp_path: Path, how: str) -> Path:
    copy = tmp_path / "shards"
    shutil.copytree(shards, copy)
    chunk = sorted(copy.glob("chunk-*.bin"))[1]
    if how == "truncated":
        chunk.write_bytes(chunk.read_bytes()[:1000])
    elif how == "missing":
        chunk.unlink()
    elif how == "broken index":
        (copy / "index.json").write_text((copy / "index.json").read_text()[:50])
    elif how == "index not an index":
        (copy / "index.json").write_text("[1, 2]")
    return copy


@pytest.mark.parametrize(
    "how,words",
    [
        ("truncated", ["chunk-00001-0000.bin", "1000 bytes"]),
        ("missing", ["chunk-00001-0000.bin", "missing"]),
        ("broken index", ["index.json", "unreadable"]),
        ("index not an index", ["index.json", "not a shard index"]),
    ],
)
def test_corrupt_shards_are_refused_naming_the_shard_and_the_fault(small_shards, tmp_path: Path, how, words):
    from saga_sr.training.latent_data import check_shards

    shards, cfg = small_shards
    bad = _corrupt(shards, tmp_path, how)
    with pytest.raises(DataError) as exc:
        check_shards(str(bad), build_model(cfg, seed=0))
    message = str(exc.value)
    assert len(message.splitlines()) == 1 and str(bad) in message, message
    for word in words:
        assert word in message, (word, message)


def test_a_record_that_cannot_be_read_names_the_shards(small_shards, tmp_path: Path):
    from saga_sr.data.latents import make_latent_dataset

    shards, _ = small_shards
    bad = tmp_path / "shards"
    shutil.copytree(shards, bad)
    chunk = sorted(bad.glob("chunk-*.bin"))[0]
    chunk.write_bytes(b"\xff" * chunk.stat().st_size)  # right size, garbage inside
    ds = make_latent_dataset(str(bad), segment_frames=512, sample_rate=SR, downsampling_ratio=8, shuffle=False)
    with pytest.raises(DataError, match=f"latent shards {bad}: cannot read item 0"):
        ds[0]


def test_worker_errors_keep_their_one_line():
    from saga_sr.training.run import worker_message

    wrapped = DataError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
        'last):\n  File "x.py", line 1\nsaga_sr.errors.DataError: latent shards /s: cannot read'
    )
    assert worker_message(wrapped) == "latent shards /s: cannot read"
    assert worker_message(DataError("one line")) == "one line"
