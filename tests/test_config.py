"""Config validation, dimension rules and the ladder rungs (no tensors: all fast)."""

from __future__ import annotations

import copy
import json

import pytest

from saga_sr.config import (
    RUNGS,
    TINY_T5_CONFIG,
    check_config,
    config_path,
    derive_rung,
    load_config,
    shipped_configs,
    uses_rolloff,
    with_rolloff_conditioner,
)
from saga_sr.errors import ConfigError

SHIPPED = ["saga_model_config_small", "saga_model_config", "saga_sr_paper", "stable_audio_open_1.0", "tiny"]


def dit(cfg: dict) -> dict:
    return cfg["model"]["diffusion"]["config"]


@pytest.fixture(scope="module")
def small() -> dict:
    return load_config("saga_model_config_small")


def test_every_required_config_is_shipped_and_valid():
    assert set(SHIPPED) <= set(shipped_configs())
    for name in shipped_configs():
        assert check_config(json.loads(config_path(name).read_text())) == [], name


def test_seeds_small_and_full_dimensions(small):
    d = dit(small)
    assert (
        d["embed_dim"],
        d["depth"],
        d["num_heads"],
        d["cond_token_dim"],
        d["global_cond_dim"],
        d["prepend_cond_dim"],
        d["io_channels"],
        d["input_concat_dim"],
    ) == (512, 8, 8, 512, 1024, 512, 64, 64)
    assert small["model"]["conditioning"]["cond_dim"] == 512
    full = load_config("saga_model_config")
    d = dit(full)
    assert (
        d["embed_dim"],
        d["depth"],
        d["num_heads"],
        d["cond_token_dim"],
        d["global_cond_dim"],
        d["prepend_cond_dim"],
    ) == (1536, 24, 24, 768, 1536, 1536)
    for cfg in (small, full):
        assert cfg["sample_size"] == 65536
        assert cfg["model"]["diffusion"]["diffusion_objective"] == "rectified_flow"
        assert cfg["model"]["diffusion"]["cross_attention_cond_ids"] == ["prompt"]
        assert cfg["model"]["diffusion"]["global_cond_ids"] == ["seconds_start", "seconds_total"]
        assert cfg["training"]["cfg_dropout_prob"] == 0.1


def test_paper_config_facts():
    cfg = load_config("saga_sr_paper")
    diffusion = cfg["model"]["diffusion"]
    assert diffusion["cross_attention_cond_ids"] == ["prompt", "input_rolloff", "target_rolloff"]
    assert diffusion["global_cond_ids"] == ["input_rolloff", "target_rolloff"]
    assert diffusion["cfg_scales"] == {"audio": 1.4, "text": 1.2}
    assert cfg["training"]["timestep_sampler"] == "logit_normal"
    assert cfg["sample_size"] == 262144
    numbers = {c["id"]: c["config"] for c in cfg["model"]["conditioning"]["configs"] if c["type"] == "number"}
    assert numbers == {"input_rolloff": {"min_val": 0, "max_val": 1}, "target_rolloff": {"min_val": 0, "max_val": 1}}


