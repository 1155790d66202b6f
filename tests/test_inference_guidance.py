"""Two-scale CFG: weights, null conditions, one batched forward == three separate calls, branch skipping,
conditioning projected once, cross-attention keys/values reused across steps."""

import pytest
import torch

from saga_sr.flow import NULL_LR_VALUE
from saga_sr.inference.guidance import TwoScaleCFG, cfg_weights, two_scale_cfg
from saga_sr.inference.samplers import euler
from saga_sr.inference.schedules import linear_quadratic
from saga_sr.models.dit import DiffusionTransformer

B, C, T, S, D = 2, 8, 12, 5, 32


@pytest.fixture(scope="module")
def dit():
    torch.manual_seed(0)
    net = DiffusionTransformer(
        io_channels=C,
        input_concat_dim=C,
        embed_dim=64,
        depth=2,
        num_heads=2,
        cond_token_dim=D,
        global_cond_dim=24,
        project_cond_tokens=False,
        diffusion_objective="rectified_flow",
    ).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():  # every weight non-zero (the real init zeroes the residual branches)
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return net


@pytest.fixture()
def cond():
    g = torch.Generator().manual_seed(2)
    return {
        "input_concat_cond": torch.randn(B, C, T, generator=g),
        "cross_attn_cond": torch.randn(B, S, D, generator=g),
        "global_embed": torch.randn(B, 24, generator=g),
    }


def test_weights():
    assert cfg_weights(1.4, 1.2) == pytest.approx({"uncond": -0.4, "audio": 0.2, "full": 1.2})
    assert cfg_weights(1.0, 1.0) == {"full": 1.0}
    assert cfg_weights(1.0, 3.0) == pytest.approx({"audio": -2.0, "full": 3.0})
    assert cfg_weights(2.0, 2.0) == pytest.approx({"uncond": -1.0, "full": 2.0})
    assert cfg_weights(1.4, 1.2, has_text=False) == pytest.approx({"uncond": -0.4, "audio": 1.4})


@pytest.mark.parametrize("s_a,s_t", [(1.4, 1.2), (2.0, 0.5), (0.0, 3.0)])
def test_batched_equals_three_separate_calls(dit, cond, s_a, s_t):
    x = torch.randn(B, C, T, generator=torch.Generator().manual_seed(3))
    t = 0.63
    tb = torch.full((B,), t)
    with torch.no_grad():
        null_lr = torch.full_like(cond["input_concat_cond"], NULL_LR_VALUE)
        null_text = torch.zeros_like(cond["cross_attn_cond"])
        g = cond["global_embed"]
        u00 = dit(x, tb, input_concat_cond=null_lr, cross_attn_cond=null_text, global_embed=g)
        ul0 = dit(x, tb, input_concat_cond=cond["input_concat_cond"], cross_attn_cond=null_text, global_embed=g)
        ulc = dit(x, tb, **cond)
        expected = u00 + s_a * (ul0 - u00) + s_t * (ulc - ul0)
        got = two_scale_cfg(dit, x, t, cond, scale_audio=s_a, scale_text=s_t)
    assert not torch.allclose(ulc, ul0, atol=1e-3) and not torch.allclose(ul0, u00, atol=1e-3)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-5)


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, x, t, **kw):
        self.calls.append({"x": x, "t": t, **kw})
        return x * 0 + torch.arange(x.shape[0], dtype=x.dtype)[:, None, None]


@pytest.mark.parametrize(
    "s_a,s_t,branches", [(1.4, 1.2, 3), (1.0, 1.0, 1), (1.0, 1.2, 2), (1.3, 1.3, 2), (1.4, 0.0, 2)]
)
def test_one_forward_per_step_and_skipping(cond, s_a, s_t, branches):
    rec = Recorder()
    guided = TwoScaleCFG(rec, cond, scale_audio=s_a, scale_text=s_t)
    guided(torch.zeros(B, C, T), 0.5)
    assert len(rec.calls) == 1
    call = rec.calls[0]
    assert call["x"].shape[0] == branches * B and call["t"].shape == (branches * B,)
    assert call["global_embed"].shape[0] == branches * B


def test_null_conditions(cond):
    rec = Recorder()
    TwoScaleCFG(rec, cond, scale_audio=1.4, scale_text=1.2)(torch.zeros(B, C, T), 0.5)
    call = rec.calls[0]
    lr = call["input_concat_cond"].chunk(3)
    text = call["cross_attn_cond"].chunk(3)
    glob = call["global_embed"].chunk(3)
    assert torch.all(lr[0] == NULL_LR_VALUE) and torch.equal(lr[1], cond["input_concat_cond"])
    assert torch.equal(lr[2], cond["input_concat_cond"])
    assert torch.all(text[0] == 0) and torch.all(text[1] == 0) and torch.equal(text[2], cond["cross_attn_cond"])
    for g in glob:  # global / prepend conditioning kept in every branch
        assert torch.equal(g, cond["global_embed"])


def test_without_text_two_branches(cond):
    rec = Recorder()
    cond = {k: v for k, v in cond.items() if k != "cross_attn_cond"}
    guided = TwoScaleCFG(rec, cond, scale_audio=1.4, scale_text=1.2)
    assert guided.branches == ["uncond", "audio"]


def test_prepare_runs_once_and_projected_call_matches(dit, cond):
    projections = []

    def prepare(kwargs):
        projections.append(1)
        proj = dit.project_conditioning(kwargs["cross_attn_cond"], kwargs["global_embed"])
        return {**kwargs, **{k: v for k, v in proj.items() if v is not None}}

    def denoise(x, t, **kw):
        return dit(x, t, conditioning_projected=True, **kw)

    x = torch.randn(B, C, T, generator=torch.Generator().manual_seed(4))
    ts = linear_quadratic(6)
    with torch.no_grad():
        plain = euler(TwoScaleCFG(dit, cond, scale_audio=1.4, scale_text=1.2), x, ts)
        kv_calls = []
        hooks = [
            layer.cross_attn.to_kv.register_forward_hook(lambda *_: kv_calls.append(1))
            for layer in dit.transformer.layers
        ]
        try:
            fast = euler(TwoScaleCFG(denoise, cond, scale_audio=1.4, scale_text=1.2, prepare=prepare), x, ts)
        finally:
            for h in hooks:
                h.remove()
    assert projections == [1]
    # the keys/values are projected once (in `prepare`, per cross-attention block), then passed as data at all
    # 6 steps; a forward hook on to_kv sees exactly those calls (hooks work: nothing is patched)
    assert len(kv_calls) == len(dit.transformer.layers) == 2
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


def test_missing_lr_latent_is_an_error(cond):
    with pytest.raises(ValueError, match="input_concat_cond"):
        TwoScaleCFG(Recorder(), {"cross_attn_cond": cond["cross_attn_cond"]}, scale_audio=1.4, scale_text=1.2)
