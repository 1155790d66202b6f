"""The shape of a model config: which keys exist, their types and allowed values.

Stable-audio-tools' JSON format plus our documented additions (see docs/DESIGN.md). Checking the
structure first lets the dimension rules (checks.py) assume well-typed values, and catches typos:
an unknown key is an error with a "did you mean" hint. Keys starting with "_" are comments.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

# scalar type names -> predicate (bool is not an int here: `true` for a width is a mistake). Python's json
# module reads NaN, Infinity and -Infinity: a "number" is finite, and no other value may hold a non-finite one.
_SCALARS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "any": lambda v: True,
}
_TYPE_WORDS = {
    "int": "an integer",
    "number": "a finite number",
    "bool": "true/false",
    "str": "a string",
    "any": "any value",
}


@dataclass(frozen=True)
class Scalar:
    """A JSON scalar of `kind`; numbers may be bounded: minimum <= v <= maximum, v > above."""

    kind: str
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None


@dataclass(frozen=True)
class Arr:
    item: Spec
    max_len: int | None = None


@dataclass(frozen=True)
class Obj:
    """A JSON object; `fields` maps key -> (spec, required). `open` objects accept any extra key."""

    fields: dict = field(default_factory=dict)
    open: bool = False


@dataclass(frozen=True)
class Tagged:
    """An object whose schema depends on the value of its `tag` key (e.g. conditioner "type")."""

    tag: str
    variants: dict


Spec = Scalar | Arr | Obj | Tagged


def req(spec: Spec) -> tuple:
    return (spec, True)


def opt(spec: Spec) -> tuple:
    return (spec, False)


INT, NUM, BOOL, STR, ANY = (Scalar(k) for k in ("int", "number", "bool", "str", "any"))
POS_INT = Scalar("int", minimum=1)
NONNEG_INT = Scalar("int", minimum=0)
# sizes no machine can build are refused here, before a model is built (a 10**10-block DiT never finishes)
MAX_INT = 2**53  # integers beyond JSON's exact range, for fields without a tighter bound
DIM = Scalar("int", minimum=1, maximum=65536)  # widths and channel counts
NONNEG_DIM = Scalar("int", minimum=0, maximum=65536)
COUNT = Scalar("int", minimum=1, maximum=1024)  # layers, heads, patch sizes, filter multipliers
MAX_NESTING = 32  # levels of objects and lists (the shipped configs use 7)
SAMPLE_RATE = Scalar("int", minimum=1, maximum=768000)
PROB = Scalar("number", minimum=0, maximum=1)
POS_NUM = Scalar("number", above=0)  # learning rates, scales
NONNEG_NUM = Scalar("number", minimum=0)
ANY_OBJ = Obj(open=True)
IDS = Arr(STR)

# the T5 encoders a config may name, with their output width (the one list; models.conditioners reads it)
T5_DIMS = {
    "t5-small": 512,
    "t5-base": 768,
    "t5-large": 1024,
    "t5-3b": 1024,
    "t5-11b": 1024,
    "google/flan-t5-small": 512,
    "google/flan-t5-base": 768,
    "google/flan-t5-large": 1024,
    "google/flan-t5-xl": 2048,
    "google/flan-t5-xxl": 4096,
    "google/t5-v1_1-xl": 2048,
    "google/t5-v1_1-xxl": 4096,
}
T5_NAMES = tuple(T5_DIMS)

OOBLECK_ENCODER = Obj(
    {
        "in_channels": req(DIM),
        "channels": req(DIM),
        "latent_dim": req(DIM),
        "c_mults": req(Arr(COUNT, 16)),
        "strides": req(Arr(COUNT, 16)),
        "use_snake": opt(BOOL),
        "antialias_activation": opt(BOOL),
    }
)
OOBLECK_DECODER = Obj(
    {
        "out_channels": req(DIM),
        "channels": req(DIM),
        "latent_dim": req(DIM),
        "c_mults": req(Arr(COUNT, 16)),
        "strides": req(Arr(COUNT, 16)),
        "use_snake": opt(BOOL),
        "antialias_activation": opt(BOOL),
        "use_nearest_upsample": opt(BOOL),
        "final_tanh": opt(BOOL),
    }
)

AUTOENCODER_PRETRANSFORM = Obj(
    {
        "type": req(Scalar("str", ("autoencoder",))),
        "iterate_batch": opt(BOOL),
        "chunked": opt(BOOL),
        "model_half": opt(BOOL),
        "enable_grad": opt(BOOL),
        "scale": opt(POS_NUM),
        "config": req(
            Obj(
                {
                    "encoder": req(
                        Tagged("type", {"oobleck": Obj({"type": req(STR), "config": req(OOBLECK_ENCODER)})})
                    ),
                    "decoder": req(
                        Tagged("type", {"oobleck": Obj({"type": req(STR), "config": req(OOBLECK_DECODER)})})
                    ),
                    "bottleneck": req(Tagged("type", {"vae": Obj({"type": req(STR)})})),
                    "latent_dim": req(DIM),
                    "downsampling_ratio": req(DIM),
                    "io_channels": req(DIM),
                    "sample_rate": opt(SAMPLE_RATE),
                }
            )
        ),
    }
)
PATCHED_PRETRANSFORM = Obj(
    {
        "type": req(Scalar("str", ("patched",))),
        "scale": opt(POS_NUM),  # latents are divided by it
        "config": req(Obj({"channels": req(DIM), "patch_size": req(COUNT)})),
    }
)
SPECTROGRAM_PRETRANSFORM = Obj(
    {
        "type": req(Scalar("str", ("spectrogram",))),
        "scale": opt(NUM),
        "config": req(Obj({"channels": req(DIM), "n_fft": req(DIM), "hop": req(DIM), "power": opt(NUM)})),
    }
)

T5_CONDITIONER = Obj(
    {
        "id": req(STR),
        "type": req(STR),
        "config": req(
            Obj(
                {
                    "t5_model_name": opt(STR),
                    "max_length": opt(DIM),
                    "enable_grad": opt(BOOL),
                    "project_out": opt(BOOL),
                    # ours: build a randomly initialised T5 encoder from these T5Config kwargs (offline, ByT5 tokenizer)
                    "t5_config": opt(
                        Obj(
                            {
                                "d_model": req(DIM),
                                "d_ff": opt(Scalar("int", minimum=1, maximum=2**20)),
                                "d_kv": opt(DIM),
                                "num_layers": opt(COUNT),
                                "num_heads": opt(COUNT),
                                "vocab_size": opt(Scalar("int", minimum=1, maximum=2**22)),
                            },
                            open=True,
                        )
                    ),
                }
            )
        ),
    }
)
NUMBER_CONDITIONER = Obj(
    {
        "id": req(STR),
        "type": req(STR),
        "config": opt(Obj({"min_val": opt(NUM), "max_val": opt(NUM)})),
    }
)

DIT_CONFIG = Obj(
    {
        "io_channels": req(DIM),
        "patch_size": opt(COUNT),
        "embed_dim": req(DIM),
        "depth": req(COUNT),
        "num_heads": req(COUNT),
        "cond_token_dim": opt(NONNEG_DIM),
        "project_cond_tokens": opt(BOOL),
        "global_cond_dim": opt(NONNEG_DIM),
        "project_global_cond": opt(BOOL),
        "input_concat_dim": opt(NONNEG_DIM),
        "prepend_cond_dim": opt(NONNEG_DIM),
        "transformer_type": opt(Scalar("str", ("continuous_transformer",))),
        "global_cond_type": opt(Scalar("str", ("prepend", "adaLN"))),
        "timestep_cond_type": opt(Scalar("str", ("global",))),
        # ContinuousTransformer / TransformerBlock pass-through kwargs
        "zero_init_branch_outputs": opt(BOOL),
        "rotary_pos_emb": opt(BOOL),
        "attn_kwargs": opt(ANY_OBJ),
        "ff_kwargs": opt(ANY_OBJ),
        "use_checkpointing": opt(BOOL),  # recompute block activations in backward (memory for big models)
    }
)

DIFFUSION = Obj(
    {
        "type": req(Scalar("str", ("dit",))),
        "diffusion_objective": opt(Scalar("str", ("v", "rectified_flow", "rf_denoiser"))),
        "cross_attention_cond_ids": opt(IDS),
        "global_cond_ids": opt(IDS),
        "config": req(DIT_CONFIG),
        # ours
        "rolloff_conditioner": opt(Tagged("type", {"fourier": Obj({"type": req(STR), "dropout_rate": opt(PROB)})})),
        "cfg_scales": opt(Obj({"audio": opt(NONNEG_NUM), "text": opt(NONNEG_NUM)})),
        "default_steps": opt(POS_INT),
        "use_cross_attn_mask": opt(BOOL),
        "lr_gain": opt(Obj({"smooth_frames": opt(POS_INT), "floor": opt(PROB)})),
        "lr_prefill": opt(Scalar("str", ("dsp",))),
        "target_band_limit": opt(BOOL),
        "envelope_follow": opt(PROB),
        "lr_bridge": opt(NONNEG_NUM),
    }
)

TRAINING = Obj(
    {
        "learning_rate": opt(POS_NUM),
        "batch_size": opt(POS_INT),
        "accumulate_grad_batches": opt(POS_INT),
        "max_steps": opt(POS_INT),
        "use_ema": opt(BOOL),
        "ema_beta": opt(PROB),
        "gradient_clip_val": opt(NONNEG_NUM),
        "optimizer_configs": opt(ANY_OBJ),
        "demo": opt(ANY_OBJ),
        "pre_encoded": opt(BOOL),
        "mask_padding": opt(BOOL),
        # ours
        "cfg_dropout_prob": opt(PROB),
        "lr_dropout_prob": opt(PROB),
        "timestep_sampler": opt(Scalar("str", ("uniform", "logit_normal"))),
        "target_lowpass_prob": opt(PROB),
        "spectral_loss": opt(Obj({"weight": req(NONNEG_NUM), "high_band_weight": opt(NONNEG_NUM)})),
    }
)

CONFIG = Obj(
    {
        "model_type": req(Scalar("str", ("diffusion_cond",))),
        "sample_rate": req(SAMPLE_RATE),
        "sample_size": req(Scalar("int", minimum=1, maximum=2**27)),
        "audio_channels": req(Scalar("int", minimum=1, maximum=64)),
        "model": req(
            Obj(
                {
                    "pretransform": req(
                        Tagged(
                            "type",
                            {
                                "autoencoder": AUTOENCODER_PRETRANSFORM,
                                "patched": PATCHED_PRETRANSFORM,
                                "spectrogram": SPECTROGRAM_PRETRANSFORM,
                            },
                        )
                    ),
                    "conditioning": req(
                        Obj(
                            {
                                "configs": req(
                                    Arr(Tagged("type", {"t5": T5_CONDITIONER, "number": NUMBER_CONDITIONER}))
                                ),
                                "cond_dim": req(DIM),
                                "default_keys": opt(ANY_OBJ),
                            }
                        )
                    ),
                    "diffusion": req(DIFFUSION),
                    "io_channels": req(DIM),
                }
            )
        ),
        "training": opt(TRAINING),
    }
)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _hint(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _non_finite(value: Any, path: str) -> list[str]:
    """Every NaN / infinity inside a free-form value (open objects, `any` fields)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path}: {value} is not a finite number"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, _join(path, str(k)))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{path}[{i}]")]
    return []


