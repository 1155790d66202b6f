"""A validated config read once into frozen, typed settings, with every default in one place.

The JSON format and key names stay stable-audio-tools' (weights and configs move between the two); this
module is the only reader of the `model.diffusion` and `training` blocks: `ModelSettings.from_config(cfg)`
gives what SagaSRModel, data preparation and weight loading need, `TrainingSettings.from_config(cfg)` what the
trainer and the optimiser (`OptimizerSettings`) use; `TrainingSettings.from_flags` is the one place `saga-sr
train`'s flags override it (None means "not given", never 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from saga_sr.errors import ConfigError

__all__ = [
    "OBJECTIVE",
    "DEFAULT_CFG_AUDIO",
    "DEFAULT_CFG_TEXT",
    "DEFAULT_STEPS",
    "DEFAULT_TARGET_ROLLOFF",
    "TRAIN_FLAGS",
    "ModelSettings",
    "OptimizerSettings",
    "Sampling",
    "TrainingSettings",
]

OBJECTIVE = "rectified_flow"  # the only objective saga-sr trains and samples
# sampling defaults for a config that does not set its own (read only through ModelSettings.sampling)
DEFAULT_CFG_AUDIO, DEFAULT_CFG_TEXT = 1.4, 1.2  # the paper's s_a, s_t
DEFAULT_STEPS = 100  # Euler steps
DEFAULT_TARGET_ROLLOFF = 0.9  # normalised (about 19.9 kHz at 44.1 kHz), the authors' training logger's value


@dataclass(frozen=True)
class Sampling:
    """Resolved sampling settings: Euler steps, CFG scales (s_a, s_t), the target roll-off to condition on
    (normalised, or Hz when > 1)."""

    steps: int
    cfg_audio: float
    cfg_text: float
    target_rolloff: float


@dataclass(frozen=True)
class ModelSettings:
    """What SagaSRModel reads from a config (sizes, conditioning ids, guidance scales)."""

    sample_rate: int
    audio_channels: int
    sample_size: int
    io_channels: int
    input_concat_dim: int = 0
    cross_attn_cond_ids: tuple[str, ...] = ()
    global_cond_ids: tuple[str, ...] = ()
    diffusion_objective: str = "v"  # stable-audio-tools' default when the key is absent
    cfg_audio: float | None = None  # the model's own guidance scales (None: not in the config)
    cfg_text: float | None = None
    default_steps: int | None = None  # sampling steps the model was tuned for (None: the caller's default)
    lr_gain_frames: int = 0  # model.diffusion.lr_gain.smooth_frames; 0: the flow runs on the latents as they are
    lr_gain_floor: float = 0.1  # model.diffusion.lr_gain.floor (of the window's RMS)
    lr_prefill: str | None = None  # model.diffusion.lr_prefill: "dsp" = the LR input is DSP-extended before encoding
    target_band_limit: bool = False  # model.diffusion.target_band_limit: upsampling removes content above the target
    pretransform_json: str = "{}"  # model.pretransform as canonical JSON: latent shards record and compare it
    cond_dim: int = 0  # model.conditioning.cond_dim
    rolloff_conditioner: bool = False  # model.diffusion.rolloff_conditioner is set (the Fourier roll-off tokens)
    # the DiT's sizes (model.diffusion.config; 0 where absent, as the DiT defaults them)
    embed_dim: int = 0
    depth: int = 0
    num_heads: int = 0
    cond_token_dim: int = 0
    global_cond_dim: int = 0
    dit_io_channels: int = 0
    envelope_follow: float = 0.0  # model.diffusion.envelope_follow: decoded band follows the LR top octave (0 = off)
    lr_bridge: float | None = None  # model.diffusion.lr_bridge: the flow starts at the LR latent + this x noise

    @classmethod
    def from_config(cls, cfg: dict) -> ModelSettings:
        diffusion = cfg["model"]["diffusion"]
        scales = diffusion.get("cfg_scales") or {}
        return cls(
            sample_rate=int(cfg["sample_rate"]),
            audio_channels=int(cfg["audio_channels"]),
            sample_size=int(cfg["sample_size"]),
            io_channels=int(cfg["model"]["io_channels"]),
            pretransform_json=json.dumps(cfg["model"]["pretransform"], sort_keys=True),
            cond_dim=int(cfg["model"]["conditioning"]["cond_dim"]),
            rolloff_conditioner=diffusion.get("rolloff_conditioner") is not None,
            **{
                k: int(diffusion["config"].get(k, 0))
                for k in ("embed_dim", "depth", "num_heads", "cond_token_dim", "global_cond_dim")
            },
            dit_io_channels=int(diffusion["config"].get("io_channels", 0)),
            input_concat_dim=int(diffusion["config"].get("input_concat_dim", 0)),
            cross_attn_cond_ids=tuple(diffusion.get("cross_attention_cond_ids", [])),
            global_cond_ids=tuple(diffusion.get("global_cond_ids", [])),
            diffusion_objective=str(diffusion.get("diffusion_objective", "v")),
            cfg_audio=_opt_float(scales.get("audio")),
            cfg_text=_opt_float(scales.get("text")),
            default_steps=diffusion.get("default_steps"),
            lr_prefill=diffusion.get("lr_prefill"),
            target_band_limit=bool(diffusion.get("target_band_limit", False)),
            envelope_follow=float(diffusion.get("envelope_follow") or 0.0),
            lr_bridge=_opt_float(diffusion.get("lr_bridge")),
            **_lr_gain(diffusion.get("lr_gain")),
        )

    @property
    def pretransform(self) -> dict:
        """The `model.pretransform` block (a fresh copy)."""
        return json.loads(self.pretransform_json)

    @property
    def cfg_scales(self) -> dict[str, float]:
        """The config's `cfg_scales` block as given ({} when absent)."""
        return {k: v for k, v in (("audio", self.cfg_audio), ("text", self.cfg_text)) if v is not None}

    def sampling(
        self,
        steps: int | None = None,
        cfg_audio: float | None = None,
        cfg_text: float | None = None,
        target_rolloff: float | None = None,
    ) -> Sampling:
        """The one rule for sampling settings (upsample, the app, evaluate, validation): a value given wins
        (None = not given; 0 is a value), then this model's config, then the package default."""
        return Sampling(
            steps=int(_first(steps, self.default_steps, DEFAULT_STEPS)),
            cfg_audio=float(_first(cfg_audio, self.cfg_audio, DEFAULT_CFG_AUDIO)),
            cfg_text=float(_first(cfg_text, self.cfg_text, DEFAULT_CFG_TEXT)),
            target_rolloff=float(_first(target_rolloff, DEFAULT_TARGET_ROLLOFF)),
        )


