"""The continuous transformer of Stable Audio Open's DiT, under stable-audio-tools' parameter names.

Owns: LayerNorm (gamma parameter, zero `beta` buffer), partial rotary embedding, Attention (fused self-attention,
grouped-query cross-attention), SwiGLU FeedForward, the pre-norm TransformerBlock and ContinuousTransformer.

Shape legend: B batch, L sequence (prepend tokens + latent frames), S context tokens, E model width,
H query heads, Hkv key/value heads (cross-attention), D head width.

Attention runs through `F.scaled_dot_product_attention`, so CUDA picks flash / memory-efficient kernels and
bf16 autocast works; rotary embeddings are computed and applied in fp32.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint


def _reject(owner: str, options: dict[str, Any]) -> None:
    """Raise for options stable-audio-tools has but saga-sr does not implement (instead of ignoring them)."""
    bad = {k: v for k, v in options.items() if v}
    if bad:
        raise NotImplementedError(f"{owner}: unsupported option(s) {bad}; saga-sr implements SAO's configuration only")


class LayerNorm(nn.Module):
    """LayerNorm with a learned scale and a zero bias kept as a buffer (SAT stores it as `beta`)."""

    def __init__(self, dim: int, bias: bool = False, fix_scale: bool = False, eps: float = 1e-5) -> None:
        super().__init__()
        _reject("LayerNorm", {"bias": bias, "fix_scale": fix_scale})
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], weight=self.gamma, bias=self.beta, eps=self.eps)


class RotaryEmbedding(nn.Module):
    """Rotary position frequencies; `inv_freq` is persistent because SAO checkpoints contain it."""

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, seq_len: int, device: torch.device) -> torch.Tensor:
        """Angles [L, dim] in fp32 for positions 0..L-1."""
        pos = torch.arange(seq_len, device=device, dtype=torch.float32)
        freqs = torch.einsum("i,j->ij", pos, self.inv_freq.to(device=device, dtype=torch.float32))
        return torch.cat((freqs, freqs), dim=-1)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(t: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate the first `freqs.shape[-1]` channels of each head of t [B,H,L,D] (partial rotary), in fp32."""
    rot_dim = freqs.shape[-1]
    out_dtype = t.dtype
    t_rot, t_pass = t[..., :rot_dim].float(), t[..., rot_dim:]
    freqs = freqs[-t.shape[-2] :]
    t_rot = t_rot * freqs.cos() + _rotate_half(t_rot) * freqs.sin()
    return torch.cat((t_rot.to(out_dtype), t_pass.to(out_dtype)), dim=-1)


class Attention(nn.Module):
    """Multi-head attention without biases: fused `to_qkv` for self-attention, `to_q` + `to_kv` on a context
    for cross-attention. The context may have fewer heads (Hkv = dim_context // dim_heads); query head i then
    uses key/value head i // (H / Hkv), as in SAO (E 1536, context 768: 24 query vs 12 key/value heads)."""

    def __init__(
        self,
        dim: int,
        dim_heads: int = 64,
        dim_context: int | None = None,
        causal: bool = False,
        zero_init_output: bool = True,
        qk_norm: str | bool = "none",
        differential: bool = False,
        feat_scale: bool = False,
        natten_kernel_size: int | None = None,
    ) -> None:
        super().__init__()
        _reject(
            "Attention",
            {
                "qk_norm": qk_norm not in ("none", False, None),
                "differential": differential,
                "feat_scale": feat_scale,
                "natten_kernel_size": natten_kernel_size,
            },
        )
        dim_kv = dim_context if dim_context is not None else dim
        if dim % dim_heads or dim_kv % dim_heads:
            raise ValueError(
                f"Attention: dim {dim} and context dim {dim_kv} must be multiples of dim_heads {dim_heads}"
            )
        self.dim_heads = dim_heads
        self.num_heads = dim // dim_heads
        self.kv_heads = dim_kv // dim_heads
        if self.num_heads % self.kv_heads:
            raise ValueError(
                f"Attention: {self.num_heads} query heads is not a multiple of {self.kv_heads} "
                f"key/value heads (dim {dim}, context dim {dim_kv}, dim_heads {dim_heads})"
            )
        self.causal = causal
        self.is_cross = dim_context is not None
        if self.is_cross:
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_kv = nn.Linear(dim_kv, 2 * dim_kv, bias=False)
        else:
            self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        if zero_init_output:
            nn.init.zeros_(self.to_out.weight)

    def context_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values [B,Hkv,S,D] of a context [B,S,Dc]: compute once, pass as `kv`."""
        if not self.is_cross:
            raise ValueError("Attention: context_kv is for cross-attention layers")
        k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.kv_heads) for t in self.to_kv(context).chunk(2, dim=-1))
        return k, v

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        rotary: torch.Tensor | None = None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """x [B,L,E]; context [B,S,Dc] (cross-attention only); context_mask [B,S] bool, True = attend;
        rotary [L, r] angles (self-attention only); kv: this layer's `context_kv(context)`, computed earlier
        (reused over sampler steps; plain data, so hooks, compile and FSDP see an ordinary call)."""
        split = lambda t, h: rearrange(t, "b n (h d) -> b h n d", h=h)  # noqa: E731
        if self.is_cross:
            if context is None and kv is None:
                raise ValueError("Attention: cross-attention layer called without a context")
            q = split(self.to_q(x), self.num_heads)
            k, v = kv if kv is not None else self.context_kv(context)
        else:
            q, k, v = (split(t, self.num_heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        if rotary is not None:
            q, k = apply_rotary(q, rotary), apply_rotary(k, rotary)
        if self.kv_heads != self.num_heads:
            rep = self.num_heads // self.kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        attn_mask = None
        if context_mask is not None:
            keep = context_mask.bool()
            # A sample with no valid token would give NaN; let it attend everywhere (its tokens are zero anyway).
            keep = keep | ~keep.any(dim=-1, keepdim=True)
            attn_mask = keep[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=self.causal and not self.is_cross)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class GLU(nn.Module):
    """SwiGLU input layer: `proj` gives value and gate (value first), output value * SiLU(gate)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.silu(gate)


