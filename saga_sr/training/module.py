"""SAGASRTrainer: the LightningModule holding only SAGA-SR's training logic.

Training step: HR and LR latent posteriors (from the frozen pretransform without gradients, or pre-encoded by
`saga-sr prepare`), sampled with the step's generator -> rectified flow (saga_sr.flow) with the
config's time sampler -> per-sample dropout of the LR latent (to the authors' constant -5 null) and of the whole
cross-attention conditioning (zeros) -> masked MSE. The roll-off global / prepend conditioning is never dropped.
Validation: flow loss at fixed times, then guided sampling (see validation.py).

Shapes: audio [B, C, L]; latents z [B, latent_channels, T]; t [B].
"""

from __future__ import annotations

import lightning as L
import torch

from saga_sr import __version__
from saga_sr.config.typed import TrainingSettings
from saga_sr.data.latents import LatentPair
from saga_sr.errors import DataError, SagaError
from saga_sr.flow import (
    NULL_LR_VALUE,
    VALIDATION_TIMESTEPS,
    clean_estimate,
    flow_loss,
    flow_source,
    interpolate,
    latent_mask,
    sample_timesteps,
    velocity_target,
)
from saga_sr.inference.sampling import relative_latents
from saga_sr.models.checkpoint import CONFIG_KEY
from saga_sr.models.conditioners import MultiConditioner
from saga_sr.models.wrapper import SagaSRModel, used_conditioner
from saga_sr.seeding import Stream, torch_generator
from saga_sr.training.ema import make_ema
from saga_sr.training.optim import build_optimizer
from saga_sr.training.spectral_loss import multires_log_spectral_loss
from saga_sr.training.validation import validate_batch


class TrainingDivergedError(SagaError):
    """The training loss became NaN or infinite; the message names the step and the batch's files."""