def nesting(value: Any) -> tuple[int, str]:
    """(levels of objects and lists, the path where they go deepest), counted without recursion (any depth is
    safe to measure)."""
    deepest, where, stack = 0, "", [(value, 1, "")]
    while stack:
        node, level, path = stack.pop()
        if isinstance(node, (dict, list)):
            if level > deepest:
                deepest, where = level, path
            items = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend(
                (child, level + 1, _join(path, str(k)) if isinstance(node, dict) else f"{path}[{k}]")
                for k, child in items
                if isinstance(child, (dict, list))
            )
    return deepest, where


def validate(value: Any, spec: Spec, path: str) -> list[str]:
    """Every structural problem of `value` against `spec`, each as 'json.path: message'."""
    if isinstance(spec, Tagged):
        if not isinstance(value, dict):
            return [f"{path or '(top level)'}: expected an object, got {_describe(value)}"]
        tag = value.get(spec.tag)
        if tag not in spec.variants:
            allowed = ", ".join(repr(v) for v in spec.variants)
            return [f"{_join(path, spec.tag)}: unknown value {_describe(tag)}; allowed: {allowed}"]
        return validate(value, spec.variants[tag], path)
    if isinstance(spec, Obj):
        if not isinstance(value, dict):
            return [f"{path or '(top level)'}: expected an object, got {_describe(value)}"]
        problems = []
        for key, (sub, required) in spec.fields.items():
            if key in value:
                problems += validate(value[key], sub, _join(path, key))
            elif required:
                problems.append(f"{_join(path, key)}: required key is missing")
        for key in value:
            if key in spec.fields:
                continue
            if spec.open or key.startswith("_"):
                problems += _non_finite(value[key], _join(path, key))
            else:
                problems.append(f"{_join(path, key)}: unknown key{_hint(key, spec.fields)}")
        return problems
    if isinstance(spec, Arr):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {_describe(value)}"]
        if spec.max_len is not None and len(value) > spec.max_len:
            return [f"{path}: {len(value)} entries, above the maximum {spec.max_len}"]
        return [p for i, item in enumerate(value) for p in validate(item, spec.item, f"{path}[{i}]")]
    if spec.kind == "any":
        return _non_finite(value, path)
    if not _SCALARS[spec.kind](value):
        return [f"{path}: expected {_TYPE_WORDS[spec.kind]}, got {_describe(value)}"]
    if spec.choices and value not in spec.choices:
        return [f"{path}: {_describe(value)} is not one of {', '.join(repr(c) for c in spec.choices)}"]
    if spec.minimum is not None and value < spec.minimum:
        return [f"{path}: {value} is below the minimum {spec.minimum}"]
    if spec.maximum is not None and value > spec.maximum:
        return [f"{path}: {_describe(value)} is above the maximum {spec.maximum}"]
    if spec.kind == "int" and abs(value) > MAX_INT:
        return [f"{path}: {_describe(value)} is beyond the largest integer a config may hold ({MAX_INT})"]
    if spec.above is not None and not value > spec.above:
        return [f"{path}: must be > {spec.above}, got {value}"]
    return []
