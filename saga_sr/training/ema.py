"""Exponential moving average of the trainable parts of a SagaSRModel (ema-pytorch, stable-audio-tools'
settings). The frozen pretransform and text encoder are not copied: the EMA module shares them."""

from __future__ import annotations

import copy

from ema_pytorch import EMA
from torch import nn

from saga_sr.models.wrapper import SagaSRModel

# components of SagaSRModel that hold trainable weights (names = attribute names = state_dict prefixes)
TRAINABLE_PARTS = ("model", "conditioner", "rolloff_conditioner")


def trainable_view(model: SagaSRModel) -> nn.ModuleDict:
    """A ModuleDict over the trainable components; its state_dict keys equal the model's own."""
    return nn.ModuleDict(
        {name: getattr(model, name) for name in TRAINABLE_PARTS if getattr(model, name, None) is not None}
    )


def _shared_memo(root: nn.Module) -> dict:
    """deepcopy memo that keeps frozen submodules (and encoders held outside `_modules`) shared."""
    memo: dict = {}
    for module in root.modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            memo[id(module)] = module
        for key, value in vars(module).items():
            if key.startswith("_") and key in ("_parameters", "_buffers", "_modules"):
                continue
            if isinstance(value, nn.Module) or (
                isinstance(value, tuple) and any(isinstance(v, nn.Module) for v in value)
            ):
                memo[id(value)] = value
    return memo


def make_ema(model: SagaSRModel, beta: float = 0.9999):
    """ema_pytorch.EMA over `trainable_view(model)` (power 3/4, every step, after step 1, as stable-audio-tools)."""
    view = trainable_view(model)
    ema_copy = copy.deepcopy(view, memo=_shared_memo(view))
    return EMA(
        view,
        ema_model=ema_copy,
        beta=beta,
        power=3 / 4,
        update_every=1,
        update_after_step=1,
        include_online_model=False,
    )
