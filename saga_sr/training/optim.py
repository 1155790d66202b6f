"""Optimiser and learning-rate schedule from the typed `training.optimizer_configs.diffusion` settings
(stable-audio-tools' format: `{"optimizer": {"type", "config"}, "scheduler": {"type", "config"}}`)."""

from __future__ import annotations

from typing import Iterable

import torch

from saga_sr.config.typed import OptimizerSettings


def inverse_lr_factor(
    step: int, *, inv_gamma: float = 1e6, power: float = 0.5, warmup: float = 0.99, final_lr_factor: float = 0.0
) -> float:
    """stable-audio-tools' InverseLR multiplier after `step` optimiser steps:
    ``(1 - warmup ** (step + 1)) * (1 + step / inv_gamma) ** -power`` (floored at `final_lr_factor`)."""
    warm = 1.0 - warmup ** (step + 1)
    return warm * max(final_lr_factor, (1.0 + step / inv_gamma) ** -power)


SCHEDULES = {"InverseLR": inverse_lr_factor}  # the schedule names config/checks.py accepts


def build_optimizer(
    params: Iterable[torch.nn.Parameter], settings: OptimizerSettings, learning_rate: float | None = None
):
    """(optimizer, scheduler or None) from the typed settings; `learning_rate` (the training settings' rate)
    overrides the optimizer's `lr`. Names were checked with the config (config/checks.py)."""
    kwargs = dict(settings.optimizer_kwargs)
    if learning_rate is not None:
        kwargs["lr"] = float(learning_rate)
    params = list(params)
    if settings.optimizer in ("AdamW", "Adam") and "fused" not in kwargs and params and params[0].is_cuda:
        kwargs["fused"] = True  # one kernel for the whole update on GPU
    optimizer = getattr(torch.optim, settings.optimizer)(params, **kwargs)
    if settings.scheduler is None:
        return optimizer, None
    factor = SCHEDULES[settings.scheduler]
    conf = {k: v for k, v in settings.scheduler_kwargs if k != "verbose"}
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step, **conf))
    return optimizer, scheduler
