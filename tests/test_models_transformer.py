"""Transformer pieces against naive re-statements of the math (RoPE, grouped-query attention, norms)."""

from __future__ import annotations

import math

import pytest
import torch

from saga_sr.models.transformer import Attention, ContinuousTransformer, LayerNorm, RotaryEmbedding, apply_rotary


def _naive_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


def test_layernorm_beta_is_a_zero_buffer():
    norm = LayerNorm(8)
    assert [n for n, _ in norm.named_parameters()] == ["gamma"]
    assert [n for n, _ in norm.named_buffers()] == ["beta"]
    x = torch.randn(3, 8)
    assert torch.allclose(
        norm(x), (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5), atol=1e-5
    )


def test_rotary_is_partial_and_relative():
    rope = RotaryEmbedding(32)
    assert rope.inv_freq.shape == (16,) and "inv_freq" in rope.state_dict()
    freqs = rope(6, torch.device("cpu"))
    q = torch.randn(1, 1, 6, 64)
    rotated = apply_rotary(q, freqs)
    assert torch.equal(rotated[..., 32:], q[..., 32:])  # upper half of a 64-wide head untouched
    assert torch.allclose(rotated[..., :32].norm(dim=-1), q[..., :32].norm(dim=-1), atol=1e-5)
    assert not torch.allclose(rotated[..., 1, :32], q[..., 1, :32])
    # relative: <R_m q, R_n k> depends on m - n only
    k = torch.randn(1, 1, 1, 64)
    qs, ks = apply_rotary(q[:, :, :1].expand(1, 1, 6, 64), freqs), apply_rotary(k.expand(1, 1, 6, 64), freqs)
    d1 = (qs[..., 3, :32] * ks[..., 1, :32]).sum()
    d2 = (qs[..., 4, :32] * ks[..., 2, :32]).sum()
    assert torch.allclose(d1, d2, atol=1e-4)


def test_grouped_query_cross_attention_matches_naive():
    torch.manual_seed(0)
    attn = Attention(128, dim_heads=32, dim_context=64, zero_init_output=False)  # 4 query heads, 2 kv heads
    assert attn.to_kv.weight.shape == (128, 64) and attn.kv_heads == 2
    x, ctx = torch.randn(2, 5, 128), torch.randn(2, 3, 64)
    q = attn.to_q(x).view(2, 5, 4, 32).transpose(1, 2)
    k, v = (t.view(2, 3, 2, 32).transpose(1, 2) for t in attn.to_kv(ctx).chunk(2, -1))
    k, v = k[:, [0, 0, 1, 1]], v[:, [0, 0, 1, 1]]  # query head i uses kv head i // 2
    ref = attn.to_out(_naive_attention(q, k, v).transpose(1, 2).reshape(2, 5, 128))
    assert torch.allclose(attn(x, context=ctx), ref, atol=1e-5)
    mask = torch.tensor([[True, False, True], [True, True, False]])
    ref_m = attn.to_out(_naive_attention(q, k, v, mask[:, None, None]).transpose(1, 2).reshape(2, 5, 128))
    assert torch.allclose(attn(x, context=ctx, context_mask=mask), ref_m, atol=1e-5)


def test_self_attention_zero_init_and_rejections():
    attn = Attention(64, dim_heads=32)
    assert attn.to_out.weight.abs().sum() == 0 and attn.to_qkv.weight.shape == (192, 64)
    assert all(m.bias is None for m in (attn.to_qkv, attn.to_out))
    with pytest.raises(NotImplementedError, match="qk_norm"):
        Attention(64, dim_heads=32, qk_norm="l2")
    with pytest.raises(ValueError, match="query heads"):
        Attention(1024, dim_heads=64, dim_context=768)


def test_continuous_transformer_final_cross_attn_ix_and_lengths():
    model = ContinuousTransformer(
        64, 3, dim_in=6, dim_out=5, dim_heads=32, cross_attend=True, cond_token_dim=32, final_cross_attn_ix=0
    )
    keys = model.state_dict().keys()
    assert "layers.0.cross_attn.to_kv.weight" in keys and "layers.1.cross_attn.to_kv.weight" not in keys
    out = model(torch.randn(2, 7, 6), prepend_embeds=torch.randn(2, 2, 64), context=torch.randn(2, 4, 32))
    assert out.shape == (2, 9, 5)
