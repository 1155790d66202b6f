"""Start a SAGA-SR model from a Stable Audio Open checkpoint.

The VAE loads as is; the DiT loads wherever shapes agree; the two input projections that see the
LR-latent channels (`transformer.project_in`, `preprocess_conv`) are widened with the new channels set to
zero, so that the widened DiT computes exactly SAO's function whatever LR latent is concatenated; number
conditioners load where ids (and shapes) match. Everything not loaded is listed with its reason in one
LoadReport. Checkpoints are read with safetensors or `torch.load(weights_only=True)` only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from saga_sr.config import load_config
from saga_sr.config.typed import ModelSettings
from saga_sr.errors import ModelLoadError
from saga_sr.models.build import build_model
from saga_sr.models.wrapper import SagaSRModel

# DiT keys whose input dimension includes the concatenated LR-latent channels
WIDENED_KEYS = ("model.model.transformer.project_in.weight", "model.model.preprocess_conv.weight")


@dataclass
class LoadReport:
    """What came from the checkpoint and what did not (key -> reason)."""

    loaded: list[str] = field(default_factory=list)
    widened: dict[str, str] = field(default_factory=dict)
    not_loaded: dict[str, str] = field(default_factory=dict)  # model keys left at their initial value
    unused: dict[str, str] = field(default_factory=dict)  # checkpoint keys the model has no place for
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"loaded {len(self.loaded)} tensors, widened {len(self.widened)}, "
            f"not loaded {len(self.not_loaded)}, checkpoint tensors unused {len(self.unused)}"
        ]
        lines += [f"  widened {k}: {v}" for k, v in self.widened.items()]
        lines += [f"  not loaded {k}: {v}" for k, v in self.not_loaded.items()]
        lines += [f"  unused {k}: {v}" for k, v in self.unused.items()]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """State dict from `model.safetensors` or a `.ckpt` (Lightning training checkpoints are unwrapped:
    `state_dict` and the `diffusion.` prefix; EMA copies are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"SAO checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign files: say which file
        raise ModelLoadError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: not a state dict of tensors")
    if any(k.startswith("diffusion.") for k in state):
        state = {k[len("diffusion.") :]: v for k, v in state.items() if k.startswith("diffusion.")}
    return state


def _widen(target: torch.Tensor, source: torch.Tensor) -> torch.Tensor | None:
    """`source` placed in the leading corner of a zero tensor shaped like `target`, or None if it cannot fit."""
    if source.dim() != target.dim() or any(s > t for s, t in zip(source.shape, target.shape)):
        return None
    out = torch.zeros_like(target, device="cpu")
    out[tuple(slice(0, s) for s in source.shape)] = source
    return out


def transfer_sao_weights(model: SagaSRModel, state: dict[str, torch.Tensor]) -> LoadReport:
    """Copy SAO weights into `model` in place (rules in the module docstring); returns the report."""
    report = LoadReport()
    own = model.state_dict()
    new_state = {}
    for key, target in own.items():
        if key not in state:
            reason = "not in the checkpoint"
            if key.startswith("rolloff_conditioner."):
                reason = "new in SAGA-SR (roll-off conditioner), initialised"
            elif key.startswith("conditioner.conditioners."):
                reason = f"conditioner '{key.split('.')[2]}' is not in the SAO checkpoint, initialised"
            report.not_loaded[key] = reason
            continue
        source = state[key]
        if source.shape == target.shape:
            new_state[key] = source.to(target.dtype)
            report.loaded.append(key)
        elif key in WIDENED_KEYS and (widened := _widen(target, source)) is not None:
            # shapes (out, in[, k]): the SAO block goes to [:io, :io]; rows/columns for LR channels are zero
            new_state[key] = widened.to(target.dtype)
            report.widened[key] = f"{list(source.shape)} -> {list(target.shape)}, new LR-latent channels zero"
        else:
            report.not_loaded[key] = f"shape {list(target.shape)} != checkpoint {list(source.shape)}"
    for key in state:
        if key not in own:
            report.unused[key] = "no such key in this model" + (
                " (conditioner not in this config)" if key.startswith("conditioner.") else ""
            )
    model.load_state_dict(new_state, strict=False)
    return report


def build_from_sao(
    cfg: dict | str | os.PathLike,
    checkpoint: str | os.PathLike,
    *,
    sao_config: dict | str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    text_encoder_path: str | os.PathLike | None = None,
    seed: int | None = 0,
) -> tuple[SagaSRModel, LoadReport]:
    """A SAGA-SR model for `cfg` initialised from a SAO checkpoint (and its model_config.json, looked up
    next to the checkpoint when not given), plus the report of what was not loaded and why."""
    cfg = load_config(cfg)
    report_notes = []
    if sao_config is None:
        candidate = Path(checkpoint).with_name("model_config.json")
        sao_config = candidate if candidate.is_file() else None
    if sao_config is not None:
        sao, ours = ModelSettings.from_config(load_config(sao_config)), ModelSettings.from_config(cfg)
        if sao.pretransform != ours.pretransform:
            report_notes.append(
                "the SAO config's pretransform differs from this config's; VAE keys load only where shapes agree"
            )
        for k in ("embed_dim", "depth", "num_heads", "cond_token_dim", "global_cond_dim", "dit_io_channels"):
            if getattr(sao, k) != getattr(ours, k):
                name = k.removeprefix("dit_")
                report_notes.append(f"DiT {name}: SAO {getattr(sao, k)} vs this config {getattr(ours, k)}")
        if sao.diffusion_objective != ours.diffusion_objective:
            report_notes.append(
                f"objective: SAO was trained with '{sao.diffusion_objective}', this config "
                f"uses '{ours.diffusion_objective}' (fine-tuning adapts it)"
            )
    else:
        report_notes.append("no model_config.json next to the checkpoint: shapes alone decide what loads")
    model = build_model(cfg, device=device, text_encoder_path=text_encoder_path, seed=seed)
    report = transfer_sao_weights(model, read_checkpoint(checkpoint))
    report.notes += report_notes
    return model, report


def write_report(report: LoadReport, path: str | os.PathLike) -> None:
    """The report as JSON (for run folders)."""
    Path(path).write_text(json.dumps(report.__dict__, indent=1) + "\n", encoding="utf-8")


__all__ = ["LoadReport", "WIDENED_KEYS", "build_from_sao", "read_checkpoint", "transfer_sao_weights", "write_report"]
