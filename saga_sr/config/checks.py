"""Dimension rules between config fields, checked before any tensor exists.

Each rule mirrors a shape relation that stable-audio-tools' modules need at run time (a violated one
crashes deep inside attention, or silently drops a condition), or an option of stable-audio-tools' format
that saga-sr does not implement (refused here rather than by a module's constructor or the optimiser).
`check_config` returns every violated rule as "json.path: message with the numbers"; an empty list means the
config builds. `check_runnable` adds the objective: a model to train or sample must be rectified flow, while
a stable-audio-tools model of another objective still builds as a weight source or for its shapes.
"""

from __future__ import annotations

import math
from typing import Any

from saga_sr.config.schema import CONFIG, MAX_NESTING, T5_NAMES, nesting, validate
from saga_sr.config.typed import OBJECTIVE, OptimizerSettings

_DIT = "model.diffusion.config"
MAX_PARAMS = 5e10  # about 200 GB of fp32 weights: more than any one machine this tool runs on holds


def _get(cfg: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted path, or `default` when a step is missing or not an object."""
    node = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def pretransform_facts(cfg: dict) -> dict:
    """Latent channels, downsampling ratio and audio channels the pretransform works with (None if unknown)."""
    pt = _get(cfg, "model.pretransform", {}) or {}
    inner = pt.get("config") if isinstance(pt, dict) else None
    inner = inner if isinstance(inner, dict) else {}
    if pt.get("type") == "patched":
        channels, patch = _int(inner.get("channels")), _int(inner.get("patch_size"))
        latent = channels * patch if channels and patch else None
        return {"latent_channels": latent, "downsampling_ratio": patch, "io_channels": channels}
    if pt.get("type") == "spectrogram":
        channels, n_fft, hop = _int(inner.get("channels")), _int(inner.get("n_fft")), _int(inner.get("hop"))
        latent = channels * 2 * (n_fft // 2 + 1) if channels and n_fft else None
        return {"latent_channels": latent, "downsampling_ratio": hop, "io_channels": channels}
    if pt.get("type") == "autoencoder":
        return {
            "latent_channels": _int(inner.get("latent_dim")),
            "downsampling_ratio": _int(inner.get("downsampling_ratio")),
            "io_channels": _int(inner.get("io_channels")),
        }
    return {"latent_channels": None, "downsampling_ratio": None, "io_channels": None}


def conditioner_types(cfg: dict) -> dict[str, str]:
    """id -> conditioner type for every well-formed conditioner entry."""
    configs = _get(cfg, "model.conditioning.configs", []) or []
    return {c["id"]: c.get("type") for c in configs if isinstance(c, dict) and isinstance(c.get("id"), str)}


def _check_pretransform(cfg: dict) -> list[str]:
    problems = []
    base = "model.pretransform.config"
    pt_type = _get(cfg, "model.pretransform.type")
    audio_channels = _int(cfg.get("audio_channels"))
    facts = pretransform_facts(cfg)
    if facts["io_channels"] and audio_channels and facts["io_channels"] != audio_channels:
        key = "io_channels" if pt_type == "autoencoder" else "channels"
        problems.append(f"{base}.{key}: {facts['io_channels']} audio channels but audio_channels is {audio_channels}")
    if pt_type == "spectrogram":
        n_fft, hop, power = (_get(cfg, f"{base}.{k}") for k in ("n_fft", "hop", "power"))
        if _int(n_fft) and _int(hop) and (n_fft < 2 * hop or n_fft % 2 or (n_fft - hop) % 2):
            problems.append(f"{base}.n_fft: {n_fft} must be even, >= 2 x hop ({hop}) and n_fft - hop even")
        if isinstance(power, (int, float)) and not 0 < power <= 1:
            problems.append(f"{base}.power: must be in (0, 1], got {power}")
        scale = _get(cfg, "model.pretransform.scale")
        if isinstance(scale, (int, float)) and not scale > 0:
            problems.append(f"model.pretransform.scale: must be > 0, got {scale}")
    if pt_type != "autoencoder":
        return problems
    enc = _get(cfg, f"{base}.encoder.config", {}) or {}
    dec = _get(cfg, f"{base}.decoder.config", {}) or {}
    latent, ratio, io = facts["latent_channels"], facts["downsampling_ratio"], facts["io_channels"]
    strides = enc.get("strides")
    if isinstance(strides, list) and all(_int(s) for s in strides) and ratio and math.prod(strides) != ratio:
        problems.append(
            f"{base}.downsampling_ratio: {ratio} != product of encoder strides {strides} = {math.prod(strides)}"
        )
    dec_strides = dec.get("strides")
    if isinstance(strides, list) and isinstance(dec_strides, list) and strides != dec_strides:
        problems.append(f"{base}.decoder.config.strides: {dec_strides} differ from the encoder's {strides}")
    for side, conf in (("encoder", enc), ("decoder", dec)):
        mults, s = conf.get("c_mults"), conf.get("strides")
        if isinstance(mults, list) and isinstance(s, list) and len(mults) != len(s):
            problems.append(f"{base}.{side}.config.c_mults: {len(mults)} entries but {len(s)} strides")
    bottleneck = _get(cfg, f"{base}.bottleneck.type")
    want_enc = 2 * latent if (latent and bottleneck == "vae") else latent
    if want_enc and _int(enc.get("latent_dim")) and enc["latent_dim"] != want_enc:
        problems.append(
            f"{base}.encoder.config.latent_dim: {enc['latent_dim']} but the {bottleneck} bottleneck "
            f"with latent_dim {latent} needs {want_enc} (mean and scale)"
        )
    if latent and _int(dec.get("latent_dim")) and dec["latent_dim"] != latent:
        problems.append(f"{base}.decoder.config.latent_dim: {dec['latent_dim']} != latent_dim {latent}")
    if io and _int(enc.get("in_channels")) and enc["in_channels"] != io:
        problems.append(f"{base}.encoder.config.in_channels: {enc['in_channels']} != io_channels {io}")
    if io and _int(dec.get("out_channels")) and dec["out_channels"] != io:
        problems.append(f"{base}.decoder.config.out_channels: {dec['out_channels']} != io_channels {io}")
    return problems


def _check_conditioners(cfg: dict) -> list[str]:
    problems = []
    configs = _get(cfg, "model.conditioning.configs", []) or []
    seen: set[str] = set()
    for i, c in enumerate(configs if isinstance(configs, list) else []):
        if not isinstance(c, dict):
            continue
        cid = c.get("id")
        if cid in seen:
            problems.append(f"model.conditioning.configs[{i}].id: '{cid}' is defined twice")
        seen.add(cid)
        conf = c.get("config") if isinstance(c.get("config"), dict) else {}
        if c.get("type") == "number":
            lo, hi = conf.get("min_val", 0), conf.get("max_val", 1)
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and not lo < hi:
                problems.append(f"model.conditioning.configs[{i}].config: min_val {lo} must be below max_val {hi}")
        if c.get("type") == "t5" and "t5_config" not in conf:
            name = conf.get("t5_model_name", "t5-base")
            if name not in T5_NAMES:
                problems.append(
                    f"model.conditioning.configs[{i}].config.t5_model_name: '{name}' is not one of "
                    f"{', '.join(T5_NAMES)} (or give t5_config for a locally built encoder)"
                )
    return problems


def _check_dit(cfg: dict) -> list[str]:
    problems = []
    d = _get(cfg, _DIT, {}) or {}
    embed, heads = _int(d.get("embed_dim")), _int(d.get("num_heads"))
    cond_token_dim = _int(d.get("cond_token_dim", 0))
    global_dim = _int(d.get("global_cond_dim", 0))
    prepend = _int(d.get("prepend_cond_dim", 0))
    concat = _int(d.get("input_concat_dim", 0))
    io = _int(d.get("io_channels"))
    patch = _int(d.get("patch_size", 1)) or 1
    project_tokens = d.get("project_cond_tokens", True)
    cond_dim = _int(_get(cfg, "model.conditioning.cond_dim"))
    types = conditioner_types(cfg)
    cross_ids = _get(cfg, "model.diffusion.cross_attention_cond_ids", []) or []
    global_ids = _get(cfg, "model.diffusion.global_cond_ids", []) or []
    rolloff = _get(cfg, "model.diffusion.rolloff_conditioner")

    head_dim = None
    if embed and heads:
        if embed % heads:
            problems.append(f"{_DIT}.embed_dim: {embed} is not divisible by num_heads {heads}")
        else:
            head_dim = embed // heads
    if head_dim and head_dim < 32 and d.get("rotary_pos_emb", True):
        problems.append(
            f"{_DIT}.num_heads: head size {head_dim} (embed_dim {embed} / num_heads {heads}) is below 32, "
            "the number of channels rotary position embedding rotates per head"
        )
    # cross-attention: keys/values come from the context of width cond_token_dim (or embed_dim if projected)
    if cond_token_dim and head_dim and project_tokens is False:
        if cond_token_dim % head_dim:
            problems.append(
                f"{_DIT}.cond_token_dim: {cond_token_dim} is not a multiple of the head size "
                f"{head_dim} (embed_dim {embed} / num_heads {heads})"
            )
        else:
            kv_heads = cond_token_dim // head_dim
            if heads % kv_heads:
                problems.append(
                    f"{_DIT}.num_heads: {heads} query heads cannot share {kv_heads} key/value heads "
                    f"(cond_token_dim {cond_token_dim} / head size {head_dim}); use num_heads a multiple "
                    f"of {kv_heads}, or a cond_token_dim whose head count divides {heads}"
                )
    uses_cross = bool(cross_ids) or rolloff is not None
    if uses_cross and not cond_token_dim:
        problems.append(
            f"{_DIT}.cond_token_dim: 0 but cross-attention is used "
            f"(cross_attention_cond_ids {cross_ids}{', rolloff_conditioner' if rolloff else ''})"
        )
    if cross_ids and cond_token_dim and cond_dim and cond_token_dim != cond_dim:
        problems.append(
            f"{_DIT}.cond_token_dim: {cond_token_dim} != model.conditioning.cond_dim {cond_dim} "
            f"(every conditioner emits cond_dim-wide tokens)"
        )
    # global condition: the global conditioners' outputs are concatenated
    if isinstance(global_ids, list) and cond_dim is not None and global_dim is not None:
        for gid in global_ids:
            if types.get(gid) == "t5":
                problems.append(
                    f"model.diffusion.global_cond_ids: '{gid}' is a T5 (token sequence) conditioner "
                    "and cannot be a global condition"
                )
        expected = cond_dim * len(global_ids)
        if global_ids and global_dim != expected:
            problems.append(
                f"{_DIT}.global_cond_dim: {global_dim} != {len(global_ids)} global conditioners "
                f"{global_ids} x cond_dim {cond_dim} = {expected}"
            )
        if embed and global_dim and d.get("project_global_cond") is False and global_dim != embed:
            problems.append(
                f"{_DIT}.global_cond_dim: {global_dim} must equal embed_dim {embed} when project_global_cond is false"
            )
    # prepend: the roll-off prepend token is [B, 1, embed_dim] (global roll-off embedding + timestep embedding)
    if rolloff is not None and embed and prepend != embed:
        problems.append(
            f"{_DIT}.prepend_cond_dim: {prepend} but the roll-off prepend token is embed_dim {embed} wide; "
            f"set prepend_cond_dim to {embed}"
        )
    if prepend and embed and prepend > 0 and rolloff is None and prepend != embed:
        problems.append(
            f"{_DIT}.prepend_cond_dim: {prepend} != embed_dim {embed}: the only prepend source "
            "(the roll-off prepend token) is embed_dim wide"
        )
    # channels against the pretransform's latent
    facts = pretransform_facts(cfg)
    latent = facts["latent_channels"]
    model_io = _int(_get(cfg, "model.io_channels"))
    if latent:
        if io and io != latent:
            problems.append(f"{_DIT}.io_channels: {io} != the pretransform's latent channels {latent}")
        if model_io and model_io != latent:
            problems.append(f"model.io_channels: {model_io} != the pretransform's latent channels {latent}")
        if concat and concat != latent:
            problems.append(
                f"{_DIT}.input_concat_dim: {concat} != the pretransform's latent channels {latent} "
                "(the LR latent is concatenated on channels)"
            )
    if _get(cfg, "model.diffusion.lr_bridge") is not None and not concat:
        problems.append(
            "model.diffusion.lr_bridge: the flow starts from the LR latent, but the DiT has no LR input "
            f"({_DIT}.input_concat_dim is 0)"
        )
    ratio = facts["downsampling_ratio"]
    size = _int(cfg.get("sample_size"))
    if ratio and size and size % (ratio * patch):
        problems.append(
            f"sample_size: {size} is not a multiple of the downsampling ratio {ratio}"
            + (f" x patch_size {patch}" if patch > 1 else "")
            + f"; nearest: {max(1, round(size / (ratio * patch))) * ratio * patch}"
        )
    return problems


def _check_ids(cfg: dict) -> list[str]:
    problems = []
    defined = conditioner_types(cfg)
    for key in ("cross_attention_cond_ids", "global_cond_ids"):
        ids = _get(cfg, f"model.diffusion.{key}", []) or []
        for i, cid in enumerate(ids if isinstance(ids, list) else []):
            if isinstance(cid, str) and cid not in defined:
                known = ", ".join(defined) or "none"
                problems.append(
                    f"model.diffusion.{key}[{i}]: '{cid}' is not a defined conditioner id (defined: {known})"
                )
        if isinstance(ids, list) and len(set(map(str, ids))) != len(ids):
            problems.append(f"model.diffusion.{key}: repeated ids {ids}")
    return problems


def _check_size(cfg: dict) -> list[str]:
    """The DiT's and the autoencoder's parameter counts (lower estimates) against MAX_PARAMS."""
    problems = []
    d = _get(cfg, _DIT, {}) or {}
    embed, depth = _int(d.get("embed_dim")), _int(d.get("depth"))
    if embed and depth and 12 * depth * embed**2 > MAX_PARAMS:
        problems.append(
            f"{_DIT}: about {12 * depth * embed**2:.1e} parameters (12 x depth {depth} x embed_dim "
            f"{embed}^2), above the {MAX_PARAMS:.0e} any one machine can build"
        )
    base = "model.pretransform.config"
    for part in ("encoder", "decoder"):
        c = _get(cfg, f"{base}.{part}.config", {}) or {}
        channels, mults, strides = _int(c.get("channels")), c.get("c_mults"), c.get("strides")
        if not (channels and isinstance(mults, list) and isinstance(strides, list)):
            continue
        widths = [channels * m for m in [1] + mults if _int(m)]
        count = sum(w * w * (21 + 2 * (_int(s) or 1)) for w, s in zip(widths, strides + [1]))
        if count > MAX_PARAMS:
            problems.append(
                f"{base}.{part}.config: about {count:.1e} parameters (channels {channels} x c_mults "
                f"{mults}), above the {MAX_PARAMS:.0e} any one machine can build"
            )
    return problems


# options of stable-audio-tools' format that saga-sr's modules do not implement: path -> (key, value it needs)
_PLAIN_OPTIONS = (
    ("model.pretransform", "model_half", False),
    ("model.pretransform", "chunked", False),
    ("model.pretransform.config.encoder.config", "antialias_activation", False),
    ("model.pretransform.config.decoder.config", "antialias_activation", False),
    ("model.pretransform.config.decoder.config", "use_nearest_upsample", False),
    (_DIT, "global_cond_type", "prepend"),
)
# DiT attention / feed-forward keyword arguments: key -> the values saga-sr implements (None: any value)
_ATTN_KWARGS = {
    "qk_norm": ("none", False, None),
    "differential": (False,),
    "feat_scale": (False,),
    "natten_kernel_size": (None,),
}
_FF_KWARGS = {"mult": None, "no_bias": (False,), "glu": (True,), "use_conv": (False,), "conv_kernel_size": None}
_SCHEDULERS = {"InverseLR": {"inv_gamma", "power", "warmup", "final_lr_factor", "verbose"}}
# keyword arguments of the common torch.optim classes, so `config check` needs no torch import (tests/test_config.py
# holds them against the installed torch); other names are looked up in torch.optim itself
_COMMON = ("lr", "weight_decay", "foreach", "maximize", "differentiable")
OPTIMIZER_ARGS = {
    "Adam": _COMMON + ("betas", "eps", "amsgrad", "capturable", "fused", "decoupled_weight_decay"),
    "AdamW": _COMMON + ("betas", "eps", "amsgrad", "capturable", "fused"),
    "SGD": _COMMON + ("momentum", "dampening", "nesterov", "fused"),
    "RMSprop": _COMMON + ("alpha", "eps", "momentum", "centered", "capturable"),
    "Adagrad": _COMMON + ("lr_decay", "initial_accumulator_value", "eps", "fused"),
    "Adadelta": _COMMON + ("rho", "eps", "capturable"),
    "Adamax": _COMMON + ("betas", "eps", "capturable"),
    "NAdam": _COMMON + ("betas", "eps", "momentum_decay", "decoupled_weight_decay", "capturable"),
    "RAdam": _COMMON + ("betas", "eps", "decoupled_weight_decay", "capturable"),
}
_OPT = "training.optimizer_configs.diffusion"


def _check_unimplemented(cfg: dict) -> list[str]:
    """Options the format allows but saga-sr's modules refuse when built."""
    problems = []
    for path, key, wanted in _PLAIN_OPTIONS:
        value = _get(cfg, f"{path}.{key}", wanted)
        if value != wanted:
            problems.append(f"{path}.{key}: {value!r} is not implemented (saga-sr builds {wanted!r} only, as SAO)")
    for name, allowed in (("attn_kwargs", _ATTN_KWARGS), ("ff_kwargs", _FF_KWARGS)):
        for key, value in (_get(cfg, f"{_DIT}.{name}", {}) or {}).items():
            if key not in allowed:
                problems.append(f"{_DIT}.{name}.{key}: unknown option; known: {', '.join(allowed)}")
            elif allowed[key] is not None and not any(value == ok and type(value) is type(ok) for ok in allowed[key]):
                problems.append(
                    f"{_DIT}.{name}.{key}: {value!r} is not implemented (saga-sr builds "
                    f"{' or '.join(map(repr, allowed[key]))})"
                )
    for i, c in enumerate(_get(cfg, "model.conditioning.configs", []) or []):
        if isinstance(c, dict) and c.get("type") == "t5" and _get(c, "config.enable_grad", False):
            problems.append(f"model.conditioning.configs[{i}].config.enable_grad: fine-tuning T5 is not implemented")
    dropout = _get(cfg, "model.diffusion.rolloff_conditioner.dropout_rate")
    if isinstance(dropout, (int, float)) and dropout >= 1:
        problems.append(
            f"model.diffusion.rolloff_conditioner.dropout_rate: {dropout} must be below 1 (1 drops every roll-off)"
        )
    return problems


def _check_optimizer(cfg: dict) -> list[str]:
    """The optimiser is a torch.optim class given arguments it takes, and the schedule one saga-sr implements."""
    if not all(isinstance(_get(cfg, path, {}) or {}, dict) for path in ("training", "training.optimizer_configs")):
        return []  # the schema reports these
    block = _get(cfg, _OPT, {})
    shapes = [(_OPT, block)] + (
        [
            (f"{_OPT}.{part}{sub}", _get(block, f"{part}{sub}", {}))
            for part in ("optimizer", "scheduler")
            for sub in ("", ".config")
        ]
        if isinstance(block, dict)
        else []
    )
    bad = [
        f"{path}: expected an object, got {value!r}"
        for path, value in shapes
        if value is not None and not isinstance(value, dict)
    ]
    if bad:
        return bad
    settings = OptimizerSettings.from_config(cfg)
    problems = []
    takes = optimizer_args(settings.optimizer)
    if takes is None:
        problems.append(f"{_OPT}.optimizer.type: unknown optimizer '{settings.optimizer}' (a torch.optim class)")
    else:
        if unknown := {k for k, _ in settings.optimizer_kwargs} - takes:
            problems.append(f"{_OPT}.optimizer.config: {settings.optimizer} takes no {sorted(unknown)}")
    if settings.scheduler is not None:
        known = _SCHEDULERS.get(settings.scheduler)
        if known is None:
            problems.append(
                f"{_OPT}.scheduler.type: only {', '.join(map(repr, _SCHEDULERS))} is supported, "
                f"not {settings.scheduler!r}"
            )
        elif unknown := {k for k, _ in settings.scheduler_kwargs} - known:
            problems.append(f"{_OPT}.scheduler.config: unknown keys {sorted(unknown)}")
    return problems


def optimizer_args(name: str) -> set[str] | None:
    """The keyword arguments torch.optim.`name` takes, or None when it is no optimizer class."""
    if name in OPTIMIZER_ARGS:
        return set(OPTIMIZER_ARGS[name])
    import inspect

    import torch  # lazy: only a name outside the table needs it

    cls = getattr(torch.optim, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)) or cls is torch.optim.Optimizer:
        return None
    return set(inspect.signature(cls).parameters) - {"params"}