# stable-audio-tools' defaults, as (type, sorted (key, value) pairs)
DEFAULT_OPTIMIZER = ("AdamW", (("betas", (0.9, 0.999)), ("lr", 1e-4), ("weight_decay", 1e-3)))
DEFAULT_SCHEDULER = ("InverseLR", (("inv_gamma", 1e6), ("power", 0.5), ("warmup", 0.99)))


@dataclass(frozen=True)
class OptimizerSettings:
    """`training.optimizer_configs.diffusion` (stable-audio-tools' format): a torch.optim class name and its
    keyword arguments, and the learning-rate schedule (None: a constant rate). Without the block: AdamW with
    InverseLR; a block naming an optimizer but no scheduler has none. config/checks.py refuses unknown names."""

    optimizer: str = DEFAULT_OPTIMIZER[0]
    optimizer_kwargs: tuple[tuple[str, Any], ...] = DEFAULT_OPTIMIZER[1]
    scheduler: str | None = DEFAULT_SCHEDULER[0]
    scheduler_kwargs: tuple[tuple[str, Any], ...] = DEFAULT_SCHEDULER[1]

    @classmethod
    def from_config(cls, cfg: dict) -> OptimizerSettings:
        block = ((cfg.get("training") or {}).get("optimizer_configs") or {}).get("diffusion") or {}
        opt = block.get("optimizer") or {"type": DEFAULT_OPTIMIZER[0], "config": dict(DEFAULT_OPTIMIZER[1])}
        sched = block.get(
            "scheduler",
            None if "optimizer" in block else {"type": DEFAULT_SCHEDULER[0], "config": dict(DEFAULT_SCHEDULER[1])},
        )
        return cls(
            optimizer=str(opt.get("type", "AdamW")),
            optimizer_kwargs=_items(opt.get("config")),
            scheduler=str(sched.get("type")) if sched else None,
            scheduler_kwargs=_items(sched.get("config")) if sched else (),
        )