class SAGASRTrainer(L.LightningModule):
    """Lightning wrapper around a SagaSRModel (attribute `diffusion`, EMA copy `diffusion_ema`, as
    stable-audio-tools' training wrapper names them, so `saga_sr.models.sao.read_checkpoint` reads our .ckpt)."""

    def __init__(
        self,
        model: SagaSRModel,
        *,
        learning_rate: float | None = None,
        use_ema: bool | None = None,
        ema_beta: float | None = None,
        timestep_sampler: str | None = None,
        cfg_dropout_prob: float | None = None,
        lr_dropout_prob: float | None = None,
        val_steps: int = 20,
        lowfreq_replace: bool = True,
        max_val_items: int = 4,
        val_examples: int = 2,
        val_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.diffusion = model
        # the config's training block, overridden by the arguments that are given (None = not given)
        self.settings = TrainingSettings.from_config(model.config).override(
            learning_rate=learning_rate,
            use_ema=use_ema,
            ema_beta=ema_beta,
            timestep_sampler=timestep_sampler,
            cfg_dropout_prob=cfg_dropout_prob,
            lr_dropout_prob=lr_dropout_prob,
        )
        s = self.settings
        self.timestep_sampler = s.timestep_sampler
        self.cfg_dropout_prob, self.lr_dropout_prob = float(s.cfg_dropout_prob), float(s.lr_dropout_prob)
        _freeze_unused_conditioners(model)
        self.diffusion_ema = make_ema(model, beta=float(s.ema_beta)) if s.use_ema else None
        self._val_items = 0
        self.last_val_step = -1

    # ---- conditioning ---------------------------------------------------------------------------------------
    def _rolloff(self, metadata: list[dict], device) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Normalised (input, target) roll-offs [B] for the Fourier roll-off conditioner, or None without one."""
        if self.diffusion.rolloff_conditioner is None:
            return None
        try:
            low = [float(m["input_rolloff"]) for m in metadata]
            high = [float(m["target_rolloff"]) for m in metadata]
        except KeyError as exc:
            raise DataError(
                "the model has a roll-off conditioner but the batch has no roll-offs; "
                "build the dataset with compute_rolloff=True (--compute_rolloff)"
            ) from exc
        return (torch.tensor(low, device=device), torch.tensor(high, device=device))

    def dit_inputs(
        self,
        metadata: list[dict],
        t: torch.Tensor,
        model: SagaSRModel | None = None,
        generator: torch.Generator | None = None,
    ) -> dict:
        """The DiT's conditioning kwargs for a batch (the roll-off token's dropout, in training mode, draws
        from `generator`)."""
        model = model or self.diffusion
        cond = condition(used_conditioner(model), metadata, t.device)
        return model.conditioning_inputs(
            cond, rolloff=self._rolloff(metadata, t.device), timestep=t, generator=generator
        )

    # ---- the objective --------------------------------------------------------------------------------------
    def encode_pair(
        self, audio: torch.Tensor, metadata: list[dict], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_hr, z_lr) from the frozen pretransform, without gradients, in float32 (even under autocast); a
        sampling VAE posterior draws from `generator`."""
        lr = self.lr_audio(metadata, audio, generator)
        with torch.no_grad():
            return (self.diffusion.encode(audio, generator).float(), self.diffusion.encode(lr, generator).float())

    def lr_audio(self, metadata: list[dict], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The batch's LR audio as the model encodes it (SagaSRModel.lr_input: DSP-prefilled above each item's
        `lr_cutoff_hz` when the config asks; the prefill's noise seeds are drawn from `generator`)."""
        lr = torch.stack([m["lr_audio"] for m in metadata]).to(like)
        if self.diffusion.settings.lr_prefill is None:
            return lr
        try:
            cutoffs = [float(m["lr_cutoff_hz"]) for m in metadata]
        except KeyError as exc:
            raise DataError("model.diffusion.lr_prefill needs each item's lr_cutoff_hz") from exc
        seeds = (
            torch.randint(2**31 - 1, (len(metadata),), generator=generator, device=generator.device).tolist()
            if generator is not None
            else [0] * len(metadata)
        )
        return self.diffusion.lr_input(lr, cutoffs, seeds)

    def posteriors(
        self, x: torch.Tensor | LatentPair, metadata: list[dict], generator: torch.Generator | None = None
    ) -> LatentPair:
        """The batch's HR and LR latent posteriors in float32: given (pre-encoded shards), or from the frozen
        pretransform run on the HR audio and the metadata's `lr_audio` without gradients (on the fly)."""
        if isinstance(x, LatentPair):
            return x.float()
        lr = self.lr_audio(metadata, x, generator)
        with torch.no_grad():
            return LatentPair(
                *self.diffusion.pretransform.posterior(x), *self.diffusion.pretransform.posterior(lr)
            ).float()

    def flow_step(
        self,
        x: torch.Tensor | LatentPair,
        metadata: list[dict],
        generator: torch.Generator,
        *,
        t: torch.Tensor | None = None,
        dropout: bool = True,
    ) -> torch.Tensor:
        """The masked rectified-flow loss of one batch (random t unless given; dropout for CFG in training).

        `x` is HR audio [B, C, L] (LR audio in the metadata; encoded here) or pre-encoded posteriors
        (`LatentPair`, with `latent_mask` in the metadata). Draw order from `generator`: t, the HR and LR
        posterior samples, the flow noise, the dropouts -- so both inputs give the same loss for the same batch
        (a DSP-prefill config draws its fill seeds first; it trains from audio only)."""
        post = self.posteriors(x, metadata, generator)
        b, device = post.shape[0], post.hr_mean.device
        if t is None:
            t = sample_timesteps(b, self.timestep_sampler, generator)
        t = t.to(device=device, dtype=torch.float32)
        z, z_lr = post.sample(generator)
        gain, (z_lr, z) = relative_latents(self.diffusion, z_lr, z)
        noise = torch.randn(z.shape, generator=generator, device=generator.device).to(z)
        source = flow_source(noise, z_lr, self.diffusion.settings.lr_bridge)
        inputs = self.dit_inputs(metadata, t, generator=generator)
        if dropout:
            drop_lr = (torch.rand(b, generator=generator, device=generator.device) < self.lr_dropout_prob).to(device)
            z_lr = torch.where(drop_lr[:, None, None], torch.full_like(z_lr, NULL_LR_VALUE), z_lr)
            drop_text = (torch.rand(b, generator=generator, device=generator.device) < self.cfg_dropout_prob).to(device)
            if inputs.get("cross_attn_cond") is not None:
                cross = inputs["cross_attn_cond"]
                inputs["cross_attn_cond"] = torch.where(drop_text[:, None, None], torch.zeros_like(cross), cross)
        x_t = interpolate(z, source, t)
        pred = self.diffusion(x_t, t, input_concat_cond=z_lr, **inputs)
        mask = None
        if "latent_mask" in metadata[0]:
            mask = torch.stack([m["latent_mask"] for m in metadata]).to(device)
        elif "padding_mask" in metadata[0]:
            pm = torch.stack([m["padding_mask"] for m in metadata]).to(device)
            mask = latent_mask(pm, z.shape[-1])
        loss = flow_loss(pred, velocity_target(z, source), mask)
        if self.settings.spectral_loss_weight > 0:
            loss = loss + self.settings.spectral_loss_weight * self.spectral_term(x_t, pred, z, t, gain, metadata)
        return loss

    def spectral_term(self, x_t, pred, z, t, gain, metadata: list[dict]) -> torch.Tensor:
        """The auxiliary log-spectral loss (training/spectral_loss.py) of the predicted clean sample
        x_t - t * v against the target, both decoded at the real level (the LR gain multiplied back)."""
        x0_hat, x0 = clean_estimate(x_t, pred, t), z
        if gain is not None:
            x0_hat, x0 = x0_hat * gain, x0 * gain
        pre = self.diffusion.pretransform
        cutoffs = [float(m.get("lr_cutoff_hz") or 0.0) for m in metadata]
        return multires_log_spectral_loss(
            pre.decode(x0_hat.float()),
            pre.decode(x0.float()).detach(),
            self.diffusion.sample_rate,
            cutoffs,
            high_band_weight=self.settings.spectral_loss_high_band,
            item_weights=1.0 - t.float(),
        )

    def stream_generator(self, stream: Stream, *keys: int) -> torch.Generator:
        """A generator of `stream` seeded from (seed, stream, rank, keys): the same draws after a resume."""
        return torch_generator(self.hparams.seed, stream, self.global_rank, *keys, device=self.device)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, metadata = batch
        loss = self.flow_step(x, metadata, self.stream_generator(Stream.TRAIN_STEP, self.global_step, batch_idx))
        finite = bool(torch.isfinite(loss).item())
        if self._trainer is not None:
            finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
        if not finite:
            files = ", ".join(str(m.get("audio_path", "?")) for m in metadata)
            raise TrainingDivergedError(
                f"non-finite training loss ({loss.item()}) at step {self.global_step} "
                f"(batch {batch_idx}: {files}); the last good checkpoint is kept"
            )
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(metadata))
        return loss

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.diffusion_ema is not None:  # once per optimiser step, before checkpoints see this step
            self.diffusion_ema.update()

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.trainer.lr_scheduler_configs:
            self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False)

    # ---- validation ------------------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_items = 0

    def on_validation_epoch_end(self) -> None:
        self.last_val_step = self.global_step

    def validation_step(self, batch, batch_idx: int) -> None:
        audio, metadata = batch
        b = audio.shape[0]
        t = torch.tensor([VALIDATION_TIMESTEPS[(batch_idx * b + i) % len(VALIDATION_TIMESTEPS)] for i in range(b)])
        loss = self.flow_step(audio, metadata, self.stream_generator(Stream.VAL_LOSS, batch_idx), t=t, dropout=False)
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=b)
        budget = int(self.hparams.max_val_items) - self._val_items
        if budget > 0:
            metrics = validate_batch(self, audio[:budget], metadata[:budget], batch_idx, batch_size=b)
            n = min(budget, b)
            self._val_items += n
            for name, value in metrics.items():
                self.log(f"val/{name}", value, on_epoch=True, sync_dist=True, batch_size=n)

    # ---- weights for inference / export ---------------------------------------------------------------------
    def inference_model(self) -> SagaSRModel:
        """The model to sample and export with: the EMA weights when EMA is on, else the live ones."""
        if self.diffusion_ema is None:
            return self.diffusion
        ema = self.diffusion_ema.ema_model
        m = self.diffusion
        return SagaSRModel(
            ema["model"],
            ema["conditioner"],
            m.pretransform,
            config=m.config,
            rolloff_conditioner=ema["rolloff_conditioner"] if "rolloff_conditioner" in ema else None,
        )

    # ---- optimiser and checkpoints ---------------------------------------------------------------------------
    def configure_optimizers(self):
        params = [p for p in self.diffusion.parameters() if p.requires_grad]
        optimizer, scheduler = build_optimizer(params, self.settings.optimizer, self.settings.learning_rate)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.diffusion.config
        checkpoint["saga_sr_version"] = __version__
        checkpoint["saga_sr_ema"] = self.diffusion_ema is not None
        if (
            self._trainer is not None
            and getattr(self.trainer, "datamodule", None) is not None
            and hasattr(self.trainer.datamodule, "fix_loader_state")
        ):
            progress = self.trainer.fit_loop.epoch_loop.batch_progress.current
            self.trainer.datamodule.fix_loader_state(checkpoint, int(progress.processed))


