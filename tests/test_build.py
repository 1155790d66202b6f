"""build_model / SagaSRModel on the tiny config: key layout, conditioning assembly, roll-off prepend, meta builds."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from saga_sr.config import derive_rung, load_config
from saga_sr.errors import ConfigError
from saga_sr.models.build import build_model, model_summary

META = [
    {"prompt": "a dog barks in the rain", "input_rolloff": 0.2, "target_rolloff": 0.9},
    {"prompt": "piano", "input_rolloff": 0.4, "target_rolloff": 0.95},
]


@pytest.fixture(scope="module")
def tiny():
    return build_model("tiny", seed=0).eval()


@pytest.fixture(scope="module")
def tiny_f2():
    """The tiny ladder's F2 rung: cross [prompt] + RolloffFourierConditioner, prepend = embed_dim."""
    cfg = derive_rung(load_config("saga_model_config_small"), "F2", scale="tiny")
    return build_model(cfg, seed=0).eval()


def test_key_layout_and_attributes(tiny):
    prefixes = ("model.model.", "conditioner.conditioners.", "pretransform.model.", "rolloff_conditioner.")
    keys = list(tiny.state_dict())
    assert all(k.startswith(prefixes) for k in keys)
    assert any(k.startswith("conditioner.conditioners.input_rolloff.embedder.") for k in keys)
    assert "model.model.transformer.project_in.weight" in keys
    assert tiny.rolloff_conditioner is None
    assert (tiny.latent_channels, tiny.downsampling_ratio, tiny.sample_rate, tiny.audio_channels) == (64, 64, 44100, 1)
    assert tiny.cross_attn_cond_ids == ["prompt", "input_rolloff", "target_rolloff"]
    assert tiny.global_cond_ids == ["input_rolloff", "target_rolloff"]
    assert tiny.config["model"]["diffusion"]["cfg_scales"] == {"audio": 1.4, "text": 1.2}


