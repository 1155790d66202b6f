"""The capacity ladder as named rungs derived from a base config.

A0/A1/B1 come from the small-model plan (widen/deepen the DiT step by step), F0/F1/F2 from the full-model
plan (LR only, + text, + roll-off). A rung fixes the DiT and conditioning widths and which conditions are
used; everything else (pretransform, conditioners, training block) comes from the base. `scale="tiny"`
shrinks every rung by the same factors (widths / 8, depths / 4, head size fixed at 32, half the segment) and
swaps in the patched pretransform and an offline tiny T5, so the whole ladder trains on CPU in minutes
while keeping the rungs' relative sizes.

`scale="mini"` maps the ladder onto the shipped mini representation (configs/mini.json: spectrogram
pretransform, offline tiny T5, lr_gain / lr_prefill / envelope_follow and training block all kept). mini.json's
DiT is A0's counterpart (256 wide x 3 deep, heads of 64, conditions 64 wide, against the seeds' 512 x 8, 512),
so every rung is scaled by mini / A0: widths x 1/2, depths x 3/8 (rounded, >= 1), head size 64 (heads = width
/ 64), condition width x 1/8 rounded to a multiple of the head size, ties up (cross-attention keys need it):
A0 256x3 (cond 64), A1 256x6, B1 384x6 (cond 128, not 96), F0-F2 768x9 (cond 128). Roll-off follows the seeds:
only F2 reads it, through mini's own input_rolloff / target_rolloff number conditioners (global and
cross-attention, as in mini.json); every other rung drops them, so A0 is mini.json without roll-off. Every
rung also drops mini.json's `lr_bridge`: it is saga-sr-mini's short fine-tune phase (`saga-sr recipe mini`,
phase b), and a bridged flow trained from random weights gets worse as it trains (the model card), so rungs
train from noise, as the ladder in docs/ladder_report.md did.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from saga_sr.errors import ConfigError

# T5Config kwargs of the offline text encoder used by tiny.json and the tiny ladder (ByT5 tokenizer, 384 ids)
TINY_T5_CONFIG = {"vocab_size": 384, "d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 2, "num_heads": 2}
# 64-sample frames (divided by 0.125, a power of two: typical audio gets about unit variance and the round trip
# stays exact): narrow enough that even the A0 rung's 64-wide residual stream
# is not a severe bottleneck for the LR frames it must pass through (tiny.json uses the same pretransform)
TINY_PRETRANSFORM = {"type": "patched", "scale": 0.125, "config": {"channels": 1, "patch_size": 64}}


@dataclass(frozen=True)
class Rung:
    description: str
    embed_dim: int
    depth: int
    num_heads: int
    cond_dim: int
    cross_attention_cond_ids: tuple[str, ...]
    rolloff: bool = False


RUNGS: dict[str, Rung] = {
    "A0": Rung("small baseline (seeds' saga_model_config_small.json)", 512, 8, 8, 512, ("prompt",)),
    "A1": Rung("small, deeper: depth 8 -> 16", 512, 16, 8, 512, ("prompt",)),
    "B1": Rung("deeper and wider: 768 / 16 layers / 12 heads, conditions 768", 768, 16, 12, 768, ("prompt",)),
    "F0": Rung("full model, LR latent only (no cross-attention)", 1536, 24, 24, 768, ()),
    "F1": Rung("full model + text cross-attention", 1536, 24, 24, 768, ("prompt",)),
    "F2": Rung(
        "full model + text + roll-off conditioning (RolloffFourierConditioner)",
        1536,
        24,
        24,
        768,
        ("prompt",),
        rolloff=True,
    ),
}
SCALES = ("full", "tiny", "mini")
_TINY_WIDTH, _TINY_DEPTH, _TINY_HEAD, _TINY_SEGMENT = 8, 4, 32, 4
# mini.json's DiT over the seeds' A0 (configs/mini.json vs saga_model_config_small.json)
_MINI_WIDTH, _MINI_DEPTH, _MINI_HEAD, _MINI_COND = (256, 512), (3, 8), 64, (64, 512)
ROLLOFF_NUMBER_IDS = ("input_rolloff", "target_rolloff")


def _scaled(rung: Rung, scale: str) -> tuple[int, int, int, int]:
    """(embed_dim, depth, num_heads, cond_dim) of a rung at a scale."""
    if scale == "full":
        return rung.embed_dim, rung.depth, rung.num_heads, rung.cond_dim
    if scale == "mini":
        embed = rung.embed_dim * _MINI_WIDTH[0] // _MINI_WIDTH[1]
        depth = max(1, round(rung.depth * _MINI_DEPTH[0] / _MINI_DEPTH[1]))
        cond = rung.cond_dim * _MINI_COND[0] / _MINI_COND[1]
        cond = max(1, math.floor(cond / _MINI_HEAD + 0.5)) * _MINI_HEAD  # nearest multiple of the head, ties up
        return embed, depth, embed // _MINI_HEAD, cond
    embed = rung.embed_dim // _TINY_WIDTH
    return embed, max(1, rung.depth // _TINY_DEPTH), embed // _TINY_HEAD, rung.cond_dim // _TINY_WIDTH


def _tiny_base(cfg: dict) -> None:
    """Swap the heavy parts for CPU ones: patched mono pretransform, offline T5, a quarter of the segment."""
    cfg["audio_channels"] = 1
    cfg["model"]["pretransform"] = copy.deepcopy(TINY_PRETRANSFORM)
    patch = TINY_PRETRANSFORM["config"]["patch_size"]
    cfg["sample_size"] = max(patch, cfg["sample_size"] // _TINY_SEGMENT // patch * patch)
    latent = TINY_PRETRANSFORM["config"]["channels"] * patch
    cfg["model"]["io_channels"] = latent
    dit = cfg["model"]["diffusion"]["config"]
    dit["io_channels"] = latent
    if dit.get("input_concat_dim"):
        dit["input_concat_dim"] = latent
    for cond in cfg["model"]["conditioning"]["configs"]:
        if cond.get("type") == "t5":
            conf = cond.setdefault("config", {})
            conf.pop("t5_model_name", None)
            conf["t5_config"] = dict(TINY_T5_CONFIG)
            conf["max_length"] = min(conf.get("max_length", 128), 64)


def with_rolloff_conditioner(cfg: dict, *, dropout_rate: float | None = None) -> dict:
    """A copy of `cfg` with the RolloffFourierConditioner (`--compute_rolloff` on a config without
    roll-off ids): adds model.diffusion.rolloff_conditioner and sizes prepend_cond_dim to embed_dim."""
    cfg = copy.deepcopy(cfg)
    diffusion = cfg["model"]["diffusion"]
    spec = {"type": "fourier"}
    if dropout_rate is not None:
        spec["dropout_rate"] = dropout_rate
    diffusion["rolloff_conditioner"] = diffusion.get("rolloff_conditioner") or spec
    diffusion["config"]["prepend_cond_dim"] = diffusion["config"]["embed_dim"]
    return cfg


def drop_lr_bridge(cfg: dict) -> dict:
    """`cfg` (in place) with its flow starting from noise: `model.diffusion.lr_bridge` is a fine-tune phase
    (`saga-sr recipe mini`'s phase b), so from-scratch training (the recipe's phase a, the ladder's rungs) drops it."""
    cfg["model"]["diffusion"].pop("lr_bridge", None)
    return cfg


def derive_rung(base: dict, rung: str, *, scale: str = "full") -> dict:
    """A new config: `base` with the DiT / conditioning widths and condition ids of ladder rung `rung`."""
    if rung not in RUNGS:
        raise ConfigError([f"rung '{rung}' is unknown; known rungs: {', '.join(RUNGS)}"])
    if scale not in SCALES:
        raise ConfigError([f"scale '{scale}' is unknown; known scales: {', '.join(SCALES)}"])
    spec = RUNGS[rung]
    cfg = copy.deepcopy(base)
    try:
        diffusion = cfg["model"]["diffusion"]
        dit = diffusion["config"]
        conditioning = cfg["model"]["conditioning"]
    except (KeyError, TypeError) as exc:
        raise ConfigError([f"model.diffusion.config / model.conditioning: the base config lacks {exc}"]) from exc
    if scale == "tiny":
        _tiny_base(cfg)
    embed, depth, heads, cond = _scaled(spec, scale)
    n_global = len(diffusion.get("global_cond_ids", []))
    conditioning["cond_dim"] = cond
    dit.update(
        embed_dim=embed,
        depth=depth,
        num_heads=heads,
        cond_token_dim=cond,
        global_cond_dim=cond * n_global,
        prepend_cond_dim=embed,
    )
    diffusion.pop("rolloff_conditioner", None)
    if scale == "mini":
        return _named(_mini_conditions(cfg, base, spec), rung, scale, spec)
    diffusion["cross_attention_cond_ids"] = list(spec.cross_attention_cond_ids)
    if spec.rolloff:
        cfg = with_rolloff_conditioner(cfg)
    return _named(cfg, rung, scale, spec)


def _named(cfg: dict, rung: str, scale: str, spec: Rung) -> dict:
    cfg["_rung"] = f"{rung} ({scale}): {spec.description}"
    return cfg


def _mini_conditions(cfg: dict, base: dict, spec: Rung) -> dict:
    """Condition ids at mini scale: the rung's cross-attention ids; roll-off (F2 only) through the base's own
    roll-off number conditioners (the Fourier one when it has none), which the other rungs drop."""
    drop_lr_bridge(cfg)  # a fine-tune phase, not a from-scratch setting (module docstring)
    diffusion, dit = cfg["model"]["diffusion"], cfg["model"]["diffusion"]["config"]
    conditioning = cfg["model"]["conditioning"]
    rolloff_ids = [c.get("id") for c in conditioning["configs"] if c.get("id") in ROLLOFF_NUMBER_IDS]
    base_cross = base["model"]["diffusion"].get("cross_attention_cond_ids", [])
    globals_ = [g for g in diffusion.get("global_cond_ids", []) if g not in ROLLOFF_NUMBER_IDS]
    cross = list(spec.cross_attention_cond_ids)
    if spec.rolloff and rolloff_ids:
        cross += [c for c in base_cross if c in rolloff_ids]
        globals_ = list(diffusion.get("global_cond_ids", []))
    else:
        conditioning["configs"] = [c for c in conditioning["configs"] if c.get("id") not in ROLLOFF_NUMBER_IDS]
    diffusion["cross_attention_cond_ids"] = cross
    diffusion["global_cond_ids"] = globals_
    dit["global_cond_dim"] = conditioning["cond_dim"] * len(globals_)
    if not base["model"]["diffusion"]["config"].get("prepend_cond_dim"):
        dit.pop("prepend_cond_dim", None)  # as in mini.json: no prepend width without a prepend source
    if spec.rolloff and not rolloff_ids:
        return with_rolloff_conditioner(cfg)
    return cfg