def condition(conditioner, metadata: list[dict], device) -> dict:
    """Run `conditioner` (a MultiConditioner) on the batch, taking the frozen T5 part of a text conditioner from
    the items' `t5_cache` (pre-encoded shards) when every item has one for this very text; the trainable
    projection always runs."""
    cached = {}
    for cid, sub in conditioner.conditioners.items():
        field = cid if cid in metadata[0] else conditioner.default_keys.get(cid, cid)
        hits = [m.get("t5_cache", {}).get(cid) for m in metadata]
        if all(h is not None and h[2] == m.get(field) for h, m in zip(hits, metadata)):
            hidden = torch.stack([h[0] for h in hits]).to(device)
            cached[cid] = sub.project(hidden, torch.stack([h[1] for h in hits]).to(device))
    if not cached:
        return conditioner(metadata, device)
    rest = {k: c for k, c in conditioner.conditioners.items() if k not in cached}
    out = MultiConditioner(rest, default_keys=conditioner.default_keys)(metadata, device) if rest else {}
    return {**out, **cached}


def _freeze_unused_conditioners(model: SagaSRModel) -> None:
    """Conditioners no id refers to get no gradient (DDP would otherwise wait for their grads)."""
    used = set(model.cross_attn_cond_ids) | set(model.global_cond_ids)
    for cid, conditioner in model.conditioner.conditioners.items():
        if cid not in used:
            conditioner.requires_grad_(False)