# `saga-sr train` flag -> the TrainingSettings field it overrides (the flags keep the seeds' spelling)
TRAIN_FLAGS = {
    "learning_rate": "learning_rate",
    "batch_size": "batch_size",
    "max_steps": "max_steps",
    "accumulate_grad_batches": "accumulate_grad_batches",
    "gradient_clip_val": "gradient_clip_val",
    "ema": "use_ema",
    "timestep_sampler": "timestep_sampler",
}


@dataclass(frozen=True)
class TrainingSettings:
    """The `training` block with its defaults (the only place they are written down)."""

    learning_rate: float | None = None  # None: the optimiser block's lr
    batch_size: int = 4
    accumulate_grad_batches: int = 1
    max_steps: int = 26000
    use_ema: bool = False
    ema_beta: float = 0.9999
    gradient_clip_val: float = 1.0
    cfg_dropout_prob: float = 0.1
    lr_dropout_prob: float = 0.1
    timestep_sampler: str = "uniform"
    target_lowpass_prob: float = 0.0  # training items whose HR is low-passed below its band (target roll-off knob)
    spectral_loss_weight: float = 0.0  # training.spectral_loss.weight: the auxiliary log-spectral term (0 = off)
    spectral_loss_high_band: float = 4.0  # training.spectral_loss.high_band_weight: bins above the LR cutoff
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)

    @classmethod
    def from_config(cls, cfg: dict) -> TrainingSettings:
        block = cfg.get("training") or {}
        known = {f.name for f in fields(cls)} - {"optimizer"}
        spectral = block.get("spectral_loss") or {}
        return cls(
            **{k: v for k, v in block.items() if k in known and v is not None},
            spectral_loss_weight=float(spectral.get("weight", 0.0)),
            spectral_loss_high_band=float(spectral.get("high_band_weight", 4.0)),
            optimizer=OptimizerSettings.from_config(cfg),
        )

    @classmethod
    def from_flags(cls, cfg: dict, flags: Mapping[str, Any]) -> TrainingSettings:
        """The one place `saga-sr train`'s flags (a dict of their values; None = not given) override the
        config's training block; flags other than TRAIN_FLAGS are ignored."""
        return cls.from_config(cfg).override(**{name: flags.get(flag) for flag, name in TRAIN_FLAGS.items()})

    def override(self, **flags: Any) -> TrainingSettings:
        """A copy with the flags that were given (None = not given; 0 and False are values)."""
        unknown = set(flags) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError([f"training: unknown setting(s) {sorted(unknown)}"])
        return replace(self, **{k: v for k, v in flags.items() if v is not None})


def _lr_gain(block: dict | None) -> dict:
    if block is None:
        return {}
    return {"lr_gain_frames": int(block.get("smooth_frames", 9)), "lr_gain_floor": float(block.get("floor", 0.1))}


def _items(block: dict | None) -> tuple[tuple[str, Any], ...]:
    """A config object as sorted (key, value) pairs, lists as tuples, so the settings stay frozen."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (block or {}).items()))


def _first(*values):
    return next(v for v in values if v is not None)


def _opt_float(value) -> float | None:
    return None if value is None else float(value)
