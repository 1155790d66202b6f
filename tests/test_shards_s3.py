"""Shards in object storage: URL checks (no server), then prepare to / read from a real S3 server (SeaweedFS) on
127.0.0.1, resume after a kill, and one-line errors for a missing bucket, refused credentials, an unreachable
endpoint and a server that goes away mid-epoch. The 2-process DDP run from S3 is in test_train_latents.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from latent_fixtures import write_clips

from saga_sr.data import prepare as prep
from saga_sr.data.remote import looks_like_url, parse_s3_url
from saga_sr.errors import DataError

SR = 44100


@pytest.mark.parametrize("value", ["s3:/bucket/x", "s3:bucket", "s3://", "s3:///x", "s3://B_ad/x", "s3://ab/x"])
def test_malformed_s3_urls_are_refused(value: str):
    assert looks_like_url(value)
    with pytest.raises(DataError, match=r"^-o .*not a valid s3://BUCKET/PREFIX URL|^-o .*not a folder"):
        from saga_sr.data.remote import check_output

        check_output(value)


def test_url_parts_and_paths():
    url = parse_s3_url("s3://my-bucket/a/b/", "-o")
    assert (url.bucket, url.prefix, url.key("index.json"), str(url)) == (
        "my-bucket",
        "a/b",
        "a/b/index.json",
        "s3://my-bucket/a/b",
    )
    assert parse_s3_url("s3://my-bucket", "-o").key("x") == "x"
    assert not looks_like_url("shards/x") and not looks_like_url("C:/shards") and not looks_like_url("/tmp/a:b")


def test_prepare_to_a_url_typo_writes_no_local_folder(tmp_path: Path, monkeypatch, capsys):
    """`-o s3:/bucket/x` (one slash) is a refused URL, never the local folder `s3:/bucket/x`."""
    from saga_sr.cli import main

    write_clips(tmp_path / "audio", [0.2])
    monkeypatch.chdir(tmp_path)
    for out in ("s3:/bucket/x", "gs://bucket/x", "http://host/x"):
        assert main(["prepare", str(tmp_path / "audio"), "-o", out, "--model_config", "tiny"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and out in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio"]
    assert (
        main(
            [
                "train",
                "--train_latents",
                "s3:/bucket/x",
                "--model_config",
                "tiny",
                "--output_dir",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    assert "--train_latents s3:/bucket/x" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio"]


def test_an_unreachable_endpoint_fails_fast_naming_the_url(tmp_path: Path, monkeypatch, capsys):
    import socket

    from saga_sr.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    write_clips(tmp_path / "audio", [0.2])
    start = time.monotonic()
    assert main(["prepare", str(tmp_path / "audio"), "-o", "s3://bucket/x", "--model_config", "tiny"]) == 2
    assert (
        main(
            [
                "train",
                "--train_latents",
                "s3://bucket/x",
                "--model_config",
                "tiny",
                "--output_dir",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    assert time.monotonic() - start < 30
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(f"cannot reach http://127.0.0.1:{port}" in line for line in lines)
    assert "-o s3://bucket/x" in lines[0] and "--train_latents s3://bucket/x" in lines[1]
    assert not (tmp_path / "run").exists()


def _records(source: str, cache: Path) -> dict[str, dict]:
    from saga_sr.data.latents import open_records

    ds = open_records(source, cache_dir=str(cache))
    return {ds[i]["path"].decode(): ds[i] for i in range(len(ds))}


@pytest.fixture(scope="module")
def tiny_model():
    from saga_sr.models.build import build_model
    from saga_sr.training.run import prepare_config

    return build_model(prepare_config("tiny", sample_size=4096), seed=0)


@pytest.mark.slow
def test_prepare_to_s3_resumes_after_a_kill_and_matches_a_folder(tmp_path: Path, s3_env, tiny_model, monkeypatch):
    s3_env.make_bucket("resume")
    audio = tmp_path / "audio"
    write_clips(audio, [0.2, 0.25, 0.3, 0.35, 0.4])
    prep.prepare_shards([audio], tmp_path / "local", tiny_model, num_lr=2, files_per_part=2, progress=False)
    real, calls = prep.encode_record, {"n": 0}

    def dies_on_the_fourth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # as a kill: nothing after this point runs
        return real(*args, **kwargs)

    monkeypatch.setattr(prep, "encode_record", dies_on_the_fourth)
    url = "s3://resume/sets/a"
    with pytest.raises(KeyboardInterrupt):
        prep.prepare_shards([audio], url, tiny_model, num_lr=2, files_per_part=2, progress=False)
    keys = {o["Key"] for o in s3_env.client().list_objects_v2(Bucket="resume")["Contents"]}
    assert "sets/a/.parts/part-00000.json" in keys and "sets/a/chunk-00000-0000.bin" in keys
    assert "sets/a/.parts/part-00001.json" not in keys and "sets/a/index.json" not in keys
    from saga_sr.training.latent_data import shard_source

    with pytest.raises(DataError, match=r"^--train_latents s3://resume/sets/a: no index.json"):
        shard_source(url)  # an unfinished prepare is refused up front

    calls["n"] = -100
    result = prep.prepare_shards([audio], url, tiny_model, num_lr=2, files_per_part=2, progress=False)
    assert result.merged and result.parts_done == result.parts_total == 3
    assert calls["n"] == -100 + 3  # only the unfinished parts' files were encoded again
    assert shard_source(url) == url
    a, b = _records(str(tmp_path / "local"), tmp_path / "c1"), _records(url, tmp_path / "c2")
    assert a.keys() == b.keys() and len(a) == 5
    for key in a:
        for field in ("hr_mean", "lr_mean", "lr_cutoff_hz", "lr_order"):
            assert torch.equal(a[key][field], b[key][field]), (key, field)
    # the bucket's info is what training checks (fingerprint of the VAE weights)
    from saga_sr.data.latents import read_info

    assert read_info(url)["records"] == 5
    # other settings into the same URL: refused naming the URL, nothing changed in the bucket
    before = {o["Key"]: o["ETag"] for o in s3_env.client().list_objects_v2(Bucket="resume")["Contents"]}
    with pytest.raises(DataError, match=r"^s3://resume/sets/a: holds a prepare with other inputs.*num_lr"):
        prep.prepare_shards([audio], url, tiny_model, num_lr=3, files_per_part=2, progress=False)
    after = {o["Key"]: o["ETag"] for o in s3_env.client().list_objects_v2(Bucket="resume")["Contents"]}
    assert after == before
    from saga_sr.data.remote import parse_s3_url, staging_folder

    assert not staging_folder(parse_s3_url(url, "-o")).exists()  # nor a local staging folder


def test_missing_bucket_and_refused_credentials_are_one_line_errors(tmp_path: Path, s3_env, monkeypatch, capsys):
    from saga_sr.cli import main

    write_clips(tmp_path / "audio", [0.2])
    s3_env.make_bucket("creds")
    cases = [
        ("s3://no-such-bucket/x", {}, "no such bucket"),
        ("s3://creds/x", {"AWS_SECRET_ACCESS_KEY": "wrong"}, "access refused"),
        ("s3://creds/x", {"AWS_ACCESS_KEY_ID": "nobody"}, "access refused"),
    ]
    for url, env, reason in cases:
        with monkeypatch.context() as m:
            for name, value in env.items():
                m.setenv(name, value)
            assert main(["prepare", str(tmp_path / "audio"), "-o", url, "--model_config", "tiny"]) == 2
            assert (
                main(["train", "--train_latents", url, "--model_config", "tiny", "--output_dir", str(tmp_path / "run")])
                == 2
            )
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 2 and all(f"{url}: {reason}" in line for line in lines), lines
    assert "Contents" not in s3_env.client().list_objects_v2(Bucket="creds")  # nothing written by refused runs
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_server_that_goes_away_mid_epoch_is_a_one_line_error(tmp_path: Path, tiny_model, monkeypatch):
    from litdata import StreamingDataLoader
    from s3_server import SeaweedS3

    from saga_sr.data.latents import latent_collate, make_latent_dataset

    server = SeaweedS3(tmp_path / "server")  # its own server: this test kills it
    try:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        server.make_bucket("gone")
        write_clips(tmp_path / "audio", [0.2] * 8)
        prep.prepare_shards(
            [tmp_path / "audio"], "s3://gone/x", tiny_model, num_lr=1, files_per_part=1, progress=False
        )  # one chunk per file: reading goes on fetching chunks

        def dataset(cache: str):
            return make_latent_dataset(
                "s3://gone/x",
                segment_frames=64,
                sample_rate=SR,
                downsampling_ratio=64,
                shuffle=False,
                cache_dir=str(tmp_path / cache),
            )

        it = iter(dataset("c1"))
        next(it)
        workers = iter(StreamingDataLoader(dataset("c2"), batch_size=1, num_workers=1, collate_fn=latent_collate))
        server.kill()
        start = time.monotonic()
        for source in (it, workers):  # in this process, and in a DataLoader worker (rebuilt by torch)
            with pytest.raises(DataError) as exc:
                for _ in range(8):
                    next(source)
            message = str(exc.value)
            assert message.startswith("s3://gone/x/chunk-") and "cannot reach" in message and "\n" not in message
        assert time.monotonic() - start < 45
    finally:
        server.kill()
