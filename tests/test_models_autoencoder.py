"""Oobleck VAE parity with stable-audio-tools' fixtures, SAO's key layout, and the two pretransforms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from saga_sr.errors import AudioError
from saga_sr.models.autoencoder import AudioAutoencoder, OobleckDecoder, OobleckEncoder, VAEBottleneck
from saga_sr.models.pretransforms import AutoencoderPretransform, PatchedPretransform

FIX = Path(__file__).parent / "fixtures"


def _autoencoder(cfg: dict, sample_rate: int = 44100) -> AudioAutoencoder:
    """SAT's autoencoder config dict -> AudioAutoencoder (what the builder does)."""
    assert cfg["encoder"]["type"] == cfg["decoder"]["type"] == "oobleck" and cfg["bottleneck"]["type"] == "vae"
    return AudioAutoencoder(
        OobleckEncoder(**cfg["encoder"]["config"]),
        OobleckDecoder(**cfg["decoder"]["config"]),
        latent_dim=cfg["latent_dim"],
        downsampling_ratio=cfg["downsampling_ratio"],
        sample_rate=sample_rate,
        io_channels=cfg["io_channels"],
        bottleneck=VAEBottleneck(),
    )


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("name", ["oobleck_tiny_rand", "oobleck_tiny_init"])
@torch.no_grad()
def test_oobleck_matches_fixture(name):
    spec = json.loads((FIX / f"{name}.json").read_text())
    io = load_file(FIX / f"{name}.io.safetensors")
    reference = load_file(FIX / f"{name}.state_dict.safetensors")
    torch.manual_seed(0)
    ae = _autoencoder(spec["autoencoder_config"]).eval()
    assert {k: list(v.shape) for k, v in ae.state_dict().items()} == spec["state_dict_keys"]
    if name.endswith("init"):  # same seeded init as SAT (weight_g = ||weight_v||)
        for k, v in ae.state_dict().items():  # float init (norms, RNG transforms): 1e-6 across CPUs' kernels
            torch.testing.assert_close(v, reference[k], rtol=1e-6, atol=1e-6, msg=k)
    ae.load_state_dict(reference, strict=True)
    z, info = ae.encode(io["waveform"], return_info=True, noise=io["vae_eps"])
    assert _rel(info["pre_bottleneck_latents"], io["encoder_out_pre_bottleneck"]) < 1e-4
    assert _rel(info["mean"], io["vae_mean"]) < 1e-4 and _rel(info["std"], io["vae_stdev"]) < 1e-4
    assert _rel(z, io["vae_latents_sampled"]) < 1e-4 and _rel(info["kl"], io["vae_kl"][0]) < 1e-4
    h = io["waveform"]
    for n, layer in enumerate(ae.encoder.layers):
        h = layer(h)
        assert _rel(h, io[f"encoder_layer{n}_out"]) < 1e-4, n
    # decoder from the recorded latents (chaining our own encoder output would add its error on top)
    assert _rel(ae.decode(io["vae_mean"]), io["decoder_out_from_mean"]) < 1e-4
    assert _rel(ae.decode(io["vae_latents_sampled"]), io["decoder_out_from_sampled"]) < 1e-4
    assert torch.equal(ae.encode(io["waveform"], sample=False), info["mean"])  # same input, kernels, process


def test_bottleneck_sampling_switch_and_generator():
    x = torch.randn(2, 8, 5)
    vae = VAEBottleneck()
    a = vae.encode(x, generator=torch.Generator().manual_seed(1))
    b = vae.encode(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x[:, :4])
    assert torch.equal(VAEBottleneck(sample=False).encode(x), x[:, :4])


def test_sao_autoencoder_keys_and_shapes_on_meta():
    spec = json.loads((FIX / "manifests" / "sao_1_0_autoencoder.json").read_text())
    with torch.device("meta"):
        ae = _autoencoder(spec["meta"]["config"]["config"])
        pre = AutoencoderPretransform(ae, iterate_batch=True)
    assert {k: list(v.shape) for k, v in ae.state_dict().items()} == spec["state_dict"]
    assert sum(p.numel() for p in ae.parameters()) == spec["total_params"]
    assert all(k.startswith("model.") for k in pre.state_dict())
    assert (pre.io_channels, pre.encoded_channels, pre.downsampling_ratio) == (2, 64, 2048)


def test_autoencoder_pretransform_frozen_scaled_and_deterministic():
    spec = json.loads((FIX / "oobleck_tiny_rand.json").read_text())
    ae = _autoencoder(spec["autoencoder_config"])
    ae.load_state_dict(load_file(FIX / "oobleck_tiny_rand.state_dict.safetensors"))
    pre = AutoencoderPretransform(ae, scale=2.0, iterate_batch=True)
    pre.train()
    assert not pre.training and not any(p.requires_grad for p in pre.parameters())
    x = torch.randn(3, 2, 64) * 0.3
    with torch.no_grad():
        mean = pre.encode(x, sample=False)
        assert mean.shape == (3, 8, 8)
        assert torch.allclose(mean * 2.0, ae.encode(x, sample=False), rtol=1e-4, atol=1e-4)
        assert not torch.equal(pre.encode(x), mean)  # default samples, like SAT training
        assert torch.allclose(pre.decode(mean), ae.decode(mean * 2.0), rtol=1e-4, atol=1e-3)
    with pytest.raises(AudioError, match="multiple"):
        pre.encode(torch.randn(1, 2, 60))


def test_patched_pretransform_is_lossless_and_parameter_free():
    pre = PatchedPretransform(channels=2, patch_size=4)
    assert (pre.io_channels, pre.encoded_channels, pre.downsampling_ratio) == (2, 8, 4)
    assert len(pre.state_dict()) == 0
    x = torch.randn(3, 2, 16)
    z = pre.encode(x)
    assert z.shape == (3, 8, 4) and torch.equal(pre.decode(z), x)
    assert torch.equal(z[0, :4, 1], x[0, 0, 4:8])  # channel 0's second frame of 4 samples
    with pytest.raises(AudioError, match="multiple"):
        pre.encode(torch.randn(1, 2, 10))
