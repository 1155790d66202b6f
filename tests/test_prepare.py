"""`saga-sr prepare`: records as training reads them, skip report, resume after a kill, disjoint ranks, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from latent_fixtures import tiny_vae_config, write_clips

from saga_sr.data import prepare as prep
from saga_sr.errors import DataError
from saga_sr.models.build import build_model

SR = 44100


def _records(shards: Path) -> dict[str, dict]:
    from saga_sr.data.latents import open_records

    ds = open_records(shards)
    return {ds[i]["path"].decode(): ds[i] for i in range(len(ds))}


@pytest.fixture(scope="module")
def vae_model():
    return build_model(tiny_vae_config(sample_size=4096), seed=0)


def _folder(tmp_path: Path) -> Path:
    audio = tmp_path / "audio"
    write_clips(audio, [0.3, 0.05 + 4096 / SR, 0.5, 0.2, 0.25])
    sf.write(audio / "silent.wav", np.zeros(8000, dtype=np.float32), SR)
    (audio / "broken.wav").write_bytes(b"RIFF not really a wav")
    (audio / "clip02.caption.txt").write_text("a noisy clip")
    return audio


def test_records_hold_the_hr_posterior_and_k_lr_versions(tmp_path: Path, vae_model):
    audio = _folder(tmp_path)
    result = prep.prepare_shards([audio], tmp_path / "sh", vae_model, num_lr=3, files_per_part=3, progress=False)
    assert result.merged and result.written == 5
    skipped = (tmp_path / "sh" / "skipped_files.txt").read_text()
    assert "silent.wav\tsilent" in skipped and "broken.wav\tunreadable" in skipped
    info = json.loads((tmp_path / "sh" / "prepare_info.json").read_text())
    assert info["records"] == 5 and info["skipped"] == 2 and info["num_lr"] == 3
    records = _records(tmp_path / "sh")
    assert len(records) == 5
    for path, rec in records.items():
        samples = int(round(sf.info(path).frames))
        frames = -(-samples // 8)
        assert rec["samples"] == samples and rec["frames"] == frames
        width = max(frames, 4096 // 8)  # padded to at least one training segment
        assert rec["hr_mean"].shape == (8, width) and rec["hr_std"].shape == (8, width)
        assert rec["lr_mean"].shape == (3, 8, width) and rec["lr_std"].shape == (3, 8, width)
        assert float(rec["hr_std"].min()) > 0
        cap = min(16000.0, max(2000.0, 0.94 * float(rec["hr_rolloff_hz"])))
        assert all(2000 <= c <= cap + 1e-6 for c in rec["lr_cutoff_hz"].tolist())
        assert all(2 <= o <= 10 for o in rec["lr_order"].tolist())
        assert set(rec["lr_filter"].split(",")) <= {"cheby1", "butter", "bessel", "ellip"}
        # the HR posterior is the VAE's on the padded file
        wav = np.zeros((1, width * 8), dtype=np.float32)
        wav[0, :samples] = sf.read(path, dtype="float32")[0]
        with torch.no_grad():
            mean, std = vae_model.pretransform.posterior(torch.from_numpy(wav)[None])
        torch.testing.assert_close(rec["hr_mean"], mean[0])
        torch.testing.assert_close(rec["hr_std"], std[0])
    assert records[str(audio / "clip02.wav")]["caption"] == "a noisy clip"


def test_a_killed_prepare_resumes_and_matches_an_uninterrupted_one(tmp_path: Path, vae_model, monkeypatch):
    audio = _folder(tmp_path)
    prep.prepare_shards([audio], tmp_path / "straight", vae_model, num_lr=2, files_per_part=2, progress=False)
    real = prep.encode_record
    calls = {"n": 0}

    def dies_on_the_fourth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # as a kill: nothing after this point runs
        return real(*args, **kwargs)

    monkeypatch.setattr(prep, "encode_record", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        prep.prepare_shards([audio], tmp_path / "resumed", vae_model, num_lr=2, files_per_part=2, progress=False)
    assert not (tmp_path / "resumed" / "index.json").exists()
    done = sorted(p.name for p in (tmp_path / "resumed" / ".parts").glob("part-*.json"))
    # files in order: broken, clip00 | clip01, clip02 | clip03 (killed here), clip04 | silent
    assert done == ["part-00000.json", "part-00001.json"]  # finished parts survive the kill
    calls["n"] = -100
    result = prep.prepare_shards([audio], tmp_path / "resumed", vae_model, num_lr=2, files_per_part=2, progress=False)
    assert result.merged and result.parts_done == result.parts_total == 4
    assert calls["n"] == -100 + 2  # only the unfinished parts' 2 usable files were encoded again
    a, b = _records(tmp_path / "straight"), _records(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        for field in ("hr_mean", "hr_std", "lr_mean", "lr_std", "lr_cutoff_hz", "lr_order"):
            assert torch.equal(a[key][field], b[key][field]), (key, field)
    assert not list((tmp_path / "resumed" / ".parts").glob("*.tmp"))


def test_ranks_write_disjoint_parts_and_the_last_one_merges(tmp_path: Path, vae_model):
    audio = _folder(tmp_path)
    r1 = prep.prepare_shards(
        [audio], tmp_path / "sh", vae_model, num_lr=1, files_per_part=2, rank=1, world_size=2, progress=False
    )
    assert not r1.merged and not (tmp_path / "sh" / "index.json").exists()
    r0 = prep.prepare_shards(
        [audio], tmp_path / "sh", vae_model, num_lr=1, files_per_part=2, rank=0, world_size=2, progress=False
    )
    assert r0.merged and r0.written + r1.written == 5
    single = prep.prepare_shards([audio], tmp_path / "one", vae_model, num_lr=1, files_per_part=2, progress=False)
    a, b = _records(tmp_path / "sh"), _records(tmp_path / "one")
    assert a.keys() == b.keys() and single.written == 5
    assert all(torch.equal(a[k]["lr_mean"], b[k]["lr_mean"]) for k in a)  # draws depend on the file, not the rank


def test_resuming_with_other_settings_is_refused(tmp_path: Path, vae_model):
    write_clips(tmp_path / "audio", [0.2])
    prep.prepare_shards([tmp_path / "audio"], tmp_path / "sh", vae_model, num_lr=2, progress=False)
    with pytest.raises(DataError, match="num_lr"):
        prep.prepare_shards([tmp_path / "audio"], tmp_path / "sh", vae_model, num_lr=3, progress=False)
    with pytest.raises(DataError, match="--num_lr 0"):
        prep.prepare_shards([tmp_path / "audio"], tmp_path / "x", vae_model, num_lr=0, progress=False)


def test_prepare_cli(tmp_path: Path, capsys):
    from saga_sr.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["prepare", "--help"])
    assert exc.value.code == 0 and "--num_lr" in capsys.readouterr().out
    write_clips(tmp_path / "audio", [0.2, 0.3, 0.4])
    rc = main(
        [
            "prepare",
            str(tmp_path / "audio"),
            "-o",
            str(tmp_path / "sh"),
            "--model_config",
            "tiny",
            "--num_lr",
            "2",
            "--files_per_part",
            "1",
            "--no_progress_bar",
        ]
    )
    assert rc == 0
    assert "shards complete" in capsys.readouterr().out
    assert json.loads((tmp_path / "sh" / "prepare_info.json").read_text())["records"] == 3
    assert main(["prepare", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x"), "--model_config", "tiny"]) == 2
    assert (
        main(
            [
                "prepare",
                str(tmp_path / "audio"),
                "-o",
                str(tmp_path / "y"),
                "--model_config",
                "tiny",
                "--rank",
                "2",
                "--world_size",
                "2",
            ]
        )
        == 2
    )


@pytest.mark.slow
def test_prepare_cli_in_two_local_processes(tmp_path: Path, capsys):
    from saga_sr.cli import main

    write_clips(tmp_path / "audio", [0.2, 0.3, 0.4])
    rc = main(
        [
            "prepare",
            str(tmp_path / "audio"),
            "-o",
            str(tmp_path / "sh"),
            "--model_config",
            "tiny",
            "--num_lr",
            "2",
            "--files_per_part",
            "1",
            "--processes",
            "2",
            "--no_progress_bar",
        ]
    )
    assert rc == 0 and "shards complete" in capsys.readouterr().out
    assert json.loads((tmp_path / "sh" / "prepare_info.json").read_text())["records"] == 3
    assert len(list((tmp_path / "sh").glob("chunk-*.bin"))) == 3


def _prepare_argv(audio: Path, out, *extra: str) -> list[str]:
    return [
        "prepare",
        str(audio),
        "-o",
        str(out),
        "--model_config",
        "tiny",
        "--num_lr",
        "1",
        "--no_progress_bar",
        *extra,
    ]


@pytest.fixture(autouse=True)
def _no_stale_log_handlers(monkeypatch):
    """A handler an earlier in-process `train` installed writes to that test's closed capture stream."""
    import logging

    monkeypatch.setattr(logging.getLogger("saga_sr"), "handlers", [])


