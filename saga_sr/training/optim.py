"""Optimiser and learning-rate schedule from the config's `training.optimizer_configs.diffusion` block
(stable-audio-tools' format: `{"optimizer": {"type", "config"}, "scheduler": {"type", "config"}}`)."""

from __future__ import annotations

from typing import Iterable

import torch

from saga_sr.errors import ConfigError

DEFAULT_OPTIMIZER = {"type": "AdamW", "config": {"lr": 1e-4, "betas": [0.9, 0.999], "weight_decay": 1e-3}}
DEFAULT_SCHEDULER = {"type": "InverseLR", "config": {"inv_gamma": 1e6, "power": 0.5, "warmup": 0.99}}


def inverse_lr_factor(step: int, *, inv_gamma: float = 1e6, power: float = 0.5, warmup: float = 0.99,
                      final_lr_factor: float = 0.0) -> float:
    """stable-audio-tools' InverseLR multiplier after `step` optimiser steps:
    ``(1 - warmup ** (step + 1)) * (1 + step / inv_gamma) ** -power`` (floored at `final_lr_factor`)."""
    warm = 1.0 - warmup ** (step + 1)
    return warm * max(final_lr_factor, (1.0 + step / inv_gamma) ** -power)


def build_optimizer(params: Iterable[torch.nn.Parameter], training_cfg: dict, learning_rate: float | None = None):
    """(optimizer, scheduler or None) from the config; `learning_rate` (the CLI flag) overrides the config's."""
    block = (training_cfg.get("optimizer_configs") or {}).get("diffusion") or {}
    opt_cfg = block.get("optimizer") or DEFAULT_OPTIMIZER
    kwargs = dict(opt_cfg.get("config", {}))
    lr = learning_rate if learning_rate is not None else training_cfg.get("learning_rate", kwargs.get("lr"))
    if lr is not None:
        kwargs["lr"] = float(lr)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    opt_type = opt_cfg.get("type", "AdamW")
    opt_cls = getattr(torch.optim, opt_type, None)
    if opt_cls is None or not isinstance(opt_cls, type):
        raise ConfigError([f"training.optimizer_configs.diffusion.optimizer.type: unknown optimizer '{opt_type}'"])
    params = list(params)
    if opt_type in ("AdamW", "Adam") and "fused" not in kwargs and params and params[0].is_cuda:
        kwargs["fused"] = True  # one kernel for the whole update on GPU
    optimizer = opt_cls(params, **kwargs)
    sched_cfg = block.get("scheduler", DEFAULT_SCHEDULER if "optimizer" not in block else None)
    if not sched_cfg:
        return optimizer, None
    if sched_cfg.get("type") != "InverseLR":
        raise ConfigError([f"training.optimizer_configs.diffusion.scheduler.type: only 'InverseLR' is supported, "
                           f"not '{sched_cfg.get('type')}'"])
    conf = dict(sched_cfg.get("config", {}))
    conf.pop("verbose", None)
    allowed = {"inv_gamma", "power", "warmup", "final_lr_factor"}
    if unknown := set(conf) - allowed:
        raise ConfigError([f"training.optimizer_configs.diffusion.scheduler.config: unknown keys {sorted(unknown)}"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: inverse_lr_factor(step, **conf))
    return optimizer, scheduler
