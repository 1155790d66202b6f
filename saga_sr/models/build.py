"""Build a SagaSRModel from a config: the only place that reads model configs.

`build_model` validates first (saga_sr.config.check_config), so a bad config fails with every problem
listed before any tensor exists. `device="meta"` builds shapes only (inspecting the 1.06 B model in
seconds). `model_summary` gives per-component parameter counts and key shapes, keys relative to the
component's prefix in SAO checkpoints (so they compare directly with stable-audio-tools manifests).
"""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from saga_sr.config import load_config, objective_problem
from saga_sr.config.typed import ModelSettings
from saga_sr.errors import ConfigError
from saga_sr.models import autoencoder, pretransforms
from saga_sr.models.conditioners import MultiConditioner, NumberConditioner, T5Conditioner
from saga_sr.models.dit import DiTWrapper
from saga_sr.models.rolloff import RolloffFourierConditioner
from saga_sr.models.wrapper import SagaSRModel

# component -> state_dict prefix in a SagaSRModel (= in a SAO checkpoint)
COMPONENT_PREFIXES = {
    "dit": "model.model.",
    "pretransform": "pretransform.model.",
    "conditioner": "conditioner.conditioners.",
    "rolloff_conditioner": "rolloff_conditioner.",
}


def build_pretransform(cfg: dict) -> nn.Module:
    """AutoencoderPretransform (Oobleck VAE), PatchedPretransform or SpectrogramPretransform from
    `model.pretransform`."""
    pt = cfg["model"]["pretransform"]
    inner = pt["config"]
    if pt["type"] == "patched":
        return pretransforms.PatchedPretransform(
            channels=inner["channels"], patch_size=inner["patch_size"], scale=pt.get("scale", 1.0)
        )
    if pt["type"] == "spectrogram":
        return pretransforms.SpectrogramPretransform(
            channels=inner["channels"],
            n_fft=inner["n_fft"],
            hop=inner["hop"],
            power=inner.get("power", 0.3),
            scale=pt.get("scale", 1.0),
        )

    encoder = autoencoder.OobleckEncoder(**inner["encoder"]["config"])
    decoder = autoencoder.OobleckDecoder(**inner["decoder"]["config"])
    bottleneck = autoencoder.VAEBottleneck()
    model = autoencoder.AudioAutoencoder(
        encoder,
        decoder,
        latent_dim=inner["latent_dim"],
        downsampling_ratio=inner["downsampling_ratio"],
        sample_rate=inner.get("sample_rate", cfg["sample_rate"]),
        io_channels=inner["io_channels"],
        bottleneck=bottleneck,
    )
    options = {k: pt[k] for k in ("scale", "model_half", "iterate_batch", "chunked") if k in pt}
    return pretransforms.AutoencoderPretransform(model, **options)


def build_conditioner(cfg: dict, text_encoder_path: str | os.PathLike | None = None) -> nn.Module:
    """MultiConditioner with every conditioner emitting cond_dim-wide features (stable-audio-tools' rule)."""
    conditioning = cfg["model"]["conditioning"]
    cond_dim = conditioning["cond_dim"]
    conditioners: dict[str, nn.Module] = {}
    for entry in conditioning["configs"]:
        conf = dict(entry.get("config", {}))
        if entry["type"] == "t5":
            conditioners[entry["id"]] = T5Conditioner(output_dim=cond_dim, text_encoder_path=text_encoder_path, **conf)
        else:
            conditioners[entry["id"]] = NumberConditioner(output_dim=cond_dim, **conf)
    return MultiConditioner(conditioners, default_keys=conditioning.get("default_keys"))


def build_dit(cfg: dict) -> nn.Module:
    """DiTWrapper around a DiffusionTransformer with the config's kwargs (keys `model.*`)."""
    diffusion = cfg["model"]["diffusion"]
    kwargs = copy.deepcopy(diffusion["config"])
    kwargs["diffusion_objective"] = ModelSettings.from_config(cfg).diffusion_objective
    if diffusion.get("use_cross_attn_mask"):
        kwargs["use_cross_attn_mask"] = True
    return DiTWrapper(**kwargs)


def build_rolloff_conditioner(cfg: dict) -> nn.Module | None:
    """The RolloffFourierConditioner sized to the DiT (token cond_token_dim, global embed_dim), or None."""
    spec = cfg["model"]["diffusion"].get("rolloff_conditioner")
    if spec is None:
        return None

    dit = cfg["model"]["diffusion"]["config"]
    return RolloffFourierConditioner(
        embedding_dim_cross=dit["cond_token_dim"],
        embedding_dim_global=dit["embed_dim"],
        dropout_rate=spec.get("dropout_rate", 0.1),
    )


@contextlib.contextmanager
def _init_context(device: str | torch.device | None, seed: int | None) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        if device is not None:
            stack.enter_context(torch.device(device))
        if seed is not None:
            stack.enter_context(torch.random.fork_rng(devices=[]))
            torch.manual_seed(seed)
        yield


def build_model(
    cfg: dict | str | Path,
    *,
    device: str | torch.device | None = None,
    text_encoder_path: str | os.PathLike | None = None,
    seed: int | None = None,
    any_objective: bool = False,
) -> SagaSRModel:
    """A SagaSRModel from a config dict, file or shipped name; validated first (raises ConfigError).

    `device="meta"` allocates nothing; `seed` makes the random init reproducible without touching the
    global RNG. T5 weights (pretrained configs) load lazily on first use, from `text_encoder_path` or the
    local Hugging Face cache. A model to run must be rectified flow (ConfigError otherwise); a "meta" build, or
    `any_objective=True` (a stable-audio-tools model as a weight source or parity reference, never trained or
    sampled here), takes any objective."""
    cfg = load_config(cfg)
    if (problem := objective_problem(cfg)) and str(device) != "meta" and not any_objective:
        raise ConfigError([problem])
    with _init_context(device, seed):
        model = build_dit(cfg)
        conditioner = build_conditioner(cfg, text_encoder_path)
        pretransform = build_pretransform(cfg)
        rolloff = build_rolloff_conditioner(cfg)
    return SagaSRModel(
        model,
        conditioner,
        pretransform,
        config=cfg,
        rolloff_conditioner=rolloff,
        settings=ModelSettings.from_config(cfg),
    )


def model_summary(model: nn.Module) -> dict[str, Any]:
    """{"components": {name: {"params": N, "prefix": p, "keys": {key: [shape]}}}, "total_params": N}.

    Keys (buffers included) are relative to the component's prefix; params counts parameters only."""
    param_names = {name for name, _ in model.named_parameters()}
    state = model.state_dict(keep_vars=True)
    components: dict[str, dict[str, Any]] = {}
    for name, prefix in COMPONENT_PREFIXES.items():
        keys, params = {}, 0
        for key, tensor in state.items():
            if key.startswith(prefix):
                keys[key[len(prefix) :]] = list(tensor.shape)
                if key in param_names:
                    params += tensor.numel()
        if keys or name in ("dit", "pretransform", "conditioner"):
            components[name] = {"params": params, "prefix": prefix, "keys": keys}
    return {"components": components, "total_params": sum(p.numel() for p in model.parameters())}


__all__ = [
    "COMPONENT_PREFIXES",
    "build_conditioner",
    "build_dit",
    "build_model",
    "build_pretransform",
    "build_rolloff_conditioner",
    "model_summary",
]