def test_tiny_config_is_cpu_sized_and_offline():
    cfg = load_config("tiny")
    assert cfg["model"]["pretransform"] == {
        "type": "patched",
        "scale": 0.125,
        "config": {"channels": 1, "patch_size": 64},
    }
    assert cfg["sample_size"] // 64 == 256 and cfg["audio_channels"] == 1
    t5 = next(c for c in cfg["model"]["conditioning"]["configs"] if c["type"] == "t5")
    assert t5["config"]["t5_config"] == TINY_T5_CONFIG and "t5_model_name" not in t5["config"]


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda c: dit(c).update(global_cond_dim=512), "model.diffusion.config.global_cond_dim"),
        (
            lambda c: (
                dit(c).update(embed_dim=1024, num_heads=16, cond_token_dim=768, prepend_cond_dim=1024)
                or c["model"]["conditioning"].update(cond_dim=768)
                or dit(c).update(global_cond_dim=1536)
            ),
            "model.diffusion.config.num_heads",
        ),
        (
            lambda c: c["model"]["diffusion"]["cross_attention_cond_ids"].append("caption"),
            "model.diffusion.cross_attention_cond_ids[1]",
        ),
        (lambda c: dit(c).update(num_haeds=dit(c).pop("num_heads")), "model.diffusion.config.num_haeds"),
        (lambda c: dit(c).update(embed_dim=500), "model.diffusion.config.embed_dim"),
        (
            lambda c: (
                dit(c).update(cond_token_dim=96)
                or c["model"]["conditioning"].update(cond_dim=96)
                or dit(c).update(global_cond_dim=192)
            ),
            "model.diffusion.config.cond_token_dim",
        ),
        (lambda c: dit(c).update(input_concat_dim=32), "model.diffusion.config.input_concat_dim"),
        (lambda c: dit(c).update(io_channels=128), "model.diffusion.config.io_channels"),
        (lambda c: c.update(sample_size=65000), "sample_size"),
        (lambda c: dit(c).update(depth="8"), "model.diffusion.config.depth"),
        (lambda c: dit(c).update(prepend_cond_dim=300), "model.diffusion.config.prepend_cond_dim"),
        (
            lambda c: c["model"]["pretransform"]["config"].update(downsampling_ratio=1024),
            "model.pretransform.config.downsampling_ratio",
        ),
        (lambda c: c["training"].update(timestep_sampler="cosine"), "training.timestep_sampler"),
        (lambda c: c["model"]["conditioning"]["configs"][1].update(type="numbr"), "model.conditioning.configs[1].type"),
    ],
)
def test_each_broken_rule_names_its_field(small, mutate, field):
    cfg = copy.deepcopy(small)
    mutate(cfg)
    problems = check_config(cfg)
    assert any(p.startswith(field + ":") for p in problems), problems


def test_seeds_1024_16_768_reports_query_vs_kv_heads(small):
    cfg = copy.deepcopy(small)
    cfg["model"]["conditioning"]["cond_dim"] = 768
    dit(cfg).update(embed_dim=1024, num_heads=16, cond_token_dim=768, global_cond_dim=1536, prepend_cond_dim=1024)
    (problem,) = check_config(cfg)
    assert "16" in problem and "12" in problem and problem.startswith("model.diffusion.config.num_heads")


def test_typo_gets_a_hint_and_all_problems_are_listed(small, tmp_path):
    cfg = copy.deepcopy(small)
    dit(cfg)["embed_dimm"] = dit(cfg).pop("embed_dim")
    dit(cfg)["global_cond_dim"] = 7
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "did you mean 'embed_dim'" in text and "global_cond_dim: 7" in text
    assert len(info.value.problems) >= 3  # missing embed_dim, unknown embed_dimm, global width
    assert str(path) in text


def test_comment_keys_are_allowed_and_bad_files_are_reported(small, tmp_path):
    cfg = copy.deepcopy(small)
    cfg["model"]["_note"] = "anything"
    assert check_config(cfg) == []
    bad = tmp_path / "x.json"
    bad.write_text("{ not json")
    with pytest.raises(ConfigError, match="line 1"):
        load_config(bad)
    with pytest.raises(ConfigError, match="shipped"):
        load_config("no_such_config")


def test_rolloff_conditioner_needs_a_prepend_of_embed_width():
    cfg = load_config("saga_sr_paper")  # prepend_cond_dim 0, like SAO
    cfg["model"]["diffusion"]["rolloff_conditioner"] = {"type": "fourier"}
    assert any("prepend_cond_dim: 0" in p for p in check_config(cfg))
    fixed = with_rolloff_conditioner(load_config("saga_sr_paper"), dropout_rate=0.2)
    assert check_config(fixed) == [] and fixed["model"]["diffusion"]["config"]["prepend_cond_dim"] == 1536
    assert fixed["model"]["diffusion"]["rolloff_conditioner"] == {"type": "fourier", "dropout_rate": 0.2}


@pytest.mark.parametrize("base", ["saga_model_config_small", "saga_model_config", "saga_sr_paper", "tiny"])
@pytest.mark.parametrize("scale", ["full", "tiny", "mini"])
def test_every_rung_of_every_base_is_valid(base, scale):
    for rung in RUNGS:
        assert check_config(derive_rung(load_config(base), rung, scale=scale)) == [], (base, rung, scale)


