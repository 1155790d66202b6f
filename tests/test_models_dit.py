"""DiffusionTransformer parity with stable-audio-tools' recorded fixtures, and its reuse helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from saga_sr.models.dit import DiffusionTransformer, DiTWrapper

FIX = Path(__file__).parent / "fixtures"


def _load(name: str):
    meta = json.loads((FIX / f"{name}.json").read_text())
    model = DiffusionTransformer(**meta["kwargs"]).eval()
    model.load_state_dict(load_file(FIX / f"{name}.state_dict.safetensors"), strict=True)
    return model, load_file(FIX / f"{name}.io.safetensors")


def _cond(io, **override):
    kw = dict(
        cross_attn_cond=io["cross_attn_cond"],
        cross_attn_cond_mask=io["cross_attn_cond_mask"],
        input_concat_cond=io["input_concat_cond"],
        global_embed=io["global_embed"],
        prepend_cond=io["prepend_cond"],
        prepend_cond_mask=io["prepend_cond_mask"],
    )
    kw.update(override)
    return kw


def _cfg(model, io, scale, phi=0.0, negative=False):
    """Batched [cond; uncond] guidance done outside the DiT, the arithmetic SAT does inside."""
    uncond_cross = torch.zeros_like(io["cross_attn_cond"])
    if negative:
        uncond_cross = io["negative_cross_attn_cond"] * io["negative_cross_attn_mask"][..., None].float()
    cat = lambda a, b: torch.cat((a, b), dim=0)  # noqa: E731
    out = model(
        cat(io["x"], io["x"]),
        cat(io["t"], io["t"]),
        cross_attn_cond=cat(io["cross_attn_cond"], uncond_cross),
        input_concat_cond=cat(io["input_concat_cond"], io["input_concat_cond"]),
        global_embed=cat(io["global_embed"], io["global_embed"]),
        prepend_cond=cat(io["prepend_cond"], torch.zeros_like(io["prepend_cond"])),
    )
    cond, uncond = out.chunk(2)
    cfg = uncond + (cond - uncond) * scale
    if phi:
        cfg = phi * cfg * (cond.std(dim=1, keepdim=True) / cfg.std(dim=1, keepdim=True)) + (1 - phi) * cfg
    return cfg


@pytest.mark.parametrize("name", ["dit_tiny_rand", "dit_tiny_init"])
@torch.no_grad()
def test_plain_calls_and_hidden_states(name):
    model, io = _load(name)
    out, info = model(io["x"], io["t"], **_cond(io), return_info=True)
    assert (out - io["out"]).abs().max() <= 1e-5
    for n, hidden in enumerate(info["hidden_states"]):
        assert hidden.shape == io[f"hidden_after_layer{n}"].shape
        assert (hidden - io[f"hidden_after_layer{n}"]).abs().max() <= 1e-5
    masks_off = model(
        io["x"],
        io["t"],
        **_cond(io, cross_attn_cond_mask=None, prepend_cond_mask=torch.zeros_like(io["prepend_cond_mask"])),
    )
    assert (masks_off - io["out_without_masks"]).abs().max() <= 1e-5
    null = model(
        io["x"],
        io["t"],
        **_cond(
            io,
            cross_attn_cond=torch.zeros_like(io["cross_attn_cond"]),
            prepend_cond=torch.zeros_like(io["prepend_cond"]),
        ),
    )
    assert (null - io["out_null_cond"]).abs().max() <= 1e-5
    only_t = model(io["x"], io["t"], input_concat_cond=io["input_concat_cond"])
    assert (only_t - io["out_timestep_only"]).abs().max() <= 1e-5


@pytest.mark.parametrize("name", ["dit_tiny_rand", "dit_tiny_init"])
@torch.no_grad()
def test_cfg_calls_reproduced_outside_the_dit(name):
    model, io = _load(name)
    assert (_cfg(model, io, 4.0) - io["out_cfg4"]).abs().max() <= 1e-4
    assert (_cfg(model, io, 4.0, phi=0.7) - io["out_cfg4_phi0p7"]).abs().max() <= 1e-4
    assert (_cfg(model, io, 4.0, negative=True) - io["out_cfg4_negative"]).abs().max() <= 1e-4
    if name == "dit_tiny_rand":  # guard: the three recorded variants really differ
        assert (io["out_cfg4"] - io["out_cfg4_negative"]).abs().max() > 1e-2


@torch.no_grad()
def test_pieces_match_recorded_intermediates():
    model, io = _load("dit_tiny_rand")
    assert torch.allclose(model.timestep_features(io["t"][:, None]), io["timestep_features"], atol=1e-6)
    assert torch.allclose(model.timestep_embedding(io["t"]), io["timestep_embed"], atol=1e-6)
    proj = model.project_conditioning(io["cross_attn_cond"], io["global_embed"], io["prepend_cond"])
    assert torch.allclose(proj["cross_attn_cond"], io["cond_tokens_projected"], atol=1e-6)
    assert torch.allclose(proj["global_embed"], io["global_embed_projected"], atol=1e-6)
    assert torch.allclose(proj["prepend_cond"], io["prepend_projected"], atol=1e-6)
    out = model(io["x"], io["t"], **proj, input_concat_cond=io["input_concat_cond"], conditioning_projected=True)
    assert (out - io["out"]).abs().max() <= 1e-5


def test_seeded_init_equals_stable_audio_tools_init():
    meta = json.loads((FIX / "dit_tiny_init.json").read_text())
    reference = load_file(FIX / "dit_tiny_init.state_dict.safetensors")
    torch.manual_seed(0)
    model = DiffusionTransformer(**meta["kwargs"])
    for key, value in model.state_dict().items():  # float init from another CPU's kernels: 1e-6
        torch.testing.assert_close(value, reference[key], rtol=1e-6, atol=1e-6, msg=key)


@torch.no_grad()
def test_cross_attn_mask_option_changes_function_and_stays_finite():
    model, io = _load("dit_tiny_rand")
    masked = DiffusionTransformer(
        **json.loads((FIX / "dit_tiny_rand.json").read_text())["kwargs"], use_cross_attn_mask=True
    ).eval()
    masked.load_state_dict(model.state_dict())
    mask = io["cross_attn_cond_mask"]
    assert not mask.all()
    out = masked(io["x"], io["t"], **_cond(io))
    assert (out - io["out"]).abs().max() > 1e-4
    # honouring the mask == dropping the masked tokens
    keep = mask[0]
    dropped = masked(
        io["x"], io["t"], **_cond(io, cross_attn_cond=io["cross_attn_cond"][:, keep], cross_attn_cond_mask=None)
    )
    assert (out - dropped).abs().max() <= 1e-5
    none_valid = masked(io["x"], io["t"], **_cond(io, cross_attn_cond_mask=torch.zeros_like(mask)))
    assert torch.isfinite(none_valid).all()


def test_checkpointing_gives_same_gradients():
    model, io = _load("dit_tiny_rand")
    kwargs = json.loads((FIX / "dit_tiny_rand.json").read_text())["kwargs"]
    ckpt = DiffusionTransformer(**kwargs, use_checkpointing=True)
    ckpt.load_state_dict(model.state_dict())
    grads = []
    for m in (model.train(), ckpt.train()):
        m.zero_grad()
        m(io["x"], io["t"], **_cond(io)).square().mean().backward()
        grads.append(m.transformer.layers[0].self_attn.to_qkv.weight.grad.clone())
    assert grads[0].abs().max() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_wrapper_keys_aliases_and_rejections():
    model, io = _load("dit_tiny_rand")
    wrapper = DiTWrapper(model).eval()
    assert all(k.startswith("model.") for k in wrapper.state_dict())
    with torch.no_grad():
        out = wrapper(
            io["x"],
            io["t"],
            cross_attn_cond=io["cross_attn_cond"],
            cross_attn_mask=io["cross_attn_cond_mask"],
            input_concat_cond=io["input_concat_cond"],
            global_cond=io["global_embed"],
            prepend_cond=io["prepend_cond"],
            prepend_cond_mask=io["prepend_cond_mask"],
        )
    assert (out - io["out"]).abs().max() <= 1e-5
    with pytest.raises(NotImplementedError, match="adaLN"):
        DiffusionTransformer(io_channels=4, embed_dim=64, depth=1, num_heads=2, global_cond_type="adaLN")
    with pytest.raises(NotImplementedError, match="num_memory_tokens"):
        DiffusionTransformer(io_channels=4, embed_dim=64, depth=1, num_heads=2, num_memory_tokens=4)
    with pytest.raises(ValueError, match="global_cond_dim=0"):
        DiffusionTransformer(io_channels=4, embed_dim=64, depth=1, num_heads=2)(
            torch.zeros(1, 4, 3), torch.zeros(1), global_embed=torch.zeros(1, 8)
        )
    with pytest.raises(TypeError, match="bogus"):
        DiffusionTransformer(io_channels=4, embed_dim=64, depth=1, num_heads=2, bogus=1)
    with pytest.raises(ValueError, match="16 query heads"):
        with torch.device("meta"):
            DiffusionTransformer(
                io_channels=4, embed_dim=1024, depth=1, num_heads=16, cond_token_dim=768, project_cond_tokens=False
            )
    with pytest.raises(ValueError, match="dim_heads 16"):
        DiffusionTransformer(io_channels=4, embed_dim=32, depth=1, num_heads=2)


def test_patch_size_and_input_concat_interpolation():
    torch.manual_seed(0)
    model = DiffusionTransformer(
        io_channels=4, patch_size=2, embed_dim=64, depth=1, num_heads=2, input_concat_dim=4
    ).eval()
    x = torch.randn(2, 4, 8)
    with torch.no_grad():
        out = model(x, torch.rand(2), input_concat_cond=torch.randn(2, 4, 4))
    assert out.shape == x.shape


@pytest.mark.parametrize("manifest", ["dit_small", "dit_full", "sao_1_0_dit"])
def test_manifest_keys_and_shapes(manifest):
    spec = json.loads((FIX / "manifests" / f"{manifest}.json").read_text())
    with torch.device("meta"):
        model = DiffusionTransformer(**spec["meta"]["kwargs"])
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert got == spec["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == spec["total_params"]
    buffers = {k for k, _ in model.named_buffers()}
    assert buffers == set(spec["buffer_keys"])


def test_default_attention_passes_no_mask_to_sdpa_and_runs_under_bf16_autocast(monkeypatch):
    model, io = _load("dit_tiny_rand")
    import saga_sr.models.transformer as transformer

    seen = []
    real = transformer.F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        seen.append(attn_mask)
        return real(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(transformer.F, "scaled_dot_product_attention", spy)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(io["x"], io["t"], **_cond(io))
    assert len(seen) == 4 and all(m is None for m in seen)  # mask-free calls keep flash kernels eligible on GPU
    scale = io["out"].abs().max()
    assert (out.float() - io["out"]).abs().max() < 0.1 * scale  # bf16 matmuls, same function


def test_full_sao_checkpoint_layout_from_parts():
    """DiTWrapper + MultiConditioner + AutoencoderPretransform under SAO's prefixes == the full-model manifest."""
    from saga_sr.models.autoencoder import AudioAutoencoder, OobleckDecoder, OobleckEncoder, VAEBottleneck
    from saga_sr.models.conditioners import MultiConditioner, NumberConditioner, T5Conditioner
    from saga_sr.models.pretransforms import AutoencoderPretransform

    full = json.loads((FIX / "manifests" / "sao_1_0_full_model.json").read_text())["state_dict"]
    dit = json.loads((FIX / "manifests" / "sao_1_0_dit.json").read_text())["meta"]["kwargs"]
    vae = json.loads((FIX / "manifests" / "sao_1_0_autoencoder.json").read_text())["meta"]["config"]["config"]
    with torch.device("meta"):
        parts = torch.nn.ModuleDict(
            {
                "model": DiTWrapper(**dit),
                "conditioner": MultiConditioner(
                    {
                        "prompt": T5Conditioner(768),
                        "seconds_start": NumberConditioner(768, 0, 512),
                        "seconds_total": NumberConditioner(768, 0, 512),
                    }
                ),
                "pretransform": AutoencoderPretransform(
                    AudioAutoencoder(
                        OobleckEncoder(**vae["encoder"]["config"]),
                        OobleckDecoder(**vae["decoder"]["config"]),
                        latent_dim=64,
                        downsampling_ratio=2048,
                        sample_rate=44100,
                        io_channels=2,
                        bottleneck=VAEBottleneck(),
                    )
                ),
            }
        )
    assert {k: list(v.shape) for k, v in parts.state_dict().items()} == full
