"""Starting SAGA-SR from a (tiny, SAO-shaped) Stable Audio Open checkpoint written by the test."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import save_file

from saga_sr.errors import ModelLoadError
from saga_sr.models.build import build_model
from saga_sr.models.sao import WIDENED_KEYS, build_from_sao, read_checkpoint

VAE = {
    "type": "autoencoder",
    "iterate_batch": True,
    "config": {
        "encoder": {
            "type": "oobleck",
            "config": {
                "in_channels": 2,
                "channels": 4,
                "c_mults": [1, 2],
                "strides": [2, 4],
                "latent_dim": 16,
                "use_snake": True,
            },
        },
        "decoder": {
            "type": "oobleck",
            "config": {
                "out_channels": 2,
                "channels": 4,
                "c_mults": [1, 2],
                "strides": [2, 4],
                "latent_dim": 8,
                "use_snake": True,
                "final_tanh": False,
            },
        },
        "bottleneck": {"type": "vae"},
        "latent_dim": 8,
        "downsampling_ratio": 8,
        "io_channels": 2,
    },
}
NUM = {"min_val": 0, "max_val": 512}
SAO_CFG = {
    "model_type": "diffusion_cond",
    "sample_size": 256,
    "sample_rate": 44100,
    "audio_channels": 2,
    "model": {
        "pretransform": VAE,
        "conditioning": {
            "cond_dim": 32,
            "configs": [
                {"id": "prompt", "type": "t5", "config": {"t5_model_name": "t5-base", "max_length": 8}},
                {"id": "seconds_start", "type": "number", "config": NUM},
                {"id": "seconds_total", "type": "number", "config": NUM},
            ],
        },
        "diffusion": {
            "type": "dit",
            "cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
            "global_cond_ids": ["seconds_start", "seconds_total"],
            "config": {
                "io_channels": 8,
                "embed_dim": 64,
                "depth": 2,
                "num_heads": 2,
                "cond_token_dim": 32,
                "global_cond_dim": 64,
                "project_cond_tokens": False,
            },
        },
        "io_channels": 8,
    },
}


def saga_config() -> dict:
    """Paper-style SAGA-SR on the same shapes: LR concat, roll-off numbers instead of seconds_total."""
    cfg = copy.deepcopy(SAO_CFG)
    cfg["model"]["conditioning"]["configs"][2] = {"id": "input_rolloff", "type": "number", "config": {}}
    cfg["model"]["conditioning"]["configs"].append({"id": "target_rolloff", "type": "number", "config": {}})
    diffusion = cfg["model"]["diffusion"]
    diffusion.update(
        diffusion_objective="rectified_flow",
        cross_attention_cond_ids=["prompt", "input_rolloff"],
        global_cond_ids=["input_rolloff", "target_rolloff"],
        rolloff_conditioner={"type": "fourier"},
    )
    diffusion["config"].update(input_concat_dim=8, prepend_cond_dim=64)
    return cfg


@pytest.fixture(scope="module")
def sao_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sao")
    sao = build_model(SAO_CFG, seed=0, any_objective=True)  # SAO's own "v" model, as a weight source
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in sao.parameters():  # every weight matters (no zero-init branches)
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    save_file({k: v.contiguous() for k, v in sao.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "model_config.json").write_text(json.dumps(SAO_CFG))
    return folder, sao.eval()


@pytest.fixture(scope="module")
def loaded(sao_dir):
    folder, _ = sao_dir
    model, report = build_from_sao(saga_config(), folder / "model.safetensors")
    return model.eval(), report


def test_widened_dit_reproduces_sao_for_any_lr_latent(sao_dir, loaded):
    _, sao = sao_dir
    model, report = loaded
    assert set(report.widened) == set(WIDENED_KEYS)
    gen = torch.Generator().manual_seed(2)
    x, cross = torch.randn(3, 8, 32, generator=gen), torch.randn(3, 10, 32, generator=gen)
    glob, t = torch.randn(3, 64, generator=gen), torch.tensor([0.1, 0.5, 0.9])
    with torch.no_grad():
        want = sao(x, t, cross_attn_cond=cross, global_embed=glob)
        for scale in (0.0, 1.0, 10.0):
            lr = scale * torch.randn(3, 8, 32, generator=gen)
            got = model(x, t, input_concat_cond=lr, cross_attn_cond=cross, global_embed=glob)
            assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
        # the SAO function is not trivial: it depends on x
        assert not torch.allclose(want, sao(x + 1, t, cross_attn_cond=cross, global_embed=glob), atol=1e-3)


def test_vae_and_matching_conditioners_load_exactly(sao_dir, loaded):
    _, sao = sao_dir
    model, report = loaded
    sao_state, state = sao.state_dict(), model.state_dict()
    for key in sao_state:
        if key.startswith(("pretransform.", "conditioner.conditioners.seconds_start.")):
            assert torch.equal(state[key], sao_state[key]), key
            assert key in report.loaded
    audio = torch.randn(1, 2, 256)
    assert model.encode(audio).shape == (1, 8, 32)


def test_report_lists_everything_not_loaded_with_a_reason(loaded):
    model, report = loaded
    own = set(model.state_dict())
    assert set(report.loaded) | set(report.widened) | set(report.not_loaded) == own
    assert any(k.startswith("rolloff_conditioner.") and "roll-off" in r for k, r in report.not_loaded.items())
    assert any(k.startswith("conditioner.conditioners.input_rolloff.") for k in report.not_loaded)
    assert "model.model.to_prepend_embed.0.weight" in report.not_loaded
    assert any(k.startswith("conditioner.conditioners.seconds_total.") for k in report.unused)
    text = report.text()
    assert "widened model.model.transformer.project_in.weight: [64, 8] -> [64, 16]" in text
    assert any("objective" in n for n in report.notes)


def test_lightning_ckpt_and_bad_paths(sao_dir, tmp_path):
    folder, sao = sao_dir
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {f"diffusion.{k}": v for k, v in sao.state_dict().items()}, "epoch": 3}, ckpt)
    state = read_checkpoint(ckpt)
    assert state.keys() == sao.state_dict().keys()
    with pytest.raises(ModelLoadError, match="not found"):
        read_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="junk"):
        read_checkpoint(junk)