def test_seeded_build_is_reproducible_and_leaves_global_rng_alone(tiny):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    again = build_model("tiny", seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (k, a), b in zip(tiny.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k
    other = build_model("tiny", seed=1)
    assert not torch.equal(other.dit.transformer.project_in.weight, tiny.dit.transformer.project_in.weight)


def test_encode_decode_roundtrip_is_frozen(tiny):
    audio = torch.randn(2, 1, tiny.sample_size, requires_grad=True)
    z = tiny.encode(audio)
    assert z.shape == (2, 64, 256) and not z.requires_grad
    assert torch.equal(tiny.decode(z), audio.detach())
    tiny.train()
    assert not tiny.pretransform.training and tiny.model.training
    tiny.eval()


def test_conditioning_inputs_shapes_and_order(tiny):
    cond = tiny.conditioning(META, "cpu")
    inputs = tiny.conditioning_inputs(cond)
    max_len = tiny.config["model"]["conditioning"]["configs"][0]["config"]["max_length"]
    assert inputs["cross_attn_cond"].shape == (2, max_len + 2, 64)
    assert inputs["cross_attn_mask"].shape == (2, max_len + 2) and inputs["cross_attn_mask"][:, -2:].all()
    # the number tokens follow the T5 tokens in cross_attention_cond_ids order
    assert torch.equal(inputs["cross_attn_cond"][:, max_len], cond["input_rolloff"][0][:, 0])
    assert torch.equal(inputs["cross_attn_cond"][:, max_len + 1], cond["target_rolloff"][0][:, 0])
    assert torch.equal(inputs["global_embed"][:, :64], cond["input_rolloff"][0][:, 0])
    assert inputs["global_embed"].shape == (2, 128)
    assert inputs["prepend_cond"] is None and inputs["prepend_cond_mask"] is None


def test_forward_gives_velocity_and_depends_on_conditioning(tiny):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 256, generator=gen)
    lr = torch.randn(2, 64, 256, generator=gen)
    t = torch.tensor([0.3, 0.8])
    with torch.no_grad():
        for p in tiny.dit.parameters():  # undo the zero-init so every input matters
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
        inputs = tiny.conditioning_inputs(tiny.conditioning(META, "cpu"))
        v = tiny(x, t, input_concat_cond=lr, **inputs)
        assert v.shape == x.shape and torch.isfinite(v).all()
        assert not torch.allclose(v, tiny(x, t, input_concat_cond=torch.zeros_like(lr), **inputs))
        swapped = tiny.conditioning_inputs(tiny.conditioning(META[::-1], "cpu"))
        assert not torch.allclose(v, tiny(x, t, input_concat_cond=lr, **swapped))


def test_rolloff_token_and_prepend(tiny_f2):
    model = tiny_f2
    cond = model.conditioning([dict(m, seconds_start=0.0, seconds_total=1.5) for m in META], "cpu")
    low, high = torch.tensor([0.2, 0.4]), torch.tensor([0.9, 0.95])
    t = torch.tensor([0.5, 0.1])
    inputs = model.conditioning_inputs(cond, rolloff=(low, high), timestep=t)
    token, global_vec = model.rolloff_conditioner(low, high)
    assert model.cross_attn_cond_ids == ["prompt"]
    assert torch.equal(inputs["cross_attn_cond"][:, -1:], token)  # roll-off token after the prompt tokens
    assert inputs["cross_attn_cond"].shape[1] == cond["prompt"][0].shape[1] + 1
    embed = model.dit.embed_dim
    prepend = model.build_rolloff_prepend(low, high, t)
    assert prepend.shape == (2, 1, embed) and torch.allclose(inputs["prepend_cond"], prepend)
    assert torch.allclose(prepend[:, 0], global_vec + model.dit.timestep_embedding(t))
    assert inputs["prepend_cond_mask"].shape == (2, 1)
    x = torch.randn(2, model.io_channels, 128)
    v = model(x, t, input_concat_cond=torch.randn_like(x), **inputs)
    assert v.shape == x.shape
    with pytest.raises(ValueError, match="timestep"):
        model.conditioning_inputs(cond, rolloff=(low, high))
    assert model.rolloff_from_hz(torch.tensor([22050.0 * 1025 / 1024])).item() == pytest.approx(1.0)


def test_build_rejects_bad_configs_before_building():
    cfg = copy.deepcopy(load_config("tiny"))
    cfg["model"]["diffusion"]["config"]["num_heads"] = 3
    with pytest.raises(ConfigError, match="num_heads"):
        build_model(cfg)


def test_meta_build_of_the_full_model_allocates_nothing():
    model = build_model("saga_model_config", device="meta")
    assert all(p.is_meta for p in model.parameters())
    summary = model_summary(model)
    comps = summary["components"]
    assert comps["dit"]["params"] == 1_061_657_728
    assert sum(c["params"] for c in comps.values()) == summary["total_params"]
    assert comps["dit"]["keys"]["transformer.project_in.weight"] == [1536, 128]


def test_missing_pretrained_t5_says_how_to_provide_it(tmp_path):
    from saga_sr.errors import ModelLoadError

    cfg = copy.deepcopy(load_config("tiny"))
    cfg["model"]["conditioning"]["configs"][0]["config"] = {"t5_model_name": "t5-base", "max_length": 8}
    model = build_model(cfg, text_encoder_path=tmp_path / "no_t5_here", seed=0)  # builds: T5 loads lazily
    with pytest.raises(ModelLoadError, match="no_t5_here"):
        model.conditioning(META, "cpu")


def test_config_switches_reach_the_modules():
    cfg = copy.deepcopy(load_config("tiny"))
    cfg["model"]["diffusion"]["use_cross_attn_mask"] = True
    cfg["model"]["diffusion"]["config"]["depth"] = 1
    model = build_model(cfg, device="meta")
    assert model.dit.transformer.use_cross_attn_mask is True and len(model.dit.transformer.layers) == 1
    assert model.diffusion_objective == "rectified_flow"
    assert not build_model("tiny", device="meta").dit.transformer.use_cross_attn_mask


def test_patched_scale_divides_the_latent():
    from saga_sr.models.pretransforms import PatchedPretransform

    audio = torch.randn(1, 1, 128)
    plain, scaled = PatchedPretransform(1, 64), PatchedPretransform(1, 64, scale=0.125)
    assert torch.equal(scaled.encode(audio), plain.encode(audio) * 8)  # scaling by a power of 2 is exact
    assert torch.equal(scaled.decode(scaled.encode(audio)), audio)


def _diffusion(c: dict) -> dict:
    return c["model"]["diffusion"]


def _optimizer(c: dict) -> dict:
    return c["training"]["optimizer_configs"]["diffusion"]


# (base config, mutation, the field `config check` names): each is refused by a module or the optimiser
UNBUILDABLE = [
    ("tiny", lambda c: _diffusion(c).update(diffusion_objective="v"), "diffusion_objective"),
    ("tiny", lambda c: _diffusion(c).pop("diffusion_objective"), "diffusion_objective"),
    ("tiny", lambda c: _diffusion(c)["config"].update(global_cond_type="adaLN"), "global_cond_type"),
    ("tiny", lambda c: _diffusion(c)["config"].update(attn_kwargs={"qk_norm": "l2"}), "attn_kwargs.qk_norm"),
    ("tiny", lambda c: _diffusion(c)["config"].update(ff_kwargs={"glu": False}), "ff_kwargs.glu"),
    ("tiny", lambda c: _diffusion(c)["config"].update(ff_kwargs={"dropout": 0.1}), "ff_kwargs.dropout"),
    ("tiny", lambda c: c["model"]["conditioning"]["configs"][0]["config"].update(enable_grad=True), "enable_grad"),
    (
        "tiny",
        lambda c: (
            _diffusion(c).update(rolloff_conditioner={"type": "fourier", "dropout_rate": 1.0}),
            _diffusion(c)["config"].update(prepend_cond_dim=128),
        ),
        "dropout_rate",
    ),
    (
        "tiny",
        lambda c: (
            c["model"].update(
                pretransform={
                    "type": "spectrogram",
                    "scale": -1.0,
                    "config": {"channels": 1, "n_fft": 256, "hop": 128},
                },
                io_channels=258,
            )
            or _diffusion(c)["config"].update(io_channels=258, input_concat_dim=258)
        ),
        "model.pretransform.scale",
    ),
    ("saga_model_config_small", lambda c: c["model"]["pretransform"].update(model_half=True), "model_half"),
    ("saga_model_config_small", lambda c: c["model"]["pretransform"].update(chunked=True), "chunked"),
    (
        "saga_model_config_small",
        lambda c: c["model"]["pretransform"]["config"]["encoder"]["config"].update(antialias_activation=True),
        "encoder.config.antialias_activation",
    ),
    (
        "saga_model_config_small",
        lambda c: c["model"]["pretransform"]["config"]["decoder"]["config"].update(use_nearest_upsample=True),
        "decoder.config.use_nearest_upsample",
    ),
    ("tiny", lambda c: _optimizer(c)["optimizer"].update(type="Adamm"), "optimizer.type"),
    ("tiny", lambda c: _optimizer(c)["optimizer"]["config"].update(momentum=0.9), "optimizer.config"),
    ("tiny", lambda c: _optimizer(c)["scheduler"].update(type="CosineLR"), "scheduler.type"),
    ("tiny", lambda c: _optimizer(c)["scheduler"]["config"].update(gamma=0.5), "scheduler.config"),
]


def _build_unchecked(cfg: dict) -> None:
    """Every builder step and the optimiser on the raw config, without the checks that load_config runs."""
    from saga_sr.config.checks import objective_problem
    from saga_sr.config.typed import OptimizerSettings
    from saga_sr.models import build
    from saga_sr.training.optim import build_optimizer

    if objective_problem(cfg):
        raise ConfigError([objective_problem(cfg)])  # build_model's own refusal, before any module
    with torch.device("meta"):
        build.build_dit(cfg), build.build_conditioner(cfg), build.build_pretransform(cfg)
        build.build_rolloff_conditioner(cfg)
    build_optimizer([torch.nn.Parameter(torch.zeros(1))], OptimizerSettings.from_config(cfg))


@pytest.mark.parametrize("base, mutate, field", UNBUILDABLE, ids=[f for _, _, f in UNBUILDABLE])
def test_config_check_refuses_what_building_refuses(base, mutate, field, tmp_path, capsys):
    """Each case is refused by a module, the optimiser or build_model when built unchecked; `config check`
    (check_runnable) names it first, with exit 2, and build_model refuses it through the same rule."""
    from saga_sr.cli import main
    from saga_sr.config import check_runnable, read_config

    cfg = read_config(base)
    _build_unchecked(copy.deepcopy(cfg))  # the unmutated config builds
    mutate(cfg)
    with pytest.raises((ConfigError, NotImplementedError, ValueError, TypeError, AttributeError, KeyError)):
        _build_unchecked(copy.deepcopy(cfg))
    problems = check_runnable(cfg)
    assert len(problems) == 1 and field in problems[0], problems
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    assert main(["config", "check", str(tmp_path / "c.json")]) == 2
    assert field in capsys.readouterr().err
    with pytest.raises(ConfigError, match=field.split(".")[-1]):
        build_model(cfg, device="cpu" if "objective" in field else "meta")