def test_rungs_match_the_seeds(small):
    full = load_config("saga_model_config")
    a0, a1, b1 = (derive_rung(small, r) for r in ("A0", "A1", "B1"))
    assert dit(a0) == dit(small)  # A0 is the small config itself
    assert dit(a1)["depth"] == 16 and dit(a1)["embed_dim"] == 512
    assert {
        k: dit(b1)[k]
        for k in ("embed_dim", "depth", "num_heads", "cond_token_dim", "global_cond_dim", "prepend_cond_dim")
    } == dict(embed_dim=768, depth=16, num_heads=12, cond_token_dim=768, global_cond_dim=1536, prepend_cond_dim=768)
    f0, f1, f2 = (derive_rung(full, r) for r in ("F0", "F1", "F2"))
    assert f0["model"]["diffusion"]["cross_attention_cond_ids"] == []
    assert dit(f0) == dit(full) and f1["model"] == full["model"]
    assert f2["model"]["diffusion"]["rolloff_conditioner"] == {"type": "fourier"}
    assert "rolloff_conditioner" not in f1["model"]["diffusion"]
    with pytest.raises(ConfigError, match="unknown"):
        derive_rung(small, "C3")


def test_tiny_ladder_keeps_the_relations_between_rungs(small):
    full_scale = {r: dit(derive_rung(small, r)) for r in RUNGS}
    tiny = {r: derive_rung(small, r, scale="tiny") for r in RUNGS}
    head = {r: dit(c)["embed_dim"] // dit(c)["num_heads"] for r, c in tiny.items()}
    assert set(head.values()) == {32}
    for r in RUNGS:
        assert dit(tiny[r])["embed_dim"] * 8 == full_scale[r]["embed_dim"]
        assert dit(tiny[r])["depth"] * 4 == full_scale[r]["depth"]
        assert tiny[r]["model"]["pretransform"]["type"] == "patched"
        t5 = next(c for c in tiny[r]["model"]["conditioning"]["configs"] if c["type"] == "t5")
        assert t5["config"]["t5_config"] == TINY_T5_CONFIG
        assert tiny[r]["sample_size"] == small["sample_size"] // 4


def test_mini_ladder_maps_every_rung_onto_mini_json():
    mini = load_config("mini")
    rungs = {r: derive_rung(mini, r, scale="mini") for r in RUNGS}
    sizes = {
        r: tuple(dit(c)[k] for k in ("embed_dim", "depth", "num_heads", "cond_token_dim")) for r, c in rungs.items()
    }
    assert sizes == {
        "A0": (256, 3, 4, 64),
        "A1": (256, 6, 4, 64),
        "B1": (384, 6, 6, 128),  # 768 / 8 = 96 is no multiple of the 64-wide heads: rounded to 128
        "F0": (768, 9, 12, 128),
        "F1": (768, 9, 12, 128),
        "F2": (768, 9, 12, 128),
    }
    for r, cfg in rungs.items():
        assert check_config(cfg) == [], r
        assert cfg["model"]["conditioning"]["cond_dim"] == dit(cfg)["cond_token_dim"]
        assert {k: cfg[k] for k in ("sample_size", "training")} == {k: mini[k] for k in ("sample_size", "training")}
        assert cfg["model"]["pretransform"] == mini["model"]["pretransform"]
        kept = ("lr_gain", "lr_prefill", "envelope_follow", "target_band_limit", "cfg_scales", "default_steps")
        assert all(cfg["model"]["diffusion"][k] == mini["model"]["diffusion"][k] for k in kept), r
        assert "lr_bridge" not in cfg["model"]["diffusion"], r  # the bridge is the recipe's fine-tune phase
    assert "lr_bridge" in mini["model"]["diffusion"]  # so the assertion above can fail
    assert {k: v for k, v in dit(rungs["A0"]).items() if k != "global_cond_dim"} == {
        k: v for k, v in dit(mini).items() if k != "global_cond_dim"
    }  # mini.json's DiT is A0; only its roll-off conditioning goes (the seeds' A rungs read none)
    assert rungs["A0"]["model"]["diffusion"]["global_cond_ids"] == [] and dit(rungs["A0"])["global_cond_dim"] == 0
    for r in ("A0", "A1", "B1", "F0", "F1"):
        ids = {c["id"] for c in rungs[r]["model"]["conditioning"]["configs"]}
        assert ids == {"prompt"} and not uses_rolloff(rungs[r]), r
    assert rungs["F0"]["model"]["diffusion"]["cross_attention_cond_ids"] == []
    assert rungs["F1"]["model"]["diffusion"]["cross_attention_cond_ids"] == ["prompt"]
    f2 = rungs["F2"]["model"]["diffusion"]
    assert f2["cross_attention_cond_ids"] == mini["model"]["diffusion"]["cross_attention_cond_ids"]
    assert f2["global_cond_ids"] == ["input_rolloff", "target_rolloff"] and f2["config"]["global_cond_dim"] == 256
    assert uses_rolloff(rungs["F2"]) and "rolloff_conditioner" not in f2


def test_pretransform_scale_must_be_positive():
    cfg = load_config("tiny")
    cfg["model"]["pretransform"]["scale"] = 0
    problems = check_config(cfg)
    assert any(p.startswith("model.pretransform.scale") for p in problems), problems


def test_malformed_optimizer_block_is_listed_not_raised():
    cfg = load_config("tiny")
    cfg["training"]["optimizer_configs"]["diffusion"] = {"optimizer": "AdamW", "scheduler": {"config": [1]}}
    problems = check_config(cfg)
    assert problems == [
        "training.optimizer_configs.diffusion.optimizer: expected an object, got 'AdamW'",
        "training.optimizer_configs.diffusion.scheduler.config: expected an object, got [1]",
    ]


def test_optimizer_settings_follow_stable_audio_tools_defaults():
    from saga_sr.config.typed import OptimizerSettings

    bare = load_config("tiny")
    del bare["training"]["optimizer_configs"]
    assert OptimizerSettings.from_config(bare) == OptimizerSettings()  # AdamW with InverseLR
    assert OptimizerSettings().scheduler == "InverseLR"
    only_opt = load_config("tiny")
    del only_opt["training"]["optimizer_configs"]["diffusion"]["scheduler"]
    assert OptimizerSettings.from_config(only_opt).scheduler is None  # an optimizer without a schedule: constant
    tiny = OptimizerSettings.from_config(load_config("tiny"))
    assert dict(tiny.optimizer_kwargs) == {"lr": 3e-4, "betas": (0.9, 0.999), "weight_decay": 1e-3}


def test_training_flags_override_the_config_in_one_place():
    """`saga-sr train`'s flags (None = not given; 0 and False are values) over the config's training block."""
    from saga_sr.config.typed import TRAIN_FLAGS, TrainingSettings

    cfg = load_config("tiny")
    assert TrainingSettings.from_flags(cfg, {}) == TrainingSettings.from_config(cfg)
    given = {
        "learning_rate": 1e-3,
        "batch_size": 2,
        "max_steps": 7,
        "accumulate_grad_batches": 3,
        "gradient_clip_val": 0.0,
        "ema": False,
        "timestep_sampler": "uniform",
        "seed": 5,
        "val_every": 9,
    }
    s = TrainingSettings.from_flags(cfg, given)
    assert (
        s.learning_rate,
        s.batch_size,
        s.max_steps,
        s.accumulate_grad_batches,
        s.gradient_clip_val,
        s.use_ema,
        s.timestep_sampler,
    ) == (1e-3, 2, 7, 3, 0.0, False, "uniform")
    assert set(TRAIN_FLAGS) == set(given) - {"seed", "val_every"}
    unset = TrainingSettings.from_flags(cfg, dict.fromkeys(given))
    assert (unset.learning_rate, unset.use_ema, unset.timestep_sampler) == (3e-4, True, "logit_normal")


def test_the_optimizer_argument_table_matches_torch():
    """`config check` knows the common optimisers' arguments without importing torch; each is one torch takes."""
    import inspect

    import torch

    from saga_sr.config.checks import OPTIMIZER_ARGS, optimizer_args

    for name, args in OPTIMIZER_ARGS.items():
        takes = set(inspect.signature(getattr(torch.optim, name)).parameters) - {"params"}
        assert set(args) <= takes, (name, set(args) - takes)
    assert optimizer_args("Rprop") >= {"etas", "step_sizes"}  # outside the table: read from torch.optim
    assert optimizer_args("Optimizer") is None and optimizer_args("lr_scheduler") is None
