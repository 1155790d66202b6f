"""SAGA-SR's two-scale classifier-free guidance, as a wrapper around the DiT velocity (never inside it).

Paper eq. 4 (InstructPix2Pix style), with s_a the acoustic (LR latent) scale and s_t the text scale:

    u = u(0, 0) + s_a [u(z_l, 0) - u(0, 0)] + s_t [u(z_l, c) - u(z_l, 0)]

which is the weighted sum  u = (1 - s_a) u(0,0) + (s_a - s_t) u(z_l,0) + s_t u(z_l,c).
Branches whose weight is exactly 0 are skipped (s_a = 1 drops u(0,0); s_a = s_t drops u(z_l,0);
s_t = 0 drops u(z_l,c); s_a = s_t = 1 is a single plain pass), and the remaining ones run as ONE batched
DiT forward of (branches x B) items.

Null conditions follow the authors' code (`get_unconditional_condition`): the null LR latent is a constant
-5 tensor (not zeros), the null text is zeros for the WHOLE cross-attention tensor (T5 tokens and any
roll-off / seconds tokens share it), while the global / prepend conditioning (roll-off, seconds, the
timestep) is kept in all branches. The cross-attention mask is kept as is in every branch.

Shape legend: B batch, C latent channels, T latent frames, S context tokens, D token width.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, Mapping

import torch

from saga_sr.flow import NULL_LR_VALUE

__all__ = ["NULL_LR_VALUE", "BRANCHES", "cfg_weights", "TwoScaleCFG", "two_scale_cfg", "guided_velocity"]

# (name, uses the LR latent, uses the text / cross-attention tokens)
BRANCHES = (("uncond", False, False), ("audio", True, False), ("full", True, True))

Denoiser = Callable[..., torch.Tensor]  # denoise(x [B,C,T], t [B], **dit_kwargs) -> velocity [B,C,T]
DynamicCond = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]  # t [B] -> extra DiT kwargs for B items
Prepare = Callable[[dict], dict]  # batched DiT kwargs -> the kwargs actually passed at every step


def cfg_weights(scale_audio: float, scale_text: float, *, has_text: bool = True) -> dict[str, float]:
    """Weights of the three branches (only the non-zero ones), summing to 1.

    Without cross-attention conditioning (`has_text=False`) u(z_l, c) == u(z_l, 0), so its weight moves
    to the "audio" branch and the text scale has no effect.
    """
    w = {"uncond": 1.0 - scale_audio, "audio": scale_audio - scale_text, "full": scale_text}
    if not has_text:
        w["audio"] += w.pop("full")
    return {name: float(v) for name, v in w.items() if v != 0.0}


def _repeat(value: torch.Tensor | None, n: int) -> torch.Tensor | None:
    if value is None or n == 1:
        return value
    return torch.cat([value] * n, dim=0)


@dataclass
class _Prepared:
    names: list[str]
    weights: list[float]
    kwargs: dict[str, torch.Tensor | None]


class TwoScaleCFG:
    """Guided velocity for one batch of windows; build once per window batch, call once per step.

    `cond` holds the DiT keyword arguments of the CONDITIONED call for B items: `input_concat_cond`
    (z_l [B,C,T], required), and any of `cross_attn_cond` [B,S,D], `cross_attn_cond_mask` [B,S],
    `global_embed`, `prepend_cond`, `prepend_cond_mask`. The batched 3B conditioning tensors are
    assembled here once, so the same tensor objects are passed at every step (which also lets a
    cross-attention key/value cache recognise them). `dynamic` optionally supplies kwargs that depend
    on t (e.g. a prepend token that carries a timestep embedding); they are kept in all branches.
    `prepare` runs once on the batched kwargs (e.g. the DiT's `project_conditioning`, so the conditioning
    MLPs run once per window instead of once per step). The scales have no default here: a model's own come
    from `ModelSettings.sampling`.
    """

    def __init__(
        self,
        denoise: Denoiser,
        cond: Mapping[str, torch.Tensor | None],
        *,
        scale_audio: float,
        scale_text: float,
        null_lr_value: float = NULL_LR_VALUE,
        dynamic: DynamicCond | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        if cond.get("input_concat_cond") is None:
            raise ValueError("two-scale CFG needs cond['input_concat_cond'] (the LR latent z_l)")
        self.denoise = denoise
        self.dynamic = dynamic
        self.batch = int(cond["input_concat_cond"].shape[0])
        has_text = cond.get("cross_attn_cond") is not None
        weights = cfg_weights(scale_audio, scale_text, has_text=has_text)
        if not weights:  # 1 - s_a = s_a - s_t = s_t = 0 is impossible, but keep a clear error
            raise ValueError(f"guidance scales ({scale_audio}, {scale_text}) leave no branch")
        self.prepared = self._prepare(dict(cond), weights, null_lr_value)
        if prepare is not None:
            self.prepared.kwargs = dict(prepare(self.prepared.kwargs))

    @staticmethod
    def _prepare(cond: dict, weights: dict[str, float], null_lr_value: float) -> _Prepared:
        branches = [b for b in BRANCHES if b[0] in weights]
        z_l = cond.pop("input_concat_cond")
        null_lr = torch.full_like(z_l, null_lr_value)
        kwargs: dict[str, torch.Tensor | None] = {
            "input_concat_cond": torch.cat([z_l if lr else null_lr for _, lr, _ in branches], dim=0),
        }
        cross = cond.pop("cross_attn_cond", None)
        if cross is not None:
            null_text = torch.zeros_like(cross)
            kwargs["cross_attn_cond"] = torch.cat([cross if text else null_text for _, _, text in branches], dim=0)
        n = len(branches)
        for key, value in cond.items():  # masks, global, prepend: identical in every branch
            kwargs[key] = _repeat(value, n)
        return _Prepared([b[0] for b in branches], [weights[b[0]] for b in branches], kwargs)

    @property
    def branches(self) -> list[str]:
        """Names of the branches this batch evaluates (a subset of uncond / audio / full)."""
        return list(self.prepared.names)

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        n = len(self.prepared.names)
        t_b = torch.full((self.batch,), float(t), dtype=x.dtype, device=x.device)
        kwargs = dict(self.prepared.kwargs)
        if self.dynamic is not None:
            for key, value in self.dynamic(t_b).items():
                kwargs[key] = _repeat(value, n)
        out = self.denoise(_repeat(x, n), _repeat(t_b, n), **kwargs)
        parts = out.float().chunk(n, dim=0)
        v = self.prepared.weights[0] * parts[0]
        for w, part in zip(self.prepared.weights[1:], parts[1:]):
            v = v + w * part
        return v


def two_scale_cfg(
    denoise: Denoiser,
    x: torch.Tensor,
    t: float,
    cond: Mapping[str, torch.Tensor | None],
    *,
    scale_audio: float,
    scale_text: float,
    null_lr_value: float = NULL_LR_VALUE,
) -> torch.Tensor:
    """One guided velocity evaluation (convenience; samplers should reuse a `TwoScaleCFG` per window)."""
    return TwoScaleCFG(denoise, cond, scale_audio=scale_audio, scale_text=scale_text, null_lr_value=null_lr_value)(x, t)


def guided_velocity(
    model,
    cond: Mapping,
    z_lr: torch.Tensor,
    *,
    scale_audio: float,
    scale_text: float,
    rolloff: tuple[torch.Tensor, torch.Tensor] | None = None,
    autocast: Callable[[], ContextManager] = nullcontext,
) -> TwoScaleCFG:
    """The one set-up of guided sampling (inference.sampling): a SagaSRModel's conditioner outputs
    `cond` and normalised roll-offs (low, high) [B] -> a TwoScaleCFG over the DiT for z_lr [B,C,T].

    The conditioning MLPs and the cross-attention keys/values run once (`project_conditioning` as `prepare`);
    the Fourier roll-off prepend token carries the timestep embedding, so it is rebuilt at every step (`dynamic`).
    `autocast` wraps each DiT call (e.g. bf16)."""
    dit, b, dev = model.dit, z_lr.shape[0], z_lr.device
    inputs = dict(model.conditioning_inputs(cond, rolloff=rolloff, timestep=torch.ones(b, device=dev)))
    dynamic = None
    if rolloff is not None and getattr(model, "rolloff_conditioner", None) is not None:
        low, high = rolloff
        inputs.pop("prepend_cond", None)  # replaced at every step by `dynamic`
        inputs.pop("prepend_cond_mask", None)

        def dynamic(t_b: torch.Tensor) -> dict:
            prepend = model.build_rolloff_prepend(low, high, t_b)
            return {
                "prepend_cond": dit.project_conditioning(prepend_cond=prepend)["prepend_cond"],
                "prepend_cond_mask": torch.ones(prepend.shape[:2], dtype=torch.bool, device=dev),
            }

    inputs["cross_attn_cond_mask"] = inputs.pop("cross_attn_mask", None)
    inputs = {k: v for k, v in inputs.items() if v is not None}
    inputs["input_concat_cond"] = z_lr

    def prepare(kwargs: dict) -> dict:
        projected = dit.project_conditioning(
            kwargs.get("cross_attn_cond"), kwargs.get("global_embed"), kwargs.get("prepend_cond")
        )
        return {**kwargs, **{k: v for k, v in projected.items() if v is not None}}

    def denoise(x: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        with autocast():
            return dit(x, t, conditioning_projected=True, **kwargs)

    return TwoScaleCFG(
        denoise, inputs, scale_audio=scale_audio, scale_text=scale_text, dynamic=dynamic, prepare=prepare
    )
