"""Cross-attention key/value reuse across sampler steps.

Every cross-attention layer projects the same context (text + roll-off tokens) to keys and values at every
step although the context does not change within a window. Inside `cached_cross_attention(module)` each
cross-attention `to_kv` projection remembers its output for the last context tensor it saw and returns it
again when called with that very tensor object (unchanged in place), so keys/values are computed once per
window. The module's parameters and state dict are untouched; leaving the block restores the plain forward.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

__all__ = ["cached_cross_attention"]


class _LastCallCache:
    """Wraps a Linear's forward: same input object and version -> the stored output."""

    def __init__(self, linear: nn.Linear) -> None:
        self.linear = linear
        self.forward = linear.forward  # the bound class method
        self.key: tuple | None = None
        self.out: torch.Tensor | None = None
        self.hits = 0
        self._input: torch.Tensor | None = None

    def __call__(self, inp: torch.Tensor) -> torch.Tensor:
        key = (id(inp), inp._version, inp.dtype, torch.is_autocast_enabled())
        if self.key == key and self.out is not None and self._input is inp:
            self.hits += 1
            return self.out
        out = self.forward(inp)
        self.key, self.out, self._input = key, out, inp
        return out


@contextmanager
def cached_cross_attention(module: nn.Module) -> Iterator[list[_LastCallCache]]:
    """Cache the context projections of every cross-attention layer in `module` (no grad needed)."""
    caches: list[_LastCallCache] = []
    for sub in module.modules():
        to_kv = getattr(sub, "to_kv", None)
        if getattr(sub, "is_cross", False) and isinstance(to_kv, nn.Linear):
            cache = _LastCallCache(to_kv)
            to_kv.forward = cache  # instance attribute shadows the class method
            caches.append(cache)
    try:
        yield caches
    finally:
        for cache in caches:
            del cache.linear.forward
            cache.out = cache._input = None  # type: ignore[assignment]
