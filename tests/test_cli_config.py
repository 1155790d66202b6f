"""`saga-sr config check | inspect | derive`, including the manifest comparison of inspect --json."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from saga_sr.cli import main
from saga_sr.config import CONFIG_DIR, load_config, read_config, shipped_configs

MANIFESTS = Path(__file__).parent / "fixtures" / "manifests"


def manifest(name: str) -> dict:
    return json.loads((MANIFESTS / f"{name}.json").read_text())


def inspect_json(name: str, capsys) -> dict:
    assert main(["config", "inspect", name, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("argv", [["config"], ["config", "check"], ["config", "inspect"], ["config", "derive"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv + ["--help"])
    assert info.value.code == 0
    assert "usage: saga-sr config" in capsys.readouterr().out


def test_check_all_shipped_configs_via_console_script():
    """Every shipped config passes but SAO 1.0 (a weight source of objective "v", which no build to run takes)."""
    runnable = [str(CONFIG_DIR / f"{n}.json") for n in shipped_configs() if n != "stable_audio_open_1.0"]
    run = subprocess.run(
        [sys.executable, "-m", "saga_sr", "config", "check", *runnable], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count(": ok") == len(runnable)
    sao = subprocess.run(
        [sys.executable, "-m", "saga_sr", "config", "check", "stable_audio_open_1.0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sao.returncode == 2 and "diffusion_objective: 'v' is not supported" in sao.stderr


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda c: c["model"]["diffusion"]["config"].update(global_cond_dim=1000), "global_cond_dim"),
        (
            lambda c: c["model"]["diffusion"]["config"].update(embed_dim=1024, num_heads=16, cond_token_dim=768),
            "num_heads",
        ),
        (lambda c: c["model"]["diffusion"]["global_cond_ids"].append("seconds_end"), "global_cond_ids[2]"),
        (lambda c: c["model"]["conditioning"].update(cond_dimm=512), "cond_dimm"),
    ],
)
def test_check_broken_copies_exit_2_naming_the_field(tmp_path, capsys, mutate, field):
    cfg = read_config("saga_model_config_small")
    bad = copy.deepcopy(cfg)
    mutate(bad)
    good_path, bad_path = tmp_path / "good.json", tmp_path / "bad.json"
    good_path.write_text(json.dumps(cfg))
    bad_path.write_text(json.dumps(bad))
    assert main(["config", "check", str(good_path), str(bad_path)]) == 2
    captured = capsys.readouterr()
    assert f"{good_path}: ok" in captured.out
    assert str(bad_path) in captured.err and field in captured.err


def test_check_missing_file_exits_2(tmp_path, capsys):
    assert main(["config", "check", str(tmp_path / "nope.json")]) == 2
    assert "not found" in capsys.readouterr().err


def _assert_keys(component: dict, expected: dict, prefix: str = "") -> None:
    got = {k[len(prefix) :]: v for k, v in component["keys"].items() if k.startswith(prefix)}
    assert got == expected["state_dict"]


def test_inspect_json_matches_the_sao_manifests(capsys):
    summary = inspect_json("stable_audio_open_1.0", capsys)["components"]
    _assert_keys(summary["dit"], manifest("sao_1_0_dit"))
    assert summary["dit"]["params"] == manifest("sao_1_0_dit")["total_params"]
    _assert_keys(summary["pretransform"], manifest("sao_1_0_autoencoder"))
    assert summary["pretransform"]["params"] == manifest("sao_1_0_autoencoder")["total_params"]
    number = manifest("number_conditioner_768")
    for cid in ("seconds_start", "seconds_total"):
        _assert_keys(summary["conditioner"], number, prefix=f"{cid}.")
    full_keys = {comp["prefix"] + k: v for comp in summary.values() for k, v in comp["keys"].items()}
    assert full_keys == manifest("sao_1_0_full_model")["state_dict"]


@pytest.mark.parametrize(
    "config, dit_manifest", [("saga_model_config_small", "dit_small"), ("saga_model_config", "dit_full")]
)
def test_inspect_json_matches_the_seed_manifests(capsys, config, dit_manifest):
    summary = inspect_json(config, capsys)["components"]
    _assert_keys(summary["dit"], manifest(dit_manifest))
    assert summary["dit"]["params"] == manifest(dit_manifest)["total_params"]
    _assert_keys(summary["pretransform"], manifest("sao_1_0_autoencoder"))
    if load_config(config)["model"]["conditioning"]["cond_dim"] == 768:
        _assert_keys(summary["conditioner"], manifest("number_conditioner_768"), prefix="seconds_total.")


def test_inspect_text_lists_components(capsys):
    assert main(["config", "inspect", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "dit" in out and "pretransform" in out and "conditioner" in out and "256 latent frames" in out


def test_derive_writes_a_valid_rung(tmp_path, capsys):
    out = tmp_path / "sub" / "b1.json"
    assert main(["config", "derive", "saga_model_config_small", "B1", "-o", str(out)]) == 0
    cfg = load_config(out)
    assert cfg["model"]["diffusion"]["config"]["embed_dim"] == 768
    tiny = tmp_path / "f2.json"
    assert main(["config", "derive", "saga_model_config", "F2", "--scale", "tiny", "-o", str(tiny)]) == 0
    assert load_config(tiny)["model"]["diffusion"]["rolloff_conditioner"]["type"] == "fourier"
    assert main(["config", "derive", "saga_model_config", "Q7", "-o", str(tmp_path / "x.json")]) == 2
    assert "known rungs" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def _sized(tmp_path: Path, name: str, base: str, edit) -> str:
    cfg = read_config(base)
    edit(cfg)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def _nested(levels: int) -> dict:
    value: list = []
    for _ in range(levels):
        value = [value]
    return {"x": value}


SIZE_CASES = {
    "depth 1e10": (
        "tiny",
        lambda c: c["model"]["diffusion"]["config"].update(depth=10**10),
        "model.diffusion.config.depth",
    ),
    "too many parameters": (
        "tiny",
        lambda c: c["model"]["diffusion"]["config"].update(embed_dim=65536, num_heads=1024, depth=1024),
        "model.diffusion.config: about 5.3e+13 parameters",
    ),
    "autoencoder too big": (
        "saga_model_config",
        lambda c: c["model"]["pretransform"]["config"]["encoder"]["config"].update(channels=60000),
        "model.pretransform.config.encoder.config: about",
    ),
    "segment beyond any machine": (
        "tiny",
        lambda c: c.update(sample_size=2**40),
        "sample_size: 1099511627776 is above the maximum",
    ),
    "integer beyond JSON": ("tiny", lambda c: c["training"].update(max_steps=10**30), "training.max_steps"),
    "900 levels in a free-form field": (
        "tiny",
        lambda c: c["model"]["diffusion"]["config"].update(attn_kwargs=_nested(900)),
        "model.diffusion.config.attn_kwargs.x[0][0]",
    ),
}


@pytest.mark.parametrize("case", list(SIZE_CASES))
def test_sizes_no_machine_can_build_are_refused_naming_the_field(case, tmp_path, capsys):
    base, edit, words = SIZE_CASES[case]
    path = _sized(tmp_path, "big", base, edit)
    assert main(["config", "check", path]) == 2
    out = capsys.readouterr()
    assert words in out.out + out.err
    assert main(["config", "inspect", path]) == 2  # refused before anything is built (it used to hang)
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    "text,words",
    [('{"sample_rate": ' + "9" * 5000 + "}", "number too long"), ("[" * 100000 + "]" * 100000, "nested too deeply")],
)
def test_unreadable_json_is_one_line_not_a_traceback(text, words, tmp_path, capsys):
    path = tmp_path / "raw.json"
    path.write_text(text)
    for argv in (["config", "check", str(path)], ["config", "inspect", str(path)]):
        assert main(argv) == 2
        out = capsys.readouterr()
        assert words in out.out + out.err and "Traceback" not in out.err
