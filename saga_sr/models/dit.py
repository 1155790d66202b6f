"""Stable Audio Open's DiffusionTransformer (DiT) under stable-audio-tools' names, without guidance inside.

Owns: FourierFeatures (learned timestep features), DiffusionTransformer and DiTWrapper (keys `model.*`, so a
full SAGA-SR model reads `model.model.*` like SAO checkpoints). Classifier-free guidance and CFG dropout are
NOT here: guidance is a wrapper around the velocity function (saga_sr.inference.guidance), dropout is done by
the training step on the conditioning inputs.

Shape legend: B batch, C io channels, Ci input-concat channels, T latent frames, S cross-attention tokens,
Dc cond_token_dim, Dg global_cond_dim, Sp prepend-cond tokens, E embed_dim, P = Sp + 1 prepended tokens.

Reusing conditioning over many sampler steps: `project_conditioning(...)` runs the three conditioning MLPs
and the cross-attention key/value projections once and returns DiT kwargs (the keys/values as plain tensors,
`cross_attn_kv`, as x-transformers passes cached keys/values); call
`forward(x, t, **those, conditioning_projected=True)` at every step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .transformer import ContinuousTransformer


class FourierFeatures(nn.Module):
    """Learned random Fourier features of a scalar: [cos(2 pi t W), sin(2 pi t W)] (cos first)."""

    def __init__(self, in_features: int, out_features: int, std: float = 1.0) -> None:
        super().__init__()
        if out_features % 2:
            raise ValueError(f"FourierFeatures: out_features must be even, got {out_features}")
        self.weight = nn.Parameter(torch.randn(out_features // 2, in_features) * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * x @ self.weight.T
        return torch.cat((f.cos(), f.sin()), dim=-1)


def _mlp(dim_in: int, dim_out: int, bias: bool) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, dim_out, bias=bias), nn.SiLU(), nn.Linear(dim_out, dim_out, bias=bias))


class DiffusionTransformer(nn.Module):
    """Velocity (or v) predictor on latents [B,C,T]; conditioning by cross-attention tokens, a global vector
    (added to the timestep embedding and prepended as one token), prepended tokens and channel concatenation.

    Masks are accepted for interface compatibility and, like SAO, not used: `prepend_cond_mask` never, and
    `cross_attn_cond_mask` only with `use_cross_attn_mask=True` (which changes the function; see
    ContinuousTransformer). Remaining keyword arguments go to ContinuousTransformer (e.g. `use_checkpointing`)."""

    def __init__(
        self,
        io_channels: int = 32,
        patch_size: int = 1,
        embed_dim: int = 768,
        cond_token_dim: int = 0,
        project_cond_tokens: bool = True,
        global_cond_dim: int = 0,
        project_global_cond: bool = True,
        input_concat_dim: int = 0,
        prepend_cond_dim: int = 0,
        depth: int = 12,
        num_heads: int = 8,
        transformer_type: str = "continuous_transformer",
        global_cond_type: str = "prepend",
        timestep_cond_type: str = "global",
        timestep_embed_dim: int | None = None,
        diffusion_objective: str = "v",
        **transformer_kwargs: Any,
    ) -> None:
        super().__init__()
        if transformer_type != "continuous_transformer":
            raise NotImplementedError(
                f"DiffusionTransformer: transformer_type {transformer_type!r} is not "
                "implemented (only 'continuous_transformer')"
            )
        if global_cond_type != "prepend":
            raise NotImplementedError(
                f"DiffusionTransformer: global_cond_type {global_cond_type!r} is not "
                "implemented (only 'prepend', as in SAO)"
            )
        if timestep_cond_type != "global" or timestep_embed_dim is not None:
            raise NotImplementedError("DiffusionTransformer: only timestep_cond_type='global' is implemented")
        if embed_dim % num_heads:
            raise ValueError(f"DiffusionTransformer: embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        self.io_channels, self.patch_size, self.embed_dim = io_channels, patch_size, embed_dim
        self.cond_token_dim, self.global_cond_dim = cond_token_dim, global_cond_dim
        self.input_concat_dim, self.prepend_cond_dim = input_concat_dim, prepend_cond_dim
        self.diffusion_objective = diffusion_objective

        self.timestep_features = FourierFeatures(1, 256)
        self.to_timestep_embed = _mlp(256, embed_dim, bias=True)
        cond_embed_dim = embed_dim if project_cond_tokens else cond_token_dim
        if cond_token_dim > 0:
            self.to_cond_embed = nn.Sequential(
                nn.Linear(cond_token_dim, cond_embed_dim, bias=False),
                nn.SiLU(),
                nn.Linear(cond_embed_dim, cond_embed_dim, bias=False),
            )
        if global_cond_dim > 0:
            global_embed_dim = embed_dim if project_global_cond else global_cond_dim
            self.to_global_embed = nn.Sequential(
                nn.Linear(global_cond_dim, global_embed_dim, bias=False),
                nn.SiLU(),
                nn.Linear(global_embed_dim, global_embed_dim, bias=False),
            )
        if prepend_cond_dim > 0:
            self.to_prepend_embed = nn.Sequential(
                nn.Linear(prepend_cond_dim, embed_dim, bias=False),
                nn.SiLU(),
                nn.Linear(embed_dim, embed_dim, bias=False),
            )
        dim_in = io_channels + input_concat_dim
        self.transformer = ContinuousTransformer(
            dim=embed_dim,
            depth=depth,
            dim_heads=embed_dim // num_heads,
            dim_in=dim_in * patch_size,
            dim_out=io_channels * patch_size,
            cross_attend=cond_token_dim > 0,
            cond_token_dim=cond_embed_dim,
            **transformer_kwargs,
        )
        self.preprocess_conv = nn.Conv1d(dim_in, dim_in, 1, bias=False)
        nn.init.zeros_(self.preprocess_conv.weight)
        self.postprocess_conv = nn.Conv1d(io_channels, io_channels, 1, bias=False)
        nn.init.zeros_(self.postprocess_conv.weight)

    @property
    def dtype(self) -> torch.dtype:
        return self.preprocess_conv.weight.dtype

    def timestep_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """t [B] in [0,1] -> [B,E] = to_timestep_embed(timestep_features(t))."""
        return self.to_timestep_embed(self.timestep_features(t.to(self.dtype)[:, None]))

    def project_conditioning(
        self,
        cross_attn_cond: torch.Tensor | None = None,
        global_embed: torch.Tensor | None = None,
        prepend_cond: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor | None]:
        """Run the conditioning MLPs once: [B,S,Dc] -> [B,S,Ce], [B,Dg] -> [B,E], [B,Sp,Dp] -> [B,Sp,E], and
        every cross-attention block's keys/values of the projected context (`cross_attn_kv`). Pass the result
        back with `conditioning_projected=True` (valid while the weights do not change)."""

        def proj(net_name: str, size_name: str, c: torch.Tensor | None) -> torch.Tensor | None:
            if c is None:
                return None
            if not hasattr(self, net_name):
                raise ValueError(
                    f"DiffusionTransformer: got a {size_name.replace('_dim', '')} tensor but the "
                    f"model was built with {size_name}=0"
                )
            return getattr(self, net_name)(c.to(self.dtype))

        cross = proj("to_cond_embed", "cond_token_dim", cross_attn_cond)
        return {
            "cross_attn_cond": cross,
            "cross_attn_kv": self.transformer.context_kv(cross) if cross is not None else None,
            "global_embed": proj("to_global_embed", "global_cond_dim", global_embed),
            "prepend_cond": proj("to_prepend_embed", "prepend_cond_dim", prepend_cond),
        }

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cross_attn_cond: torch.Tensor | None = None,
        cross_attn_cond_mask: torch.Tensor | None = None,
        input_concat_cond: torch.Tensor | None = None,
        global_embed: torch.Tensor | None = None,
        prepend_cond: torch.Tensor | None = None,
        prepend_cond_mask: torch.Tensor | None = None,
        return_info: bool = False,
        conditioning_projected: bool = False,
        cross_attn_kv: tuple | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict]:
        """x [B,C,T], t [B] -> velocity [B,C,T] (plain call, no guidance). With return_info, also
        {"hidden_states": [residual stream [B,P+T,E] after each block]}."""
        del prepend_cond_mask  # SAO never uses it (see class docstring)
        x = x.to(self.dtype)
        if not conditioning_projected:  # (cross_attn_kv only comes with projected conditioning)
            projected = self.project_conditioning(cross_attn_cond, global_embed, prepend_cond)
            cross_attn_cond, global_embed, prepend_cond = (
                projected[k] for k in ("cross_attn_cond", "global_embed", "prepend_cond")
            )
            cross_attn_kv = None
        if input_concat_cond is not None:
            if input_concat_cond.shape[2] != x.shape[2]:
                input_concat_cond = F.interpolate(input_concat_cond, (x.shape[2],), mode="nearest")
            x = torch.cat((x, input_concat_cond.to(x.dtype)), dim=1)

        timestep = self.timestep_embedding(t)
        global_embed = timestep if global_embed is None else global_embed + timestep
        prepend = global_embed[:, None]
        if prepend_cond is not None:
            prepend = torch.cat((prepend_cond, prepend), dim=1)
        n_prepend = prepend.shape[1]

        x = self.preprocess_conv(x) + x
        x = rearrange(x, "b c t -> b t c")
        if self.patch_size > 1:
            x = rearrange(x, "b (t p) c -> b t (c p)", p=self.patch_size)
        out = self.transformer(
            x,
            prepend_embeds=prepend,
            context=cross_attn_cond,
            context_mask=cross_attn_cond_mask,
            return_info=return_info,
            context_kv=cross_attn_kv,
        )
        out, info = out if return_info else (out, None)
        out = rearrange(out, "b t c -> b c t")[:, :, n_prepend:]
        if self.patch_size > 1:
            out = rearrange(out, "b (c p) t -> b c (t p)", p=self.patch_size)
        out = self.postprocess_conv(out) + out
        return (out, info) if return_info else out


class DiTWrapper(nn.Module):
    """Holds a DiffusionTransformer as `.model` (SAO's key layout) and accepts the wrapper-level names
    `cross_attn_mask` / `global_cond` as aliases of `cross_attn_cond_mask` / `global_embed`."""

    def __init__(self, model: DiffusionTransformer | None = None, **dit_kwargs: Any) -> None:
        super().__init__()
        if model is not None and dit_kwargs:
            raise TypeError("DiTWrapper: pass either a model or DiffusionTransformer kwargs, not both")
        self.model = model if model is not None else DiffusionTransformer(**dit_kwargs)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        *,
        cross_attn_mask: torch.Tensor | None = None,
        global_cond: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor | tuple[torch.Tensor, dict]:
        if cross_attn_mask is not None:
            kwargs.setdefault("cross_attn_cond_mask", cross_attn_mask)
        if global_cond is not None:
            kwargs.setdefault("global_embed", global_cond)
        return self.model(x, t, **kwargs)


__all__ = ["FourierFeatures", "DiffusionTransformer", "DiTWrapper"]