class FeedForward(nn.Module):
    """SwiGLU MLP; `ff.1` and `ff.3` are empty placeholders so the keys read `ff.ff.0.proj` and `ff.ff.2`."""

    def __init__(
        self,
        dim: int,
        dim_out: int | None = None,
        mult: int = 4,
        no_bias: bool = False,
        glu: bool = True,
        use_conv: bool = False,
        conv_kernel_size: int = 3,
        zero_init_output: bool = True,
    ) -> None:
        super().__init__()
        _reject("FeedForward", {"no_bias": no_bias, "glu": not glu, "use_conv": use_conv})
        inner = int(dim * mult)
        # Creation order as in stable-audio-tools, so seeded inits match it.
        glu = GLU(dim, inner)
        out = nn.Linear(inner, dim_out if dim_out is not None else dim)
        if zero_init_output:
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
        self.ff = nn.Sequential(glu, nn.Identity(), out, nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class TransformerBlock(nn.Module):
    """Pre-norm block: x += self_attn(norm x); x += cross_attn(norm x, context); x += ff(norm x)."""

    def __init__(
        self,
        dim: int,
        dim_heads: int = 64,
        cross_attend: bool = False,
        dim_context: int | None = None,
        global_cond_dim: int | None = None,
        causal: bool = False,
        zero_init_branch_outputs: bool = True,
        conformer: bool = False,
        remove_norms: bool = False,
        add_rope: bool = False,
        layer_scale: bool = False,
        attn_kwargs: dict | None = None,
        ff_kwargs: dict | None = None,
        norm_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        _reject(
            "TransformerBlock",
            {
                "global_cond_dim (adaLN)": global_cond_dim,
                "conformer": conformer,
                "remove_norms": remove_norms,
                "add_rope": add_rope,
                "layer_scale": layer_scale,
            },
        )
        attn_kwargs, ff_kwargs, norm_kwargs = attn_kwargs or {}, ff_kwargs or {}, norm_kwargs or {}
        self.pre_norm = LayerNorm(dim, **norm_kwargs)
        self.self_attn = Attention(
            dim, dim_heads=dim_heads, causal=causal, zero_init_output=zero_init_branch_outputs, **attn_kwargs
        )
        self.cross_attend = cross_attend
        if cross_attend:
            self.cross_attend_norm = LayerNorm(dim, **norm_kwargs)
            self.cross_attn = Attention(
                dim,
                dim_heads=dim_heads,
                dim_context=dim_context,
                zero_init_output=zero_init_branch_outputs,
                **attn_kwargs,
            )
        self.ff_norm = LayerNorm(dim, **norm_kwargs)
        self.ff = FeedForward(dim, zero_init_output=zero_init_branch_outputs, **ff_kwargs)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        rotary: torch.Tensor | None = None,
        context_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.pre_norm(x), rotary=rotary)
        if (context is not None or context_kv is not None) and self.cross_attend:
            x = x + self.cross_attn(
                self.cross_attend_norm(x), context=context, context_mask=context_mask, kv=context_kv
            )
        return x + self.ff(self.ff_norm(x))


class ContinuousTransformer(nn.Module):
    """project_in -> [prepend tokens; x] -> blocks (RoPE over the whole sequence) -> project_out.

    `use_cross_attn_mask=False` (default) ignores the context mask like SAO, whose weights were trained with
    padded (zeroed) T5 tokens attended to; True honours it, which changes the function (models trained so).
    `use_checkpointing=True` recomputes block activations in the backward pass (training big models)."""

    def __init__(
        self,
        dim: int,
        depth: int,
        *,
        dim_in: int | None = None,
        dim_out: int | None = None,
        dim_heads: int = 64,
        cross_attend: bool = False,
        cond_token_dim: int | None = None,
        final_cross_attn_ix: int = -1,
        global_cond_dim: int | None = None,
        causal: bool = False,
        rotary_pos_emb: bool = True,
        zero_init_branch_outputs: bool = True,
        conformer: bool = False,
        use_sinusoidal_emb: bool = False,
        use_abs_pos_emb: bool = False,
        abs_pos_emb_max_length: int = 10000,
        num_memory_tokens: int = 0,
        sliding_window: Any = None,
        use_checkpointing: bool = False,
        use_cross_attn_mask: bool = False,
        attn_kwargs: dict | None = None,
        ff_kwargs: dict | None = None,
        norm_kwargs: dict | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            raise TypeError(f"ContinuousTransformer: unknown argument(s) {sorted(unknown)}")
        _reject(
            "ContinuousTransformer",
            {
                "use_sinusoidal_emb": use_sinusoidal_emb,
                "use_abs_pos_emb": use_abs_pos_emb,
                "num_memory_tokens": num_memory_tokens,
                "sliding_window": sliding_window,
            },
        )
        if rotary_pos_emb and dim_heads < 32:
            raise ValueError(
                f"ContinuousTransformer: dim_heads {dim_heads} < 32; the rotary embedding is "
                f"max(dim_heads // 2, 32) = 32 channels wide, so heads need at least 32 channels"
            )
        self.dim, self.depth = dim, depth
        self.use_checkpointing = use_checkpointing
        self.use_cross_attn_mask = use_cross_attn_mask
        self.project_in = nn.Linear(dim_in, dim, bias=False) if dim_in is not None else nn.Identity()
        self.project_out = nn.Linear(dim, dim_out, bias=False) if dim_out is not None else nn.Identity()
        self.rotary_pos_emb = RotaryEmbedding(max(dim_heads // 2, 32)) if rotary_pos_emb else None
        self.layers = nn.ModuleList(
            TransformerBlock(
                dim,
                dim_heads=dim_heads,
                cross_attend=cross_attend and (final_cross_attn_ix == -1 or i <= final_cross_attn_ix),
                dim_context=cond_token_dim,
                global_cond_dim=global_cond_dim,
                causal=causal,
                zero_init_branch_outputs=zero_init_branch_outputs,
                conformer=conformer,
                attn_kwargs=attn_kwargs,
                ff_kwargs=ff_kwargs,
                norm_kwargs=norm_kwargs,
            )
            for i in range(depth)
        )

    def context_kv(self, context: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, ...]:
        """Every block's cross-attention keys/values of `context` (None for blocks without cross-attention)."""
        return tuple(layer.cross_attn.context_kv(context) if layer.cross_attend else None for layer in self.layers)

    def forward(
        self,
        x: torch.Tensor,
        prepend_embeds: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        return_info: bool = False,
        context_kv: tuple | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict]:
        """x [B,T,dim_in], prepend_embeds [B,P,E], context [B,S,Dc], context_mask [B,S] -> [B,P+T,dim_out].
        context_kv: `self.context_kv(context)` computed earlier, used instead of projecting the context again.
        With return_info, info["hidden_states"][n] is the residual stream [B,P+T,E] after block n."""
        x = self.project_in(x)
        if prepend_embeds is not None:
            x = torch.cat((prepend_embeds.to(x.dtype), x), dim=1)
        rotary = self.rotary_pos_emb(x.shape[1], x.device) if self.rotary_pos_emb is not None else None
        mask = context_mask if self.use_cross_attn_mask else None
        hidden = []
        if context_kv is not None and len(context_kv) != len(self.layers):
            raise ValueError(
                f"ContinuousTransformer: {len(context_kv)} context_kv entries for {len(self.layers)} blocks"
            )
        for i, layer in enumerate(self.layers):
            kv = context_kv[i] if context_kv is not None else None
            if self.use_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(layer, x, context, mask, rotary, kv, use_reentrant=False)
            else:
                x = layer(x, context=context, context_mask=mask, rotary=rotary, context_kv=kv)
            if return_info:
                hidden.append(x)
        x = self.project_out(x)
        return (x, {"hidden_states": hidden}) if return_info else x


__all__ = [
    "LayerNorm",
    "RotaryEmbedding",
    "apply_rotary",
    "Attention",
    "GLU",
    "FeedForward",
    "TransformerBlock",
    "ContinuousTransformer",
]
