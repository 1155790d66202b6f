"""Validation sampling: Euler on the linear-quadratic schedule with two-scale CFG (saga_sr.inference),
decode, the top-octave envelope following when the config sets model.diffusion.envelope_follow (as the
upsampler does), low-frequency replacement (cutoff: rolloff_low when present, else lr_cutoff_hz),
metrics (LSD, LSD-HF, SI-SDR) and a few saved examples (audio + spectrogram PNG + a JSON sidecar) under
OUT/val/step=N/.

Target roll-off: validation conditions on the batch's `target_rolloff`, which the dataset measures on each HR
segment, i.e. the `reference` setting of `saga-sr evaluate` (an oracle; `upsample` defaults to 0.9). The
setting is logged (once per validation), its mean value goes to metrics.csv as val/target_rolloff_hz, and each
example's sidecar and spectrogram title name it; a model without roll-off conditioning takes none ("n/a")."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import torch

from saga_sr.audio.envelope import follow_top_octave_envelope
from saga_sr.audio.io import save_audio
from saga_sr.audio.lfr import low_frequency_replace
from saga_sr.audio.metrics import lsd, lsd_bands, si_sdr
from saga_sr.audio.plots import spectrogram_grid
from saga_sr.inference.sampling import sample_latents
from saga_sr.inference.schedules import linear_quadratic
from saga_sr.inference.targets import NOT_USED, REFERENCE, takes_target_rolloff
from saga_sr.models.wrapper import used_conditioner
from saga_sr.seeding import Stream

log = logging.getLogger(__name__)


def target_setting(model, metadata: dict) -> tuple[str, float | None]:
    """(setting name, Hz given) of the target roll-off validation gives the model for one item."""
    if not takes_target_rolloff(model):
        return NOT_USED, None
    hz = metadata.get("rolloff_high")
    return REFERENCE, (float(hz) if hz is not None else None)


def lfr_cutoff(metadata: dict) -> float | None:
    """The LFR cutoff: the measured input roll-off when the batch has one, else the simulated cutoff."""
    value = metadata.get("rolloff_low")
    if value is None:
        value = metadata.get("lr_cutoff_hz")
    return float(value) if value else None


@torch.no_grad()
def sample_batch(
    module, z_lr: torch.Tensor, metadata: list[dict], generator: torch.Generator, steps: int
) -> torch.Tensor:
    """Guided Euler sampling (the model's CFG scales) from noise to a latent [B, C, T] for z_lr and the
    metadata."""
    model = module.inference_model()
    cond = used_conditioner(model)(metadata, z_lr.device)
    sampling = model.settings.sampling(steps=steps)
    shape = (z_lr.shape[0], model.io_channels, z_lr.shape[-1])
    noise = torch.randn(shape, generator=generator, device=generator.device)
    return sample_latents(
        model,
        z_lr,
        cond,
        noise,
        linear_quadratic(sampling.steps),
        cfg_audio=sampling.cfg_audio,
        cfg_text=sampling.cfg_text,
        rolloff=module._rolloff(metadata, z_lr.device),
    )


def validate_batch(
    module, audio: torch.Tensor, metadata: list[dict], batch_idx: int, batch_size: int | None = None
) -> dict[str, float]:
    """Sample, decode, LFR and score the batch; save the first examples on rank 0. Returns metric means."""
    hp = module.hparams
    _, z_lr = module.encode_pair(audio, metadata, module.stream_generator(Stream.VAL_ENCODE, batch_idx))
    was_training = module.training
    module.eval()
    try:
        z = sample_batch(module, z_lr, metadata, module.stream_generator(Stream.VAL_NOISE, batch_idx), hp.val_steps)
        pred = module.diffusion.decode(z).float().cpu().numpy()
    finally:
        module.train(was_training)
    sr = module.diffusion.sample_rate
    scores: dict[str, list[float]] = {"lsd": [], "lsd_hf": [], "si_sdr": [], "target_rolloff_hz": []}
    setting = "n/a"
    for i, md in enumerate(metadata):
        setting, target_hz = target_setting(module.diffusion, md)
        if target_hz is not None:
            scores["target_rolloff_hz"].append(target_hz)
        valid = int(md["padding_mask"].sum()) if "padding_mask" in md else audio.shape[-1]
        hr = audio[i, :, :valid].float().cpu().numpy()
        lr = md["lr_audio"][:, :valid].float().cpu().numpy()
        est = pred[i, :, :valid]
        cutoff = lfr_cutoff(md)
        strength = module.diffusion.settings.envelope_follow
        if strength > 0 and cutoff:  # the upsampler's post-decode order: envelope, then LFR
            est = follow_top_octave_envelope(est, lr, cutoff, sr, strength)
        if hp.lowfreq_replace and cutoff:
            est = low_frequency_replace(est, lr, sr, cutoff_hz=cutoff)
        scores["lsd"].append(lsd(hr, est, sr))
        scores["lsd_hf"].append(lsd_bands(hr, est, sr, float(md.get("lr_cutoff_hz") or cutoff or sr / 4))[0])
        scores["si_sdr"].append(si_sdr(hr, est))
        example = batch_idx * (batch_size or audio.shape[0]) + i
        if hp.val_dir and module.global_rank == 0 and example < int(hp.val_examples):
            _save_example(
                Path(hp.val_dir) / f"step={module.global_step}",
                example,
                md,
                hr,
                lr,
                est,
                sr,
                cutoff,
                {"target_setting": setting, "target_rolloff_hz": target_hz},
            )
    if batch_idx == 0:
        log.info(
            "validation target roll-off: %s",
            "reference (each item's own HR roll-off, an oracle)"
            if setting != "n/a"
            else "n/a (the model takes no target roll-off)",
        )
    return {k: float(np.mean(v)) for k, v in scores.items() if v}


def _save_example(
    folder: Path,
    index: int,
    md: dict,
    hr: np.ndarray,
    lr: np.ndarray,
    est: np.ndarray,
    sr: int,
    cutoff: float | None,
    target: dict,
) -> None:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(md.get("audio_path", "item"))).stem)[:60]
    name = f"{index:02d}_{stem}"
    try:
        peak = max(1.0, float(np.abs(est).max()))
        for tag, wav in (("hr", hr), ("lr", lr), ("pred", est / peak)):
            save_audio(folder / f"{name}_{tag}.wav", wav, sr)
        hz = target["target_rolloff_hz"]
        title = f"target roll-off: {target['target_setting']}" + (f" ({hz / 1000:.1f} kHz)" if hz else "")
        spectrogram_grid(
            [(name, {"LR input": lr, "SAGA-SR": est, "HR target": hr})],
            sr,
            folder / f"{name}.png",
            cutoffs=[cutoff or 0.0],
            title=title,
        )
        sidecar = {
            "audio_path": str(md.get("audio_path", "")),
            "lr_cutoff_hz": md.get("lr_cutoff_hz"),
            "lfr_cutoff_hz": cutoff,
            "reference_rolloff_hz": md.get("rolloff_high"),
            **target,
        }
        (folder / f"{name}.json").write_text(json.dumps(sidecar, indent=2, default=float))
    except Exception as exc:  # noqa: BLE001 -- an example that cannot be written must not stop training
        log.warning("could not save validation example %s: %s", name, exc)
