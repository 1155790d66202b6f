"""Bad input, table-driven: each case is a one-line error naming the option or file, exit code 2, and a refused
run leaves the folder exactly as it was (no output, no empty folder, no rewritten record)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from saga_sr.cli import main
from saga_sr.config import read_config

SR = 16000


def tone(seconds=0.5, channels=1, sr=SR, amp=0.3):
    t = np.arange(int(sr * seconds)) / sr
    return np.stack([amp * np.sin(2 * np.pi * 440 * (c + 1) * t) for c in range(channels)], axis=1)


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir


def _config_with(tmp: Path, edit) -> str:
    cfg = read_config("tiny")
    edit(cfg)
    path = tmp / "bad.json"
    path.write_text(json.dumps(cfg))  # json writes NaN / Infinity as Python's json reads them
    return str(path)


def _raw_config(tmp: Path, text: str | bytes) -> str:
    path = tmp / "raw.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def _state(root: Path) -> dict:
    return {
        p.relative_to(root).as_posix(): (p.is_dir(), None if p.is_dir() else p.read_bytes()) for p in root.rglob("*")
    }


# (name, argv builder (tmp, model) -> argv, words the one-line message must contain)
CASES = [
    (
        "upsample device",
        lambda t, m: ["upsample", "a.wav", "-o", "o", "--model", m, "--device", "tpu9"],
        ["--device tpu9", "not a device"],
    ),
    (
        "upsample cutoff nan",
        lambda t, m: ["upsample", "a.wav", "-o", "o", "--model", m, "--input-cutoff", "nan"],
        ["--input-cutoff", "finite"],
    ),
    (
        "upsample cutoff negative",
        lambda t, m: ["upsample", "a.wav", "-o", "o", "--model", m, "--input-cutoff", "-3"],
        ["--input-cutoff", "> 0"],
    ),
    (
        "upsample seed -1",
        lambda t, m: ["upsample", "a.wav", "-o", "o", "--model", m, "--seed", "-1"],
        ["--seed", "0 to 4294967295"],
    ),
    (
        "evaluate seed 2^32",
        lambda t, m: ["evaluate", "--model", m, "--test-dir", ".", "--seed", "4294967296", "--out", "ev"],
        ["--seed", "0 to 4294967295"],
    ),
    ("upsample steps 0", lambda t, m: ["upsample", "a.wav", "-o", "o", "--model", m, "--steps", "0"], ["--steps"]),
    (
        "upsample model is audio",
        lambda t, m: ["upsample", "a.wav", "-o", "o", "--model", "a.wav"],
        ["--model a.wav", "not a model"],
    ),
    (
        "upsample model missing",
        lambda t, m: ["upsample", "a.wav", "-o", "o", "--model", "nope"],
        ["--model nope", "no such file"],
    ),
    (
        "upsample model folder empty",
        lambda t, m: ["upsample", "a.wav", "-o", "o", "--model", "emptydir"],
        ["--model emptydir", "config.json"],
    ),
    (
        "upsample -o file with 2 inputs",
        lambda t, m: ["upsample", "a.wav", "b.wav", "-o", "x.wav", "--model", m],
        ["-o x.wav", "2 inputs"],
    ),
    (
        "upsample existing output",
        lambda t, m: ["upsample", "a.wav", "-o", "done.wav", "--model", m],
        ["done.wav", "already exists", "--overwrite", "--skip-existing"],
    ),
    (
        "upsample both policies",
        lambda t, m: ["upsample", "a.wav", "-o", "o", "--model", m, "--overwrite", "--skip-existing"],
        ["not allowed with"],
    ),
    (
        "upsample folder under a file",
        lambda t, m: ["upsample", "a.wav", "-o", "a.wav/sub", "--model", m],
        ["a.wav", "is a file"],
    ),
    ("upsample input missing", lambda t, m: ["upsample", "nope.wav", "-o", "o", "--model", m], ["nope.wav", "no such"]),
    ("degrade order 50", lambda t, m: ["degrade", "a.wav", "-o", "o", "--order", "50"], ["--order", "2 to 10"]),
    ("degrade order 1", lambda t, m: ["degrade", "a.wav", "-o", "o", "--order", "1"], ["--order", "2 to 10"]),
    ("degrade cutoff nan", lambda t, m: ["degrade", "a.wav", "-o", "o", "--cutoff", "nan"], ["--cutoff", "finite"]),
    ("degrade existing", lambda t, m: ["degrade", "a.wav", "-o", "done.wav", "--cutoff", "3000"], ["already exists"]),
    (
        "evaluate order 50",
        lambda t, m: ["evaluate", "--model", m, "--test-dir", ".", "--order", "50", "--out", "ev"],
        ["--order", "2 to 10"],
    ),
    (
        "evaluate cutoff 10",
        lambda t, m: ["evaluate", "--model", m, "--test-dir", ".", "--cutoffs", "10", "--out", "ev"],
        ["--cutoffs", "[2000, 22050)"],
    ),
    (
        "evaluate cutoff twice",
        lambda t, m: ["evaluate", "--model", m, "--test-dir", ".", "--cutoffs", "4000", "4000", "--out", "ev"],
        ["--cutoffs 4000 4000", "each cutoff once"],
    ),
    (
        "evaluate model is audio",
        lambda t, m: ["evaluate", "--model", "a.wav", "--test-dir", ".", "--out", "ev"],
        ["--model a.wav", "not a model"],
    ),
    ("rolloff rate -5", lambda t, m: ["rolloff", "a.wav", "--sample-rate", "-5"], ["--sample-rate", "-5"]),
    ("metrics missing", lambda t, m: ["metrics", "a.wav", "nope.wav"], ["nope.wav", "no such file"]),
    (
        "metrics cutoff above nyquist",
        lambda t, m: ["metrics", "a.wav", "a.wav", "--cutoff", "30000"],
        ["--cutoff", "22050"],
    ),
    ("metrics empty folders", lambda t, m: ["metrics", "emptydir", "emptydir"], ["emptydir", "no audio files"]),
    (
        "metrics one name twice",
        lambda t, m: ["metrics", "junk", "junk"],
        ["junk/broken.wav", "junk/broken.flac", "two extensions"],
    ),
    ("metrics cutoff zero", lambda t, m: ["metrics", "a.wav", "a.wav", "--cutoff", "0"], ["--cutoff", "> 0"]),
    ("metrics longer estimate", lambda t, m: ["metrics", "a.wav", "a_plus_noise.wav"], ["length mismatch", "--align"]),
    ("metrics channels", lambda t, m: ["metrics", "a.wav", "stereo.wav"], ["channel mismatch", "--align"]),
    ("metrics rates", lambda t, m: ["metrics", "a.wav", "a_22k.wav"], ["sample rates differ", "--align"]),
    (
        "train output_dir is a file",
        lambda t, m: ["train", "--train_dir", ".", "--model_config", "tiny", "--output_dir", "a.wav"],
        ["--output_dir a.wav", "not a folder"],
    ),
    (
        "train resume plain pickle",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--model_config",
            "tiny",
            "--output_dir",
            "run",
            "--resume",
            "x.pkl",
        ],
        ["--resume x.pkl"],
    ),
    (
        "train resume torch pickle",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--model_config",
            "tiny",
            "--output_dir",
            "run",
            "--resume",
            "obj.ckpt",
        ],
        ["--resume obj.ckpt", "not a saga-sr training checkpoint"],
    ),
    (
        "train learning rate -1",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--model_config",
            "tiny",
            "--output_dir",
            "run",
            "--learning_rate",
            "-1",
        ],
        ["--learning_rate", "> 0"],
    ),
    (
        "train learning rate nan",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--model_config",
            "tiny",
            "--output_dir",
            "run",
            "--learning_rate",
            "nan",
        ],
        ["--learning_rate", "finite"],
    ),
    (
        "train batch 0",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--model_config",
            "tiny",
            "--output_dir",
            "run",
            "--batch_size",
            "0",
        ],
        ["--batch_size", "minimum 1"],
    ),
    (
        "train malformed jsonl",
        lambda t, m: ["train", "--manifest", "m.jsonl", "--model_config", "tiny", "--output_dir", "run"],
        ["m.jsonl:2:", "malformed"],
    ),
    (
        "train config scale nan",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--output_dir",
            "run",
            "--model_config",
            _config_with(t, lambda c: c["model"]["pretransform"].update(scale=float("nan"))),
        ],
        ["model.pretransform.scale", "finite"],
    ),
    (
        "train config dropout 1.5",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--output_dir",
            "run",
            "--model_config",
            _config_with(t, lambda c: c["training"].update(cfg_dropout_prob=1.5)),
        ],
        ["training.cfg_dropout_prob", "maximum 1"],
    ),
    (
        "train config lr -1",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--output_dir",
            "run",
            "--model_config",
            _config_with(t, lambda c: c["training"].update(learning_rate=-1)),
        ],
        ["training.learning_rate", "> 0"],
    ),
    (
        "train config depth 1e10",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--output_dir",
            "run",
            "--model_config",
            _config_with(t, lambda c: c["model"]["diffusion"]["config"].update(depth=10**10)),
        ],
        ["model.diffusion.config.depth", "maximum 1024"],
    ),
    (
        "train config 5000 digits",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--output_dir",
            "run",
            "--model_config",
            _raw_config(t, '{"sample_rate": ' + "9" * 5000 + "}"),
        ],
        ["raw.json", "number too long"],
    ),
    (
        "train config nested",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--output_dir",
            "run",
            "--model_config",
            _raw_config(t, "[" * 100000 + "]" * 100000),
        ],
        ["raw.json", "nested too deeply"],
    ),
    (
        "train config not UTF-8",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--output_dir",
            "run",
            "--model_config",
            _raw_config(t, b"\xff\xfe{"),
        ],
        ["raw.json", "not UTF-8"],
    ),
    (
        "train config key twice",
        lambda t, m: [
            "train",
            "--train_dir",
            ".",
            "--output_dir",
            "run",
            "--model_config",
            _raw_config(t, '{"sample_rate": 44100, "sample_rate": 16000}'),
        ],
        ["raw.json", "sample_rate", "given twice"],
    ),
    (
        "train seed -1",
        lambda t, m: ["train", "--train_dir", ".", "--model_config", "tiny", "--output_dir", "run", "--seed", "-1"],
        ["--seed", "minimum 0"],
    ),
    (
        "train only bad files",
        lambda t, m: ["train", "--train_dir", "junk", "--model_config", "tiny", "--output_dir", "run"],
        ["junk", "no usable audio", "broken.wav"],
    ),
    (
        "train empty folder",
        lambda t, m: ["train", "--train_dir", "emptydir", "--model_config", "tiny", "--output_dir", "run"],
        ["emptydir", "no usable audio"],
    ),
    (
        "train latents is a file",
        lambda t, m: ["train", "--train_latents", "a.wav", "--model_config", "tiny", "--output_dir", "run"],
        ["--train_latents a.wav", "is a file"],
    ),
    (
        "evaluate test-dir missing",
        lambda t, m: ["evaluate", "--model", m, "--test-dir", "nope", "--out", "ev"],
        ["--test-dir nope", "does not exist"],
    ),
    (
        "evaluate test-dir empty",
        lambda t, m: ["evaluate", "--model", m, "--test-dir", "emptydir", "--out", "ev"],
        ["--test-dir emptydir", "no audio files"],
    ),
    (
        "degrade subtype bogus",
        lambda t, m: ["degrade", "a.wav", "-o", "o", "--subtype", "BOGUS"],
        ["--subtype BOGUS", "PCM_16"],
    ),
    (
        "degrade cutoff 10",
        lambda t, m: ["degrade", "a.wav", "-o", "o", "--cutoff", "10"],
        ["--cutoff 10", "[2000, 22050)"],
    ),
    ("degrade seed -1", lambda t, m: ["degrade", "a.wav", "-o", "o", "--seed", "-1"], ["--seed", "0 to 4294967295"]),
    (
        "degrade cutoff-range 10 20",
        lambda t, m: ["degrade", "a.wav", "-o", "o", "--cutoff-range", "10", "20"],
        ["--cutoff-range 10 20", "[2000, 22050)"],
    ),
]


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    sf.write(tmp_path / "a.wav", tone(), SR)
    sf.write(tmp_path / "b.wav", tone(), SR)
    sf.write(tmp_path / "stereo.wav", tone(channels=2), SR)
    sf.write(tmp_path / "a_22k.wav", tone(sr=22050), 22050)
    noise = np.random.default_rng(0).normal(0, 0.5, (10 * SR, 1))
    sf.write(tmp_path / "a_plus_noise.wav", np.concatenate([tone(), noise]), SR, subtype="FLOAT")
    sf.write(tmp_path / "done.wav", tone(), SR)
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "broken.wav").write_bytes(b"RIFF not audio")
    (tmp_path / "junk" / "broken.flac").write_bytes(b"fLaC not audio")
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"state_dict": {}}))
    torch.save({"saga_sr_config": {}, "state_dict": {}, "obj": Path("x")}, tmp_path / "obj.ckpt")
    (tmp_path / "m.jsonl").write_text('{"path": "a.wav"}\n{"path": oops}\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name,argv,words", CASES, ids=[c[0] for c in CASES])
def test_refused_with_one_line_and_nothing_changed(name, argv, words, workdir, model_dir, capsys):
    args = argv(workdir, str(model_dir))
    before = _state(workdir)
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    assert _state(workdir) == before


def test_config_check_refuses_what_training_refuses(workdir, capsys):
    """`config check` and training run the same rules: the same three bad values fail both, naming the field."""
    edits = {
        "model.pretransform.scale": lambda c: c["model"]["pretransform"].update(scale=float("nan")),
        "training.learning_rate": lambda c: c["training"].update(learning_rate=-1),
        "training.cfg_dropout_prob": lambda c: c["training"].update(cfg_dropout_prob=1.5),
        "training.ema_beta": lambda c: c["training"].update(ema_beta=float("inf")),
        "model.diffusion.config.attn_kwargs.x": lambda c: c["model"]["diffusion"]["config"].update(
            attn_kwargs={"x": float("nan")}
        ),
    }
    for field, edit in edits.items():
        path = _config_with(workdir, edit)
        assert main(["config", "check", path]) == 2
        assert field in capsys.readouterr().err
        assert main(["train", "--train_dir", ".", "--model_config", path, "--output_dir", "run"]) == 2
        assert field in capsys.readouterr().err
        assert not (workdir / "run").exists()


@pytest.mark.slow
def test_three_channel_input_suggests_downmix_which_upsample_has(workdir, model_dir, capsys):
    sf.write(workdir / "three.wav", tone(channels=3), SR)
    assert main(["upsample", "three.wav", "-o", "o", "--model", str(model_dir), "--steps", "1", "-q"]) == 1
    assert "--downmix" in capsys.readouterr().err
    assert main(["upsample", "three.wav", "-o", "o", "--model", str(model_dir), "--steps", "1", "-q", "--downmix"]) == 0
    assert sf.info(workdir / "o" / "three.wav").channels == 1


def test_metrics_align_scores_mismatched_pairs_on_purpose(workdir, capsys):
    assert main(["metrics", "a.wav", "a_22k.wav", "--align"]) == 0
    assert json.loads(capsys.readouterr().out)["lsd"] < 1.0
    assert main(["metrics", "a.wav", "a_plus_noise.wav", "--align"]) == 0
    assert json.loads(capsys.readouterr().out)["si_sdr"] > 20  # trimmed to the reference on purpose
