"""Model checkpoints, without Lightning: the inference folder (config.json + model.safetensors), written
atomically, and `load_model`, which reads that folder, a bare model.safetensors with config.json beside it, or a
Lightning .ckpt of ours (torch.load(weights_only=True); the EMA weights when the run kept an EMA)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from saga_sr import __version__
from saga_sr.errors import ModelLoadError
from saga_sr.models.build import build_model
from saga_sr.outputs import clean_stale_temps, make_ordinary, new_temp_dir, remove_temp, temp_name

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CONFIG_KEY = "saga_sr_config"  # where the resolved model config travels inside our Lightning checkpoints


def export_model(model, out_dir: str | os.PathLike, *, state_dict: dict | None = None) -> Path:
    """Write `out_dir/{config.json, model.safetensors}` for `model` (a SagaSRModel; `state_dict` overrides its
    weights, e.g. the EMA ones). The folder is built beside the target and swapped in with renames, so a
    reader never sees a half-written export; files and folders get ordinary permissions (saga_sr.outputs)."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = state_dict if state_dict is not None else model.state_dict()
    # safetensors refuses shared storage: store independent contiguous copies
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    clean_stale_temps(out.parent)
    tmp = new_temp_dir(out)
    try:
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt", "saga_sr_version": __version__})
        make_ordinary(tmp / WEIGHTS_NAME)  # safetensors writes 0600
        (tmp / CONFIG_NAME).write_text(json.dumps(model.config, indent=2) + "\n", encoding="utf-8")
        old = None
        if out.exists():
            old = temp_name(out)
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            remove_temp(old)
    except BaseException:
        remove_temp(tmp)
        raise
    return out


def _state_from_ckpt(path: Path) -> tuple[dict, dict]:
    """(config, SagaSRModel state_dict) from one of our Lightning checkpoints; EMA weights preferred."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(ckpt, dict) or CONFIG_KEY not in ckpt or "state_dict" not in ckpt:
        raise ModelLoadError(
            f"{path}: not a saga-sr training checkpoint (no '{CONFIG_KEY}'); for SAO checkpoints use --pretrained_ckpt"
        )
    return ckpt[CONFIG_KEY], model_state_from_module_state(ckpt["state_dict"])


def model_state_from_module_state(full: dict) -> dict:
    """SagaSRModel weights from a SAGASRTrainer state_dict: `diffusion.*`, overlaid with `diffusion_ema.ema_model.*`
    (the EMA copy of the trainable parts) when present."""
    state = {k[len("diffusion.") :]: v for k, v in full.items() if k.startswith("diffusion.")}
    ema_prefix = "diffusion_ema.ema_model."
    state.update({k[len(ema_prefix) :]: v for k, v in full.items() if k.startswith(ema_prefix)})
    return state


def _state_from_files(weights: Path, config: Path) -> tuple[dict, dict]:
    if not config.is_file():
        raise ModelLoadError(f"{weights}: no {CONFIG_NAME} beside it")
    try:
        cfg = json.loads(config.read_text(encoding="utf-8"))
        return cfg, load_file(str(weights))
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"cannot read {weights} / {config}: {type(exc).__name__}: {exc}") from exc


def check_model_path(path: str | os.PathLike, option: str = "model") -> Path:
    """`path` if it looks like a model `load_model` reads (a folder with config.json + model.safetensors, a
    .safetensors with config.json beside it, or a torch zip checkpoint), else a one-line ModelLoadError.
    Cheap (no weights are read), so commands call it before any other work."""
    p = Path(path)
    what = "expected an exported model folder (config.json + model.safetensors), a model.safetensors or a saga-sr .ckpt"
    if p.is_dir():
        missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not (p / n).is_file()]
        if missing:
            raise ModelLoadError(f"{option} {p}: no {' or '.join(missing)} in this folder; {what}")
    elif p.is_file() and p.suffix == ".safetensors":
        if not p.with_name(CONFIG_NAME).is_file():
            raise ModelLoadError(f"{option} {p}: no {CONFIG_NAME} beside it")
    elif p.is_file():
        if not zipfile.is_zipfile(p):
            raise ModelLoadError(f"{option} {p}: not a model; {what}")
    else:
        raise ModelLoadError(f"{option} {p}: not found (no such file or folder)")
    return p


def load_model(
    path: str | os.PathLike, *, device: str | torch.device = "cpu", text_encoder_path: str | os.PathLike | None = None
):
    """A SagaSRModel in eval mode from an exported folder, a model.safetensors (config.json beside it) or a
    saga-sr Lightning .ckpt. Every key must match the config's model (strict)."""
    p = check_model_path(path)
    if p.is_dir():
        cfg, state = _state_from_files(p / WEIGHTS_NAME, p / CONFIG_NAME)
    elif p.suffix == ".safetensors" and p.is_file():
        cfg, state = _state_from_files(p, p.with_name(CONFIG_NAME))
    else:
        cfg, state = _state_from_ckpt(p)
    model = build_model(cfg, text_encoder_path=text_encoder_path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{p}: weights do not fit the config: {str(exc)[:500]}") from exc
    return model.to(device).eval()