def objective_problem(cfg: dict) -> str | None:
    """Why this config's model cannot be trained or sampled here (its objective), or None.

    stable-audio-tools' default objective is "v"; saga-sr implements rectified flow only, so any other value
    (or none) is refused instead of silently training rectified flow."""
    objective = _get(cfg, "model.diffusion.diffusion_objective", "v")
    if objective == OBJECTIVE:
        return None
    return (
        f"model.diffusion.diffusion_objective: '{objective}' is not supported; saga-sr trains and samples "
        f"'{OBJECTIVE}' only (a shape-only build, e.g. `config inspect`, still works)"
    )


def check_runnable(cfg: dict) -> list[str]:
    """`check_config` plus what a model to train or sample needs (its objective): what `config check` and a
    build for use refuse."""
    problems = check_config(cfg)
    if isinstance(cfg, dict) and (problem := objective_problem(cfg)):
        problems.append(problem)
    return problems


def check_config(cfg: dict) -> list[str]:
    """Every violated rule of `cfg`, as 'json.path: message'; empty when the config builds."""
    depth, where = nesting(cfg)
    if depth > MAX_NESTING:
        where = where if len(where) <= 60 else where[:57] + "..."
        return [f"{where or '(top level)'}: nested {depth} levels deep, more than the {MAX_NESTING} a config may use"]
    problems = validate(cfg, CONFIG, "")
    if not isinstance(cfg, dict):
        return problems
    for rule in (
        _check_pretransform,
        _check_conditioners,
        _check_ids,
        _check_dit,
        _check_unimplemented,
        _check_optimizer,
    ):
        problems += rule(cfg)
    if not problems:
        problems += _check_size(cfg)
    return problems