def _one_line_refusal(argv: list[str], capsys, *words: str) -> str:
    from saga_sr.cli import main

    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    return err


def test_prepare_refuses_an_output_it_cannot_make_before_any_work(tmp_path: Path, capsys, monkeypatch):
    write_clips(tmp_path / "audio", [0.2])
    (tmp_path / "file").write_text("x")
    _one_line_refusal(_prepare_argv(tmp_path / "audio", tmp_path / "file"), capsys, "-o", "not a folder")
    err = _one_line_refusal(_prepare_argv(tmp_path / "audio", tmp_path / "file" / "sub"), capsys, "-o", "is a file")
    assert "prepare_plan.json" not in err
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = prep.os.access
    monkeypatch.setattr(prep.os, "access", lambda p, mode, **kw: Path(p) != locked and real_access(p, mode, **kw))
    import saga_sr.outputs

    monkeypatch.setattr(saga_sr.outputs.os, "access", prep.os.access)
    _one_line_refusal(_prepare_argv(tmp_path / "audio", locked / "sh"), capsys, "-o", "not writable")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "file", "locked"]
    assert not any(locked.iterdir())


def test_prepare_refuses_bad_numbers_as_options(tmp_path: Path, capsys):
    write_clips(tmp_path / "audio", [0.2])
    _one_line_refusal(_prepare_argv(tmp_path / "audio", tmp_path / "sh", "--seed", "-1"), capsys, "--seed")
    _one_line_refusal(
        _prepare_argv(tmp_path / "audio", tmp_path / "sh", "--encode_batch", "-1"), capsys, "--encode_batch", ">= 0"
    )
    with pytest.raises(DataError, match="--seed"):
        prep.check_options(
            [tmp_path / "audio"], num_lr=1, rank=0, world_size=1, files_per_part=1, latent_dtype="float32", seed=-1
        )
    assert not (tmp_path / "sh").exists()


def test_prepare_of_only_bad_files_leaves_nothing_and_the_corrected_rerun_works(tmp_path: Path, capsys):
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "broken.wav").write_bytes(b"RIFF not really a wav")
    sf.write(audio / "silent.wav", np.zeros(8000, dtype=np.float32), SR)
    err = _one_line_refusal(
        _prepare_argv(audio, tmp_path / "sh"), capsys, "no usable audio", "broken.wav", "unreadable"
    )
    assert "skipped_files.txt" not in err  # no report was written, so none is named
    assert not (tmp_path / "sh").exists()
    (tmp_path / "kept").mkdir()  # a folder the user made stays, empty
    _one_line_refusal(_prepare_argv(audio, tmp_path / "kept"), capsys, "no usable audio")
    assert (tmp_path / "kept").is_dir() and not any((tmp_path / "kept").iterdir())
    (audio / "broken.wav").unlink()
    write_clips(audio, [0.2])
    from saga_sr.cli import main

    assert main(_prepare_argv(audio, tmp_path / "sh")) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "sh" / "prepare_info.json").read_text())["records"] == 1
